"""Peak memory and setup time of one SO(3) forward + inverse transform pair.

    python experiments/mem_so3.py 128 gl float32     # L, grid kind, dtype; prints one markdown row

Run one case per process: the number is the increase of the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from sphcnn.spectral import SO3FFT, InverseSO3FFT, SO3Grid, num_so3_coeffs


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    L, kind, dtype_name = int(argv[0]), argv[1], argv[2]
    dtype = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    torch.set_num_threads(1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.time()
    grid = SO3Grid(L, kind)
    forward, inverse = SO3FFT(grid, dtype=dtype), InverseSO3FFT(grid, dtype=dtype)
    setup = time.time() - start
    coeffs = torch.randn(1, num_so3_coeffs(L), dtype=dtype)
    start = time.time()
    roundtrip = forward(inverse(coeffs))
    run = time.time() - start
    err = ((roundtrip - coeffs).norm() / coeffs.norm()).item()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print("| grid | L | dtype | setup s | roundtrip s | rel. error | peak MB |")
    print("|---|--:|---|--:|--:|--:|--:|")
    print(f"| {kind} | {L} | {dtype_name} | {setup:.1f} | {run:.2f} | {err:.1e} | {peak:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
