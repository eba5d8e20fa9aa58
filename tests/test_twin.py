"""The twin thread of the S² Legendre stage: its hand-off, its errors, and the transforms it runs."""

import dataclasses
import sys
import threading
import time

import numpy as np
import pytest
import torch

from sphcnn.spectral import SHT, InverseSHT, S2Grid, _ring_legendre
from sphcnn.spectral._twin import Twin

sht_module = sys.modules["sphcnn.spectral.sht"]  # the package exports a function of that name
from sphcnn.spectral.testing import evaluate_sh, random_coefficients, relative_error


def test_the_twin_runs_one_half_on_another_thread():
    twin, seen = Twin(), []
    twin.run(lambda halves: seen.append((halves, threading.get_ident())))
    assert sorted(halves for halves, _ in seen) == [(0,), (1,)]
    assert {ident for _, ident in seen} == {threading.get_ident(), twin._thread.ident}


def test_each_phase_starts_when_both_halves_of_the_last_are_done():
    twin, log, lock = Twin(), [], threading.Lock()

    def phase(name, pause):
        def run(halves):
            for h in halves:
                if h == 1:
                    time.sleep(pause)  # the twin's half of the first phase ends last
                with lock:
                    log.append((name, h))
        return run

    twin.run(phase("fft", 0.05), phase("legendre", 0), phase("unfold", 0))
    assert [name for name, _ in log] == ["fft"] * 2 + ["legendre"] * 2 + ["unfold"] * 2
    assert sorted(log[:2]) == [("fft", 0), ("fft", 1)]
    twin.run(lambda halves: log.append(halves))  # one phase: the barrier is ready for the next call
    assert sorted(log[6:]) == [(0,), (1,)]


def test_an_error_stops_both_threads_before_the_next_phase():
    twin, ran = Twin(), []

    def fails_on_the_twin(halves):
        if halves == (1,):
            raise ValueError("twin half")
        ran.append(("first", halves))

    with pytest.raises(ValueError, match="twin half"):
        twin.run(fails_on_the_twin, lambda halves: ran.append(("second", halves)))
    assert ran == [("first", (0,))]
    twin.run(lambda halves: ran.append(halves), lambda halves: ran.append(halves))  # the barrier is mended
    assert sorted(ran[1:]) == [(0,), (0,), (1,), (1,)]


def test_an_error_in_either_half_is_raised_after_both_are_done():
    twin, done = Twin(), []

    def fails_on_the_twin(halves):
        if halves == (1,):
            raise ValueError("twin half")

    with pytest.raises(ValueError, match="twin half"):
        twin.run(fails_on_the_twin)

    def fails_here(halves):
        if halves == (0,):
            raise KeyError("caller half")
        time.sleep(0.05)  # the caller must wait for this half: it writes into the caller's buffers
        done.append(halves)

    with pytest.raises(KeyError, match="caller half"):
        twin.run(fails_here)
    assert done == [(1,)]
    twin.run(lambda halves: done.append(halves))  # still serving
    assert sorted(done[1:]) == [(0,), (1,)]


def test_a_busy_twin_leaves_both_halves_to_the_caller():
    twin, inner, nested_done = Twin(), [], threading.Event()

    def outer(halves):
        if halves == (0,):
            twin.run(lambda h: inner.append((h, threading.get_ident())))
            nested_done.set()
        else:
            nested_done.wait(10)  # the twin is busy until the nested call has run

    twin.run(outer)
    assert inner == [((0, 1), threading.get_ident())]


def test_a_forked_child_starts_its_own_twin():
    twin = Twin()
    twin.run(lambda halves: None)
    parent_thread = twin._thread
    twin._pid = -1  # what a child sees after os.fork: the parent's pid, and no thread behind the parent's object
    ran = []
    twin.run(lambda halves: ran.append(halves))
    assert twin._thread is not parent_thread and twin._thread.is_alive() and sorted(ran) == [(0,), (1,)]


def test_the_twin_is_used_only_where_chunks_of_each_matmul_stay_on_one_thread_and_the_work_pays():
    use_twin = _ring_legendre.use_twin
    gl128 = (32, 64, 64, 32)  # GL L = 128, 16 maps: the first block's [mb, n_d, rings] @ [mb, rings, 2B]
    assert use_twin(gl128, 21_000_000, 8, 2)
    assert use_twin(gl128, 21_000_000, 4, 2)  # float32 (counted half)
    assert not use_twin(gl128, 7_000_000, 4, 2)
    assert not use_twin(gl128, 21_000_000, 8, 1)
    assert not use_twin(gl128, 3_000_000, 8, 2)
    assert use_twin((32, 128, 128, 32), 170_000_000, 8, 2)  # GL L = 256: in chunks of 64 rows
    assert not use_twin((32, 512, 512, 32), 10**10, 8, 2)  # L = 1024: chunks of 16 rows would cost more than they gain


@pytest.mark.parametrize("L", [40, 128, 256, 1024])
def test_the_halves_share_the_orders_and_the_work(L):
    """Each m-block in exactly one half; the halves' matmul work differs by less than one block's."""
    plan = _ring_legendre.RingPlan.build(S2Grid(L, "gl"), L)
    assert sorted(plan.halves[0] + plan.halves[1]) == list(range(len(plan.m_blocks)))
    work = [(m1 - m0) * (L - m0) for m0, m1 in plan.m_blocks]
    assert abs(sum(work[i] for i in plan.halves[0]) - sum(work[i] for i in plan.halves[1])) <= max(work)
    padding = plan.scatter >= L * L  # each half scatters its padding rows into a row of its own
    half_of_row = np.concatenate([np.full(2 * (r.m1 - r.m0) * r.n_d, int(r.block in plan.halves[1]))
                                  for r in plan.regions])
    assert np.array_equal(plan.scatter[padding] - L * L, half_of_row[padding])
    assert np.array_equal(np.sort(plan.scatter[~padding]), np.arange(L * L))


def test_twin_matmuls_come_in_chunks_below_openblas_threading_threshold():
    twin, threshold = _ring_legendre._BACKENDS["twin"], _ring_legendre._OPENBLAS_SINGLE_THREAD_MNK
    chunks = twin.row_chunks(128, 128, 32)  # GL L = 256, 16 maps
    assert [c.start for c in chunks] == [0, 64] and all((c.stop - c.start) * 128 * 32 <= threshold for c in chunks)
    assert twin.row_chunks(100, 128, 32) == [slice(0, 64), slice(64, 100)]  # ragged last chunk, every row once
    assert _ring_legendre._BACKENDS["torch"].row_chunks(128, 128, 32) == [slice(0, 128)]
    assert twin.row_chunks(0, 64, 32) == []


@pytest.mark.parametrize("kind", ["gl", "dh"])  # dh: a pole ring without a mirror
def test_transforms_on_the_twin_are_exact_with_gradients(kind, gen, monkeypatch):
    """Forced on (a small grid): each half's matmuls and ring FFTs (numpy, one thread each) run on their own
    thread, with the same results, for batch-major and coefficient-major coefficients."""
    monkeypatch.setattr(_ring_legendre, "use_twin", lambda *args: True)
    matmul_threads, fft_calls = set(), []
    numpy_bmm = _ring_legendre._numpy_bmm

    def spy(a, b, out):
        matmul_threads.add(threading.get_ident())
        numpy_bmm(a, b, out)

    def fft_spy(fft):
        def run(*args):
            fft_calls.append((threading.get_ident(), args[-2], args[-1]))  # thread, backend, threads
            fft(*args)
        return run

    twin = dataclasses.replace(_ring_legendre._BACKENDS["twin"], bmm=spy)
    monkeypatch.setitem(_ring_legendre._BACKENDS, "twin", twin)
    for name in ("rings_to_slabs", "slabs_to_rings"):
        monkeypatch.setattr(sht_module, name, fft_spy(getattr(sht_module, name)))
    grid = S2Grid(40, kind)  # two blocks of orders: four regions
    fwd, inv = SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)
    for B in (3, 5, 3):  # the views kept of the scratch serve each batch size's calls
        c = random_coefficients(40, B, generator=gen)
        x = evaluate_sh(c, grid.points())
        assert relative_error(inv(c), x) < 1e-13 and relative_error(fwd(x), c) < 1e-13
        assert relative_error(inv(c.T.contiguous().T), x) < 1e-13
    assert len(matmul_threads) == 2 and threading.get_ident() in matmul_threads
    assert {ident for ident, _, _ in fft_calls} == matmul_threads
    assert {threads for _, _, threads in fft_calls} == {1} and "torch" not in {b for _, b, _ in fft_calls}
    small = S2Grid(6, "gl")
    fwd, inv = SHT(small, dtype=torch.float64), InverseSHT(small, dtype=torch.float64)
    t = torch.randn(2, *small.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: inv(fwd(t)), (t,))
