"""FFTs along the last dimension, split over threads on the CPU.

torch's CPU FFT runs each call on one thread; a large batch of rows is
split into chunks transformed concurrently (the GIL is released inside the
kernels). Grad mode is thread-local, so workers inherit the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import torch

MIN_ELEMENTS_PER_THREAD = 1 << 17


@lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sphcnn-fft")


def threaded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, split_dim: int = 0) -> torch.Tensor:
    """``fn(x)`` for an fn acting along the last dim, computed in chunks of ``split_dim`` on several threads."""
    workers = min(torch.get_num_threads(), x.shape[split_dim] if x.dim() else 1)
    if x.device.type != "cpu" or workers < 2 or x.numel() < 2 * MIN_ELEMENTS_PER_THREAD:
        return fn(x)
    workers = min(workers, x.numel() // MIN_ELEMENTS_PER_THREAD)
    grad = torch.is_grad_enabled()

    def run(chunk: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(grad):
            return fn(chunk)

    chunks = x.chunk(workers, dim=split_dim)
    futures = [_pool(workers).submit(run, c) for c in chunks[1:]]
    first = run(chunks[0])
    return torch.cat([first] + [f.result() for f in futures], dim=split_dim)
