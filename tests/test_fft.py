"""Ring DFTs: every CPU backend against a direct DFT, adjointness, gradients, bad input."""

import math
import subprocess
import sys

import pytest
import torch

from sphcnn.spectral import _fft, _workspace
from sphcnn.spectral._fft import cpu_backends, ring_irfft, ring_rfft

BACKENDS = cpu_backends()


def direct_dft(x: torch.Tensor, L: int) -> torch.Tensor:
    """X_m = Σ_k x_k e^{−2πikm/n} by an explicit sum: [B, R, n] → [L, R, B]."""
    n = x.shape[-1]
    k = torch.arange(n, dtype=torch.float64)
    m = torch.arange(L, dtype=torch.float64)
    E = torch.exp(-2j * math.pi * torch.outer(m, k) / n)  # [L, n]
    return torch.einsum("mk,brk->mrb", E, x.to(torch.complex128))


@pytest.mark.parametrize("backend", [*BACKENDS, "auto"])
@pytest.mark.parametrize("n, L", [(15, 8), (16, 9), (16, 5), (21, 7)])
def test_matches_direct_dft_and_inverse(backend, n, L, gen):
    x = torch.randn(3, 4, n, generator=gen, dtype=torch.float64)
    X = ring_rfft(x, L, backend)
    assert X.shape == (L, 4, 3)
    assert torch.allclose(X, direct_dft(x, L), atol=1e-12)
    W = torch.randn(L, 4, 3, generator=gen, dtype=torch.complex128)
    if n % 2 == 0 and L == n // 2 + 1:
        W[-1].imag = 0  # the Nyquist term's imaginary part never reaches the samples
    W[0].imag = 0
    f = ring_irfft(W, n, backend)
    k = torch.arange(n, dtype=torch.float64)
    E = torch.exp(2j * math.pi * torch.outer(torch.arange(L, dtype=torch.float64), k) / n)
    assert torch.allclose(f, torch.einsum("mrb,mk->brk", W, E).real, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_pair_and_gradients(backend, gen):
    n, L = 13, 5
    x = torch.randn(2, 3, n, generator=gen, dtype=torch.float64)
    W = torch.randn(L, 3, 2, generator=gen, dtype=torch.complex128)
    lhs = (torch.view_as_real(ring_rfft(x, L, backend)) * torch.view_as_real(W)).sum()
    rhs = (x * ring_irfft(W, n, backend)).sum()
    assert torch.allclose(lhs, rhs, atol=1e-12)  # real inner products: each is the other's adjoint
    x.requires_grad_(True)
    W.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ring_rfft(t, L, backend), (x,))
    assert torch.autograd.gradcheck(lambda t: ring_irfft(t, n, backend), (W,))
    assert torch.autograd.gradgradcheck(lambda t: ring_rfft(t, L, backend), (x,))


def test_backends_agree_in_float32_and_fallback(gen, monkeypatch):
    x = torch.randn(4, 6, 31, generator=gen)
    a = ring_rfft(x, 16, "torch")
    f_pocketfft = ring_irfft(a, 31, "scipy")
    for backend in BACKENDS:
        b = ring_rfft(x, 16, backend)
        assert b.dtype == torch.complex64
        assert torch.allclose(a, b, atol=1e-4)
        assert torch.allclose(ring_irfft(a, 31, backend), f_pocketfft, atol=1e-4)
    monkeypatch.setattr(_fft, "_c2r", None)  # scipy without the pocketfft binding
    assert torch.allclose(ring_irfft(a, 31, "scipy"), f_pocketfft, atol=1e-5)
    assert torch.allclose(ring_irfft(a, 31, "torch"), f_pocketfft, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="fft_backend must be one of"):
        ring_rfft(torch.zeros(1, 1, 8), 3, "mkl")
    with pytest.raises(ValueError, match="L <= n//2 \\+ 1 = 5"):
        ring_rfft(torch.zeros(1, 1, 8), 6)
    with pytest.raises(ValueError, match="rings \\[B, R, n\\]"):
        ring_rfft(torch.zeros(8), 3)
    with pytest.raises(ValueError, match="W \\[L, R, B\\]"):
        ring_irfft(torch.zeros(6, 1, 1, dtype=torch.complex64), 8)


def test_missing_ducc0_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_fft, "_ducc", None)
    assert _fft.cpu_backends() == ("torch", "scipy")
    with pytest.raises(ValueError, match="needs the ducc0 package"):
        ring_rfft(torch.zeros(1, 1, 8), 3, "ducc0")


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("binding", [True, False])
def test_2d_backends_agree(n, binding, gen, monkeypatch):
    if not binding:
        monkeypatch.setattr(_fft, "_c2r", None)  # scipy without the pocketfft binding
    x = torch.randn(3, 2, n, n, generator=gen, dtype=torch.float64)
    spectra = {b: _fft.rfft2(x, b) for b in BACKENDS}
    for backend in BACKENDS:
        assert torch.allclose(spectra[backend], torch.fft.rfft2(x), atol=1e-12)
        out = _fft.irfft2(spectra["torch"].clone(), n, backend)  # the spectrum is scratch
        assert torch.allclose(out, x * n * n, atol=1e-10)  # unnormalized inverse ("forward" norm)


def test_2d_forward_spectrum_lives_in_the_workspace_except_torchs(gen, monkeypatch):
    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)  # keep even this small spectrum
    x = torch.randn(3, 2, 8, 8, generator=gen, dtype=torch.float64)
    workspace = _workspace.Workspace()
    for backend in BACKENDS:
        first, second = _fft.rfft2(x, backend, workspace), _fft.rfft2(2 * x, backend, workspace)
        assert torch.allclose(second, 2 * torch.fft.rfft2(x), atol=1e-12)
        # torch's out= would copy its fresh result, so torch's spectra are its own
        assert (first.data_ptr() == second.data_ptr()) == (backend != "torch")


_START_NO_THREAD = r"""
import os, numpy as np, scipy.fft, torch
from sphcnn.spectral import S2Grid, SHT, InverseSHT, SO3Grid, SO3FFT, InverseSO3FFT, _fft
from sphcnn.spectral import so3

torch.set_num_threads(2)
threads = lambda: len(os.listdir("/proc/self/task"))
# start the pools that may rightly start: torch's OpenMP team (this thread's), scipy's and ducc0's
torch.ones(1 << 22).mul_(2)
scipy.fft.rfft(np.ones((64, 1024)), workers=2)
if _fft._ducc is not None:
    _fft._ducc.r2c(np.ones((64, 1024)), axes=(1,), nthreads=2)
before = threads()


def transforms():
    grid = S2Grid(16, "gl")
    x = torch.randn(4, *grid.shape, dtype=torch.float64, requires_grad=True)
    InverseSHT(grid, dtype=torch.float64)(SHT(grid, dtype=torch.float64)(x)).square().sum().backward()
    grid = SO3Grid(6, "gl")
    f = torch.randn(4, *grid.shape, dtype=torch.float64, requires_grad=True)
    InverseSO3FFT(grid, dtype=torch.float64)(SO3FFT(grid, dtype=torch.float64)(f)).square().sum().backward()


transforms()  # "auto": the probes time every backend
for backend in _fft.cpu_backends():
    _fft._fastest = lambda *probe, backend=backend: backend
    so3.fft2_backend = lambda x, n, inverse=False, backend=backend: backend
    transforms()
print(threads() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_transforms_start_no_thread():
    """The transforms start no thread of their own (see :mod:`sphcnn.spectral._fft`): a torch op on such a
    thread would start a second OpenMP team and slow every later parallel torch op in the process."""
    result = subprocess.run([sys.executable, "-c", _START_NO_THREAD], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "0", result.stdout


def test_probe_batches_are_powers_of_two_within_the_sample_cap():
    assert [_fft.probe_count(c, 100) for c in (1, 2, 3, 5, 16, 17)] == [1, 2, 4, 8, 16, 32]
    cap = _fft._PROBE_ELEMENTS
    assert _fft.probe_count(10**9, 1000) == cap // 1000  # large calls: the cap, in whole items
    assert _fft.probe_count(7, 2 * cap) == 1  # items above the cap: still one


def test_each_direction_is_probed_on_its_own(monkeypatch):
    """Forward and inverse may pick different backends (MKL's 2-D forward and ducc0's inverse won on 2 cores)."""
    asked = []
    monkeypatch.setattr(_fft, "_fastest_2d", lambda n, planes, dtype, threads, inverse: asked.append(inverse)
                        or ("scipy" if inverse else "torch"))
    x = torch.randn(3, 5, 8, 8)
    assert _fft.fft2_backend(x, 8) == "torch" and _fft.fft2_backend(x, 8, inverse=True) == "scipy"
    assert asked == [False, True]
    rings = []
    monkeypatch.setattr(_fft, "_fastest", lambda n, L, r, batch, dtype, threads, inverse: rings.append(
        (n, L, r, batch, inverse)) or "scipy")
    W = ring_rfft(torch.randn(3, 4, 9), 5)
    ring_irfft(W, 9)
    assert rings == [(9, 5, 4, 4, False), (9, 5, 4, 4, True)]  # batch 3 → probe batch 4
    rings.clear()
    x = torch.randn(3, 4, 9, requires_grad=True)
    torch.view_as_real(ring_rfft(x, 5)).sum().backward()  # the backward is the inverse, probed as such
    assert rings == [(9, 5, 4, 4, False), (9, 5, 4, 4, True)] and x.grad.shape == x.shape


def test_the_2d_inverse_probe_leaves_out_torch():
    """torch's CPU inverse over two axes makes full-size temporaries the probe barely sees (see _fastest_2d)."""
    assert _fft._fastest_2d(8, 4, torch.float64, torch.get_num_threads(), True) in ("scipy", "ducc0")
    assert _fft._fastest_2d(8, 4, torch.float64, torch.get_num_threads(), False) in _fft.cpu_backends()
