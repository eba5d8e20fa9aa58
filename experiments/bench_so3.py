"""Benchmark SO(3) Fourier transforms: sphcnn against s2fft.

Times the forward (samples → Wigner coefficients) and inverse (coefficients →
samples) SO(3) transforms with full azimuthal bandlimit (N = L, all degrees
ℓ < L), for sphcnn on its two grids and for s2fft's precomputed-kernel Wigner
transform (``s2fft.precompute_transforms.wigner.{forward,inverse}_transform_jax``,
JAX on CPU, ``reality=True``), and prints markdown tables.

Libraries and grids (β × α × γ sample counts):

* ``sphcnn`` on ``soft``: ``SO3Grid(L, "soft")``, 2L × 2L × 2L; real Wigner
  coefficients ``[B, L(4L²−1)/3]``.
* ``sphcnn`` on ``gl``: ``SO3Grid(L, "gl")``, L × (2L−1) × (2L−1).
* ``s2fft`` on ``gl``: sampling "gl", L × (2L−1) × (2N−1), the same size as
  sphcnn's GL grid; complex coefficients ``[B, 2N−1, L, 2L−1]`` (s2fft's layout,
  ~3× as many stored numbers as the real basis, half of them zero).
* ``s2fft`` on ``dh``: sampling "dh", 2L × (2L−1) × (2N−1), close to sphcnn's SOFT grid.

s2fft's transforms take a single signal; a batch is ``jax.vmap`` of the jitted
transform, with the kernel passed as an argument (closing over it makes XLA
constant-fold the kernel: minutes of compile and GBs of memory at L = 64).
Its Wigner-d kernels are built by ``construct.wigner_kernel`` (numpy, float64)
and cast to the benchmark dtype; float32 rows run JAX without x64 (complex64),
float64 rows with ``jax_enable_x64``.

Two phases, each case in fresh subprocesses:

1. Timing: one subprocess per (L, dtype) builds every (library, grid) transform
   and, per batch size, warms each up once and then times them in alternation
   (rep 1: all cases, rep 2: all cases, …), so that all libraries see the same
   background load; medians (and minima) over ``--repeats``.  The same process
   measures the round-trip relative error ‖fwd(inv(c)) − c‖/‖c‖ on random
   coefficients c and the setup time (table/kernel construction; "first call s"
   is the first forward + inverse call, which for s2fft includes the JIT compile).
2. Memory: one subprocess per (library, grid, L, dtype) builds the transforms
   and runs one forward + inverse per batch size (increasing); "peak MB" is the
   increase of ``ru_maxrss`` over its value after the imports.

``--memory-only`` runs only phase 2 for sphcnn (forward + inverse modules and one
transform at batch 1), e.g. ``--memory-only --L 32 64 128 --dtype float32``.

Threads: ``torch.set_num_threads(--threads)`` and OMP/MKL variables; for JAX,
``--threads 1`` sets ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` (with more threads XLA uses its default pool).

Examples::

    python experiments/bench_so3.py --L 8 16 32 64 --batch 1 16 --repeats 7
    python experiments/bench_so3.py --memory-only --L 32 64 128 --dtype float32 --grids soft
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

LIBS = ("sphcnn", "s2fft")
SPHCNN_GRIDS = ("soft", "gl")
S2FFT_SAMPLINGS = ("gl", "dh")

TIME_HEADERS = ("library", "grid (β×α×γ)", "L", "dtype", "batch", "forward ms median (min)",
                "inverse ms median (min)", "roundtrip rel. err", "setup s", "first call s", "peak MB", "note")
MEM_HEADERS = ("library", "grid (β×α×γ)", "L", "dtype", "batch", "setup s", "peak MB (increase)",
               "peak RSS MB (absolute)", "note")


def grid_label(lib: str, grid: str, L: int) -> str:
    if lib == "sphcnn" and grid == "soft":
        return f"SOFT {2 * L}x{2 * L}x{2 * L}"
    if grid == "gl":
        return f"GL {L}x{2 * L - 1}x{2 * L - 1}"
    return f"DH {2 * L}x{2 * L - 1}x{2 * L - 1}"


def _thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ----------------------------------------------------------------------------------------------
# Adapters (run in the child). Each returns an object with fwd, inv, make_coeffs, rel_err, sync.
# ----------------------------------------------------------------------------------------------


class _Sphcnn:
    def __init__(self, grid: str, L: int, dtype: str) -> None:
        import torch

        from sphcnn.spectral import InverseSO3FFT, SO3FFT, SO3Grid

        self.torch, self.L = torch, L
        self.dt = getattr(torch, dtype)
        g = SO3Grid(L, grid)
        self.fwd_mod = SO3FFT(g, dtype=self.dt)
        self.inv_mod = InverseSO3FFT(g, dtype=self.dt)

    def fwd(self, x):  # noqa: ANN001
        with self.torch.no_grad():
            return self.fwd_mod(x)

    def inv(self, c):  # noqa: ANN001
        with self.torch.no_grad():
            return self.inv_mod(c)

    def make_coeffs(self, B: int, rng):  # noqa: ANN001
        from sphcnn.spectral import num_so3_coeffs

        return self.torch.from_numpy(rng.standard_normal((B, num_so3_coeffs(self.L)))).to(self.dt)

    def rel_err(self, c, c2) -> float:  # noqa: ANN001
        t = self.torch
        return float(t.linalg.vector_norm((c2 - c).double()) / t.linalg.vector_norm(c.double()))

    @staticmethod
    def sync(y):  # noqa: ANN001
        return y


class _S2fft:
    def __init__(self, sampling: str, L: int, dtype: str) -> None:
        import jax
        import jax.numpy as jnp
        from s2fft.precompute_transforms import construct
        from s2fft.precompute_transforms import wigner as pw
        from s2fft.sampling import so3_samples

        self.jax, self.jnp, self.L, self.N = jax, jnp, L, L
        self.rdt = jnp.float64 if dtype == "float64" else jnp.float32
        L, N = self.L, self.N
        kf = construct.wigner_kernel(L, N, reality=True, sampling=sampling, forward=True)
        ki = construct.wigner_kernel(L, N, reality=True, sampling=sampling, forward=False)
        self.kf, self.ki = jnp.asarray(kf, dtype=self.rdt), jnp.asarray(ki, dtype=self.rdt)
        del kf, ki
        self.shape = tuple(so3_samples.f_shape(L, N, sampling))  # (γ, β, α)
        self._fwd = jax.jit(jax.vmap(lambda f, k: pw.forward_transform_jax(f, k, L, N, sampling, True, None),
                                     in_axes=(0, None)))
        self._inv = jax.jit(jax.vmap(lambda c, k: pw.inverse_transform_jax(c, k, L, N, sampling, True, None),
                                     in_axes=(0, None)))

    def fwd(self, x):  # noqa: ANN001
        return self._fwd(x, self.kf).block_until_ready()

    def inv(self, c):  # noqa: ANN001
        return self._inv(c, self.ki).block_until_ready()

    def make_coeffs(self, B: int, rng):  # noqa: ANN001
        # Any real signal's forward transform is a valid set of real-signal coefficients (symmetry, zeros
        # where |m|, |n| > ℓ); this is also the warm-up of the forward transform.
        x = self.jnp.asarray(rng.standard_normal((B, *self.shape)), dtype=self.rdt)
        return self.fwd(x)

    def rel_err(self, c, c2) -> float:  # noqa: ANN001
        import numpy as np

        c, c2 = np.asarray(c, dtype=np.complex128), np.asarray(c2, dtype=np.complex128)
        return float(np.linalg.norm(c2 - c) / np.linalg.norm(c))

    @staticmethod
    def sync(y):  # noqa: ANN001
        return y


def _imports(libs) -> None:  # noqa: ANN001
    if "sphcnn" in libs:
        import torch  # noqa: F401

        import sphcnn.spectral  # noqa: F401
    if "s2fft" in libs:
        import jax  # noqa: F401
        import s2fft  # noqa: F401


def _build(lib: str, grid: str, L: int, dtype: str):  # noqa: ANN202
    return (_Sphcnn if lib == "sphcnn" else _S2fft)(grid, L, dtype)


def _setup_child(job: dict) -> None:
    threads = job["threads"]
    libs = {lib for lib, _ in job["cases"]}
    if "s2fft" in libs:
        import jax

        jax.config.update("jax_enable_x64", job["dtype"] == "float64")
    import torch

    torch.set_num_threads(threads)
    _imports(libs)


# ----------------------------------------------------------------------------------------------
# Child jobs
# ----------------------------------------------------------------------------------------------


def _child_time(job: dict) -> list[dict]:
    """All (lib, grid) cases of one (L, dtype), timed in alternation per batch size."""
    import numpy as np

    _setup_child(job)
    L, dtype, repeats = job["L"], job["dtype"], job["repeats"]
    built, rows = [], []
    for lib, grid in job["cases"]:
        t0 = time.perf_counter()
        try:
            tr = _build(lib, grid, L, dtype)
            built.append((lib, grid, tr, time.perf_counter() - t0))
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            for B in job["batches"]:
                rows.append(_row(lib, grid, L, dtype, B, note=f"setup failed: {type(exc).__name__}: {exc}"[:200]))
    first_call = {}
    for B in job["batches"]:
        rng = np.random.default_rng(1234)
        state = []
        for lib, grid, tr, setup_s in built:
            try:
                t0 = time.perf_counter()
                c = tr.make_coeffs(B, rng)
                y = tr.inv(c)  # warm-up (first call: JIT, FFT plans, allocations)
                tr.fwd(y)
                first_call.setdefault((lib, grid), time.perf_counter() - t0)
                state.append([lib, grid, tr, setup_s, c, y, [], [], None])
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                rows.append(_row(lib, grid, L, dtype, B, setup_s=setup_s,
                                 note=f"error: {type(exc).__name__}: {exc}"[:200]))
        for _ in range(repeats):  # alternate: every case once per repetition
            for st in state:
                tr, c, y = st[2], st[4], st[5]
                t0 = time.perf_counter()
                tr.fwd(y)
                t1 = time.perf_counter()
                tr.inv(c)
                t2 = time.perf_counter()
                st[6].append(t1 - t0)
                st[7].append(t2 - t1)
        for lib, grid, tr, setup_s, c, y, tf, ti, _ in state:
            err = tr.rel_err(c, tr.fwd(y))
            rows.append(_row(lib, grid, L, dtype, B, forward_ms=1e3 * statistics.median(tf),
                             forward_min_ms=1e3 * min(tf), inverse_ms=1e3 * statistics.median(ti),
                             inverse_min_ms=1e3 * min(ti), roundtrip_rel_err=err, setup_s=setup_s,
                             first_call_s=first_call.get((lib, grid))))
        del state
    return rows


def _child_memory(job: dict) -> list[dict]:
    """One (lib, grid, L, dtype): setup, then one forward + inverse per batch size; peak RSS increase."""
    import numpy as np

    _setup_child(job)
    (lib, grid), = job["cases"]
    L, dtype = job["L"], job["dtype"]
    base = _peak_rss_mb()
    t0 = time.perf_counter()
    tr = _build(lib, grid, L, dtype)
    setup_s = time.perf_counter() - t0
    rows = []
    for B in job["batches"]:
        rng = np.random.default_rng(0)
        c = tr.make_coeffs(B, rng)
        y = tr.inv(c)
        tr.fwd(y)
        del c, y
        peak = _peak_rss_mb()
        rows.append(_row(lib, grid, L, dtype, B, setup_s=setup_s, peak_mb=peak - base, peak_abs_mb=peak))
    return rows


def _row(lib: str, grid: str, L: int, dtype: str, batch: int, **values) -> dict:
    row = {"library": lib, "grid": grid_label(lib, grid, L), "L": L, "dtype": dtype, "batch": batch,
           "forward_ms": None, "forward_min_ms": None, "inverse_ms": None, "inverse_min_ms": None,
           "roundtrip_rel_err": None, "setup_s": None, "first_call_s": None, "peak_mb": None,
           "peak_abs_mb": None, "note": ""}
    row.update(values)
    return row


def run_job(job: dict, timeout: float) -> list[dict]:
    """Run a child job in a fresh interpreter; failures (crash, OOM kill, timeout) become rows with a note."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", json.dumps(job)]
    try:
        proc = subprocess.run(cmd, env=_thread_env(job["threads"]), capture_output=True, text=True,
                              timeout=timeout)
        for line in proc.stdout.splitlines():
            if line.startswith("ROWS "):
                return json.loads(line[5:])
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        note = ("killed: SIGKILL (likely out of memory)" if proc.returncode == -9
                else f"crashed: exit {proc.returncode}: {tail[0][:150]}")
        sys.stderr.write(proc.stderr[-3000:])
    except subprocess.TimeoutExpired:
        note = f"timeout after {timeout:.0f} s"
    return [_row(lib, grid, job["L"], job["dtype"], B, note=note) for lib, grid in job["cases"]
            for B in job["batches"]]


# ----------------------------------------------------------------------------------------------
# Tables and CLI
# ----------------------------------------------------------------------------------------------


def _f(value, kind: str) -> str:  # noqa: ANN001
    if value is None:
        return "–"
    if kind == "ms":
        return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    if kind == "err":
        return f"{value:.1e}"
    if kind == "s":
        return f"{value:.2g}" if value < 10 else f"{value:.0f}"
    return f"{value:.0f}"


def _ft(med, mn) -> str:  # noqa: ANN001
    return "–" if med is None else f"{_f(med, 'ms')} ({_f(mn, 'ms')})"


def time_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(TIME_HEADERS) + " |", "|---|---|" + "--:|" * (len(TIME_HEADERS) - 3) + "---|"]
    for r in rows:
        cells = [r["library"], r["grid"], str(r["L"]), r["dtype"], str(r["batch"]),
                 _ft(r["forward_ms"], r["forward_min_ms"]), _ft(r["inverse_ms"], r["inverse_min_ms"]),
                 _f(r["roundtrip_rel_err"], "err"), _f(r["setup_s"], "s"), _f(r["first_call_s"], "s"),
                 _f(r["peak_mb"], "mb"), r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(MEM_HEADERS) + " |", "|---|---|" + "--:|" * (len(MEM_HEADERS) - 3) + "---|"]
    for r in rows:
        cells = [r["library"], r["grid"], str(r["L"]), r["dtype"], str(r["batch"]), _f(r["setup_s"], "s"),
                 _f(r["peak_mb"], "mb"), _f(r["peak_abs_mb"], "mb"), r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _cases(args: argparse.Namespace) -> list[tuple[str, str]]:
    cases = []
    if "sphcnn" in args.libs:
        cases += [("sphcnn", g) for g in args.grids]
    if "s2fft" in args.libs and not args.memory_only:
        cases += [("s2fft", s) for s in args.s2fft_samplings]
    return cases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--L", type=int, nargs="+", default=[8, 16, 32, 64], help="bandlimits (add 128 if wanted)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--libs", nargs="+", default=list(LIBS), choices=LIBS)
    p.add_argument("--grids", nargs="+", default=list(SPHCNN_GRIDS), choices=SPHCNN_GRIDS, help="sphcnn grids")
    p.add_argument("--s2fft-samplings", nargs="+", default=list(S2FFT_SAMPLINGS), choices=S2FFT_SAMPLINGS)
    p.add_argument("--repeats", type=int, default=7, help="timed repetitions after one warm-up (median reported)")
    p.add_argument("--threads", type=int, default=1, help="torch / OMP / XLA threads (1 avoids oversubscription)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-case memory subprocesses")
    p.add_argument("--memory-only", action="store_true",
                   help="only sphcnn's memory (forward + inverse modules and one transform per batch size)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or min(args.L) < 2 or min(args.batch) < 1:
        p.error("--repeats, --threads, --batch must be >= 1 and --L >= 2")
    return args


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    """Run the benchmark, print the tables, return {"time": rows, "memory": rows}."""
    args = parse_args(argv)
    if args._child is not None:
        job = json.loads(args._child)
        rows = (_child_memory if job["kind"] == "memory" else _child_time)(job)
        print("ROWS " + json.dumps(rows), flush=True)
        return {}
    batches = sorted(set(args.batch))
    cases = _cases(args)
    time_rows, mem_rows = [], []
    for L in args.L:
        for dtype in args.dtype:
            base = {"L": L, "dtype": dtype, "batches": batches, "repeats": args.repeats, "threads": args.threads}
            if not args.memory_only:
                print(f"[time L={L} {dtype}]", file=sys.stderr, flush=True)
                new = run_job({**base, "kind": "time", "cases": cases}, args.timeout)
                time_rows += new
                for r in new:
                    print("  " + time_table([r]).splitlines()[-1], file=sys.stderr, flush=True)
            if not args.no_memory or args.memory_only:
                for case in cases:
                    print(f"[memory {case[0]} {case[1]} L={L} {dtype}]", file=sys.stderr, flush=True)
                    new = run_job({**base, "kind": "memory", "cases": [case]}, args.timeout)
                    mem_rows += new
                    for r in new:
                        print("  " + memory_table([r]).splitlines()[-1], file=sys.stderr, flush=True)
    # Merge the memory column into the timing rows.
    peak = {(r["library"], r["grid"], r["L"], r["dtype"], r["batch"]): r for r in mem_rows}
    for r in time_rows:
        m = peak.get((r["library"], r["grid"], r["L"], r["dtype"], r["batch"]))
        if m is not None:
            r["peak_mb"] = m["peak_mb"]
            if m["note"] and not r["note"]:
                r["note"] = "memory run: " + m["note"]
    if time_rows:
        print(time_table(time_rows))
    if mem_rows and (args.memory_only or not time_rows):
        print(memory_table(mem_rows))
    elif mem_rows:
        print()
        print(memory_table(mem_rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"time": time_rows, "memory": mem_rows}, fh, indent=1)
    return {"time": time_rows, "memory": mem_rows}


if __name__ == "__main__":
    main()
