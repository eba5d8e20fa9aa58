"""Benchmark spherical harmonic transforms: sphcnn against reference libraries.

Times forward (analysis, grid → coefficients) and inverse (synthesis,
coefficients → grid) transforms of sphcnn, torch-harmonics, e3nn, ducc0 and
healpy in one run, on the same grids and batch sizes where the libraries
allow it, and prints a markdown table (optionally also a CSV file).

Grids and coefficient formats, per library:

* ``sphcnn`` on ``gl``: ``S2Grid(L, "gl")``, Gauss–Legendre L × (2L−1), real
  coefficients ``[B, L²]``.  Also on ``dh`` (2L × 2L) when ``--grids dh`` and on
  HEALPix (``S2Grid(L, "healpix", nside)``, ``SHT(..., iters=--healpix-iters)``).
* ``torch-harmonics``: ``RealSHT(L, 2L−1, lmax=L, mmax=L, grid="legendre-gauss")``,
  the same GL nodes and the same input maps; complex coefficients ``[B, L, L]``
  (m ≤ ℓ used).  Tables are built in float64 and cast with ``.to(float32)``.
* ``e3nn``: ``FromS2Grid((2L, 2L−1), L−1)`` / ``ToS2Grid(L−1, (2L, 2L−1))``,
  e3nn's own grid: 2L colatitudes β_j = π(j+½)/(2L) (no poles) × 2L−1
  longitudes, the smallest grid e3nn accepts for band-limit L; real
  coefficients ``[B, L²]`` in e3nn's order and "component" normalization.
  It stores dense (2L−1)·2L·L² tables, so large L is skipped by the memory
  estimate ("skipped: memory").
* ``ducc0``: ``ducc0.sht.analysis_2d`` / ``synthesis_2d``, geometry "GL"
  (the same nodes and maps as sphcnn "gl"), complex healpy-ordered alm.  Its
  spin-0 transform takes one map per call, so a batch is a loop of B calls,
  each with ``nthreads=--threads``.  No precomputation (tables on the fly).
* ``healpy``: ``map2alm(iter=--healpix-iters)`` / ``alm2map`` at
  nside = L/2 rounded up to a power of two, float64 only (rows for float32
  are not produced).  HEALPix has no exact quadrature: its round-trip error
  is the quadrature error, not round-off.

Each (library, grid, L, dtype) case runs in a fresh ``spawn`` subprocess; its
batch sizes run in increasing order inside that process.  "peak MB" is the
increase of the child's peak RSS (``ru_maxrss``) over its value after imports,
read after each batch, so it covers tables, inputs and workspaces of all
batches up to that one.  Failures (exceptions, MemoryError, a child killed by
the OOM killer, timeouts) become rows with a note instead of stopping the run.

Examples::

    python experiments/bench_sht.py --L 32 64 128 --batch 1 16 --repeats 5
    python experiments/bench_sht.py --L 128 --batch 16 --repeats 20 --rounds 5 --libs sphcnn torch-harmonics --grids gl
    python experiments/bench_sht.py --L 1024 --batch 16 --dtype float64 --libs sphcnn ducc0 --repeats 2 --csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass

LIBS = ("sphcnn", "torch-harmonics", "e3nn", "ducc0", "healpy")
GRIDS = ("gl", "dh", "healpix")
FIELDS = ("library", "grid", "L", "dtype", "batch", "forward_ms", "inverse_ms", "roundtrip_rel_err",
          "setup_s", "peak_mb", "note", "forward_min_ms", "inverse_min_ms")
HEADERS = ("library", "grid", "L", "dtype", "batch", "forward ms median (min)", "inverse ms median (min)",
           "roundtrip rel. err", "setup s", "peak MB", "note")


@dataclass(frozen=True)
class Case:
    lib: str
    grid: str  # "gl", "dh", "healpix", "e3nn"
    L: int
    dtype: str
    batches: tuple[int, ...]
    repeats: int
    threads: int
    healpix_iters: int

    @property
    def nside(self) -> int:
        return healpix_nside(self.L)

    @property
    def grid_label(self) -> str:
        L = self.L
        if self.grid == "gl":
            return f"GL {L}x{2 * L - 1}"
        if self.grid == "dh":
            return f"DH {2 * L}x{2 * L}"
        if self.grid == "e3nn":
            return f"e3nn {2 * L}x{2 * L - 1}"
        return f"healpix nside={self.nside}"


def healpix_nside(L: int) -> int:
    """nside = L/2 rounded up to a power of two (so that L ≤ 3·nside)."""
    return 1 << max(0, math.ceil(math.log2(max(1, math.ceil(L / 2)))))


def estimated_bytes(case: Case) -> int:
    """Rough peak memory of a case's precomputed tables (both directions), for skipping hopeless cases."""
    L = case.L
    item = 8 if case.dtype == "float64" else 4
    if case.lib == "e3nn":
        # shb [2L−1, res_beta=2L, L²] per module, built in float64 through an [L, 2L−1, L²] expansion.
        return 3 * (2 * L - 1) * (2 * L) * L * L * 8
    if case.lib == "torch-harmonics":
        # [L, L, L] float64 per module, plus the float64 construction temporaries.
        return 4 * L**3 * 8
    if case.lib == "sphcnn":
        rings = L if case.grid == "gl" else 2 * L if case.grid == "dh" else 4 * case.nside
        # parity-split northern table ≈ (L²/2)·(rings/2) per direction, padded by the m-blocks.
        return int(2 * 1.1 * (L * L / 2) * (rings / 2) * item)
    return 0


# ----------------------------------------------------------------------------------------------
# Library adapters. Each builds (forward, inverse, make_input, make_coeffs, rel_err) in the child.
# ----------------------------------------------------------------------------------------------


def _setup_sphcnn(case: Case):
    import numpy as np
    import torch

    from sphcnn.spectral import S2Grid, SHT, InverseSHT

    dt = getattr(torch, case.dtype)
    L = case.L
    if case.grid == "healpix":
        grid = S2Grid(L, "healpix", nside=case.nside)
        fwd = SHT(grid, dtype=dt, iters=case.healpix_iters)
    else:
        grid = S2Grid(L, case.grid)
        fwd = SHT(grid, dtype=dt)
    inv = InverseSHT(grid, dtype=dt)

    def make_input(B, rng):
        return torch.from_numpy(rng.standard_normal((B, *grid.shape))).to(dt)

    def make_coeffs(B, rng):
        return torch.from_numpy(rng.standard_normal((B, L * L))).to(dt)

    def rel_err(c, c2):
        return float(torch.linalg.vector_norm((c - c2).double()) / torch.linalg.vector_norm(c.double()))

    return fwd, inv, make_input, make_coeffs, rel_err, np


def _setup_torch_harmonics(case: Case):
    import torch
    import torch_harmonics as th

    dt = getattr(torch, case.dtype)
    cdt = torch.complex128 if dt == torch.float64 else torch.complex64
    L = case.L
    fwd = th.RealSHT(L, 2 * L - 1, lmax=L, mmax=L, grid="legendre-gauss").to(dt)
    inv = th.InverseRealSHT(L, 2 * L - 1, lmax=L, mmax=L, grid="legendre-gauss").to(dt)
    for name, buf in list(fwd.named_buffers()) + list(inv.named_buffers()):
        if buf.is_floating_point() and buf.dtype != dt:
            raise RuntimeError(f"torch-harmonics buffer {name} is {buf.dtype}, expected {dt}")
    mask = torch.tril(torch.ones(L, L, dtype=torch.bool))  # [ℓ, m], m ≤ ℓ

    def make_input(B, rng):
        return torch.from_numpy(rng.standard_normal((B, L, 2 * L - 1))).to(dt)

    def make_coeffs(B, rng):
        c = torch.from_numpy(rng.standard_normal((B, L, L)) + 1j * rng.standard_normal((B, L, L))).to(cdt)
        c = c * mask
        c[..., 0] = c[..., 0].real.to(cdt)  # m = 0 coefficients of a real field are real
        return c

    def rel_err(c, c2):
        c2 = c2 * mask
        return float(torch.linalg.vector_norm((c - c2).to(torch.complex128))
                     / torch.linalg.vector_norm(c.to(torch.complex128)))

    return fwd, inv, make_input, make_coeffs, rel_err, None


def _setup_e3nn(case: Case):
    import torch
    from e3nn.o3 import FromS2Grid, ToS2Grid

    dt = getattr(torch, case.dtype)
    L = case.L
    res = (2 * L, 2 * L - 1)
    # Built in float64 and cast, so float32 rows do not carry float32 table-construction error.
    fwd = FromS2Grid(res, L - 1, dtype=torch.float64).to(dt)
    inv = ToS2Grid(L - 1, res, dtype=torch.float64).to(dt)

    def make_input(B, rng):
        return torch.from_numpy(rng.standard_normal((B, *res))).to(dt)

    def make_coeffs(B, rng):
        return torch.from_numpy(rng.standard_normal((B, L * L))).to(dt)

    def rel_err(c, c2):
        return float(torch.linalg.vector_norm((c - c2).double()) / torch.linalg.vector_norm(c.double()))

    return fwd, inv, make_input, make_coeffs, rel_err, None


def _alm_tools(L: int, np):
    """healpy-ordered complex alm (m-major, ℓ ≥ m), lmax = mmax = L−1."""
    nalm = L * (L + 1) // 2
    m_of = np.concatenate([np.full(L - m, m) for m in range(L)])
    assert m_of.size == nalm

    def make(B, rng, cdt):
        a = rng.standard_normal((B, nalm)) + 1j * rng.standard_normal((B, nalm))
        a[:, m_of == 0] = a[:, m_of == 0].real
        return a.astype(cdt)

    def rel_err(c, c2):
        c, c2 = np.asarray(c, dtype=np.complex128), np.asarray(c2, dtype=np.complex128)
        return float(np.linalg.norm(c - c2) / np.linalg.norm(c))

    return make, rel_err


def _setup_ducc0(case: Case):
    import ducc0
    import numpy as np

    L, nt = case.L, case.threads
    geometry = "GL" if case.grid == "gl" else "DH"
    ntheta, nphi = (L, 2 * L - 1) if case.grid == "gl" else (2 * L, 2 * L)
    fdt = np.float64 if case.dtype == "float64" else np.float32
    cdt = np.complex128 if case.dtype == "float64" else np.complex64
    make_alm, rel_err = _alm_tools(L, np)

    def fwd(x):  # spin-0 analysis_2d takes a single map: loop over the batch
        return np.stack([ducc0.sht.analysis_2d(map=xi[None], spin=0, lmax=L - 1, geometry=geometry,
                                                nthreads=nt)[0] for xi in x])

    def inv(a):
        return np.stack([ducc0.sht.synthesis_2d(alm=ai[None], spin=0, lmax=L - 1, geometry=geometry,
                                                 ntheta=ntheta, nphi=nphi, nthreads=nt)[0] for ai in a])

    def make_input(B, rng):
        return rng.standard_normal((B, ntheta, nphi)).astype(fdt)

    return fwd, inv, make_input, lambda B, rng: make_alm(B, rng, cdt), rel_err, np


def _setup_healpy(case: Case):
    import healpy as hp
    import numpy as np

    L, nside, iters = case.L, case.nside, case.healpix_iters
    make_alm, rel_err = _alm_tools(L, np)

    def fwd(x):
        return np.atleast_2d(hp.map2alm(x, lmax=L - 1, mmax=L - 1, iter=iters, pol=False))

    def inv(a):
        return np.atleast_2d(hp.alm2map(a if a.shape[0] > 1 else a[0], nside, lmax=L - 1, mmax=L - 1, pol=False))

    def make_input(B, rng):
        return rng.standard_normal((B, 12 * nside * nside))

    return fwd, inv, make_input, lambda B, rng: make_alm(B, rng, np.complex128), rel_err, np


_SETUP = {"sphcnn": _setup_sphcnn, "torch-harmonics": _setup_torch_harmonics, "e3nn": _setup_e3nn,
          "ducc0": _setup_ducc0, "healpy": _setup_healpy}
_HAS_SETUP = {"sphcnn", "torch-harmonics", "e3nn"}


# ----------------------------------------------------------------------------------------------
# Child process
# ----------------------------------------------------------------------------------------------


def _row(case: Case, batch: int, **values) -> dict:
    row = dict.fromkeys(FIELDS, None)
    row.update(library=case.lib, grid=case.grid_label, L=case.L, dtype=case.dtype, batch=batch, note="")
    row.update(values)
    return row


def _peak_rss_mb() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _time(fn, arg, repeats: int) -> tuple[float, float, object]:
    out = fn(arg)  # warm-up (first-call allocations, FFT plans, lazy inits)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), 1e3 * min(times), out


def _child(case: Case, conn) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(case.threads)
    try:
        import numpy as np
        import torch

        torch.set_num_threads(case.threads)
        # Import the library before the baseline so that "peak MB" excludes import cost.
        __import__({"torch-harmonics": "torch_harmonics"}.get(case.lib, case.lib))
        if case.lib == "sphcnn":
            import sphcnn.spectral  # noqa: F401
        if case.grid == "healpix":
            import healpy  # noqa: F401  (sphcnn's HEALPix grid imports it lazily: keep that out of setup time)
        base = _peak_rss_mb()
        t0 = time.perf_counter()
        fwd, inv, make_input, make_coeffs, rel_err, _ = _SETUP[case.lib](case)
        setup_s = time.perf_counter() - t0 if case.lib in _HAS_SETUP else None
    except BaseException as exc:  # noqa: BLE001 (MemoryError, import errors, …: report, do not crash)
        conn.send(("error", f"setup failed: {type(exc).__name__}: {exc}"[:300], traceback.format_exc()))
        conn.close()
        return
    for B in case.batches:
        try:
            rng = np.random.default_rng(1234)
            with torch.no_grad():
                x = make_input(B, rng)
                f_med, f_min, _ = _time(fwd, x, case.repeats)
                del x
                c = make_coeffs(B, rng)
                i_med, i_min, y = _time(inv, c, case.repeats)
                err = rel_err(c, fwd(y))
                del c, y
            row = _row(case, B, forward_ms=f_med, inverse_ms=i_med, forward_min_ms=f_min, inverse_min_ms=i_min,
                       roundtrip_rel_err=err, setup_s=setup_s, peak_mb=max(0.0, _peak_rss_mb() - base))
        except BaseException as exc:  # noqa: BLE001
            row = _row(case, B, setup_s=setup_s, peak_mb=max(0.0, _peak_rss_mb() - base),
                       note=f"error: {type(exc).__name__}: {exc}"[:200])
        conn.send(("row", row, None))
    conn.send(("done", None, None))
    conn.close()


def run_case(case: Case, timeout: float) -> list[dict]:
    """Run one case in a fresh spawned process; failures become rows with a note."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(case, child), daemon=True)
    proc.start()
    child.close()
    rows, done, failure = [], False, None
    deadline = time.monotonic() + timeout
    while not done:
        if time.monotonic() > deadline:
            proc.kill()
            failure = f"timeout after {timeout:.0f} s"
            break
        try:
            ready = parent.poll(0.5)
        except (EOFError, OSError):
            ready = False
        if ready:
            try:
                kind, payload, tb = parent.recv()
            except (EOFError, OSError):  # child died mid-message
                proc.join(5)
                failure = _death_note(proc.exitcode)
                break
            if kind == "row":
                rows.append(payload)
                _progress(payload)
            elif kind == "error":
                print(tb, file=sys.stderr)
                failure = payload
                break
            else:
                done = True
        elif not proc.is_alive():
            if parent.poll(0):  # flush rows sent just before exiting
                continue
            failure = _death_note(proc.exitcode)
            break
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()
    parent.close()
    if failure is not None:
        seen = {r["batch"] for r in rows}
        for B in case.batches:
            if B not in seen:
                row = _row(case, B, note=failure)
                rows.append(row)
                _progress(row)
    return rows


def _death_note(code) -> str:  # noqa: ANN001
    if code is not None and code < 0 and -code == 9:
        return "crashed: SIGKILL (likely out of memory)"
    return f"crashed: exit code {code}"


def _progress(row: dict) -> None:
    print("  " + " | ".join(_fmt_row(row)), file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Table and CLI
# ----------------------------------------------------------------------------------------------


def _fmt(value, kind: str) -> str:  # noqa: ANN001
    if value is None:
        return "–"
    if kind == "ms":
        return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    if kind == "err":
        return f"{value:.1e}"
    if kind == "s":
        return f"{value:.3g}"
    if kind == "mb":
        return f"{value:.0f}"
    return str(value)


def _fmt_time(median, minimum) -> str:  # noqa: ANN001
    if median is None:
        return "–"
    return f"{_fmt(median, 'ms')} ({_fmt(minimum, 'ms')})"


def _fmt_row(row: dict) -> list[str]:
    return [row["library"], row["grid"], str(row["L"]), row["dtype"], str(row["batch"]),
            _fmt_time(row["forward_ms"], row["forward_min_ms"]), _fmt_time(row["inverse_ms"], row["inverse_min_ms"]),
            _fmt(row["roundtrip_rel_err"], "err"),
            _fmt(row["setup_s"], "s"), _fmt(row["peak_mb"], "mb"), row["note"] or ""]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---" if i < 2 or i == len(HEADERS) - 1 else "--:" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in _fmt_row(r)) + " |" for r in rows]
    return "\n".join(lines)


def merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One row per case from the rows of each round (same order): median of the medians, min of the minima,
    the largest error and memory, the median setup time, and every distinct note."""
    merged = []
    for same in zip(*rounds):
        row = dict(same[0])

        def values(field: str) -> list[float]:
            return [r[field] for r in same if r[field] is not None]

        for field, reduce in (("forward_ms", statistics.median), ("inverse_ms", statistics.median),
                              ("forward_min_ms", min), ("inverse_min_ms", min), ("roundtrip_rel_err", max),
                              ("setup_s", statistics.median), ("peak_mb", max)):
            row[field] = reduce(values(field)) if values(field) else None
        row["note"] = "; ".join(dict.fromkeys(r["note"] for r in same if r["note"]))
        merged.append(row)
    return merged


def build_cases(args: argparse.Namespace) -> list[tuple[Case, str | None]]:
    """All cases in run order, each with a skip reason (or None)."""
    batches = tuple(sorted(set(args.batch)))
    cases = []
    for L in args.L:
        for dtype in args.dtype:
            for lib in args.libs:
                if lib == "sphcnn":
                    grids = list(args.grids)
                elif lib in ("torch-harmonics",):
                    grids = ["gl"] if "gl" in args.grids else []
                elif lib == "ducc0":
                    grids = [g for g in args.grids if g in ("gl", "dh")]
                elif lib == "e3nn":
                    grids = ["e3nn"]
                else:  # healpy
                    grids = ["healpix"] if "healpix" in args.grids and dtype == "float64" else []
                for grid in grids:
                    case = Case(lib, grid, L, dtype, batches, args.repeats, args.threads, args.healpix_iters)
                    est = estimated_bytes(case)
                    skip = None
                    if est > args.max_mem_gb * 2**30:
                        skip = f"skipped: memory (tables ≈ {est / 2**30:.1f} GB > --max-mem-gb {args.max_mem_gb:g})"
                    cases.append((case, skip))
    return cases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--L", type=int, nargs="+", default=[32, 64, 128, 256, 512],
                   help="bandlimits (degrees 0 … L−1); 1024 is possible for sphcnn and ducc0")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16], help="batch sizes (maps per call)")
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS, help="libraries to time")
    p.add_argument("--grids", nargs="+", default=["gl", "healpix"], choices=GRIDS,
                   help="grids for sphcnn (torch-harmonics: gl; ducc0: gl, dh; healpy: healpix; e3nn: its own)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions after one warm-up; the median is reported")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, ducc0 nthreads, OMP_NUM_THREADS")
    p.add_argument("--healpix-iters", type=int, default=0, help="analysis iterations on HEALPix (sphcnn and healpy)")
    p.add_argument("--max-mem-gb", type=float, default=12.0,
                   help="skip cases whose estimated table memory exceeds this (reported as 'skipped: memory')")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per (library, grid, L, dtype) case")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the whole case list this many times, libraries taking turns, and report per case the "
                        "median of the rounds' medians (min: of all); a burst of load on a shared machine then "
                        "hits every library alike instead of whichever ran during it")
    p.add_argument("--csv", default=None, help="also write the rows (with min times) to this CSV file")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.rounds < 1 or min(args.L) < 2 or min(args.batch) < 1:
        p.error("--repeats, --rounds, --threads and --batch must be >= 1 and --L >= 2")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark; print the markdown table; return the rows."""
    args = parse_args(argv)
    rounds = []
    for number in range(args.rounds):
        rows = []
        for case, skip in build_cases(args):
            print(f"[round {number + 1}/{args.rounds}: {case.lib} {case.grid_label} L={case.L} {case.dtype}]",
                  file=sys.stderr, flush=True)
            if skip:
                new = [_row(case, B, note=skip) for B in case.batches]
                for row in new:
                    _progress(row)
            else:
                new = run_case(case, args.timeout)
            rows.extend(new)
        rounds.append(rows)
    rows = merge_rounds(rounds)
    print(markdown_table(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return rows


if __name__ == "__main__":
    main()
