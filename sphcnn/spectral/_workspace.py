"""Scratch buffers kept between calls, so large transforms do not page-fault fresh memory every call.

glibc serves allocations above its mmap threshold (at most 32 MB) with fresh pages and
returns them to the OS on free, so a transform that allocates a 64 MB temporary pays
the page faults again on every call: here 27 ms to first-touch 64 MB against 4 ms to
rewrite it (GL L = 512, float64, 16 maps: ~400 MB of temporaries per forward + inverse).
A :class:`Workspace` keeps such temporaries per module and thread. Only buffers that
never leave a call live here, and only those of at least 1 MB on the CPU: glibc's mmap
threshold moves between 128 KB and 32 MB with the allocation history, so even
few-MB blocks can come back as fresh pages (the 11 MB spectra of the s2cnn network's
backward on 2 threads: a training step 151 → 133 ms once kept), while smaller ones are
reused by the allocator; GPU memory goes through torch's caching allocator.

The views a call takes of its buffers (numpy arrays, reshaped planes) can be kept too
(:meth:`Workspace.views`): a transform's Python set-up is a visible share of a small
call, and more so in a real call than in a loop of set-ups, since each call starts
with caches that the previous call's matmuls and FFTs evicted (GL L = 128, float32,
16 maps, two threads: 230 µs of Python per forward with kept views against 530 µs
before; forward / inverse 2.9–3.3 / 3.3–3.9 against 3.5–4.0 / 3.7–4.3 ms). They
live with the buffers: a reallocation or :meth:`Workspace.clear` drops them all.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable

import numpy as np
import torch

MIN_BYTES = 2**20


class Workspace:
    """Per-thread scratch tensors of one module. Copies and pickles start empty."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __reduce__(self):  # noqa: ANN204 - thread-local storage is not copyable; a copy starts empty
        return (Workspace, ())

    def empty(self, name: str, shape: tuple[int, ...], like: torch.Tensor,
              dtype: torch.dtype | None = None) -> torch.Tensor:
        """An uninitialized ``shape`` tensor on ``like``'s device, of ``like``'s dtype unless ``dtype`` is given,
        reused between calls when large."""
        dtype = like.dtype if dtype is None else dtype
        numel = math.prod(shape)
        if like.device.type != "cpu" or numel * dtype.itemsize < MIN_BYTES:
            return like.new_empty(shape, dtype=dtype)
        buffers = self._local.__dict__.setdefault("buffers", {})
        flat = buffers.get(name)
        if flat is None or flat.dtype != dtype or flat.numel() < numel:
            buffers.pop(name, None)  # free the old one before allocating the new
            self._local.__dict__.pop("views", None)  # and every view of it
            flat = buffers[name] = like.new_empty(numel, dtype=dtype)
        return flat[:numel].view(shape)

    def views(self, key: Hashable, like: torch.Tensor, build: Callable[[], object]) -> object:
        """``build()`` (views of this workspace's buffers, which it may allocate) on the first call with ``key`` on
        this thread, the same object after that until a buffer is reallocated or released (on the CPU; elsewhere
        ``build()`` every call). The views of a call are then a dict lookup instead of 50–100 µs of slicing."""
        if like.device.type != "cpu":
            return build()
        cache = self._local.__dict__.get("views")
        found = None if cache is None else cache.get(key)
        if found is None:
            found = build()  # may reallocate a buffer, which drops the cache: add to the one there is afterwards
            self._local.__dict__.setdefault("views", {})[key] = found
        return found

    def clear(self) -> None:
        """Release this thread's buffers (and the views of them)."""
        self._local.__dict__.pop("buffers", None)
        self._local.__dict__.pop("views", None)

    def nbytes(self) -> int:
        """Bytes held by this thread's buffers."""
        return sum(t.numel() * t.element_size() for t in self._local.__dict__.get("buffers", {}).values())


def scratch(workspace: Workspace | None, name: str, shape: tuple[int, ...], like: torch.Tensor,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """``workspace.empty(…)``, or a fresh tensor when there is no workspace (the result must outlive the call)."""
    if workspace is None:
        return like.new_empty(shape, dtype=like.dtype if dtype is None else dtype)
    return workspace.empty(name, shape, like, dtype)


def batch_ranges(count: int, item_bytes: int, max_bytes: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``count`` items with at most ``max_bytes`` each (at least one item);
    a single range when ``max_bytes`` is None."""
    step = count if max_bytes is None else max(1, max_bytes // item_bytes)
    return [(start, min(count, start + step)) for start in range(0, count, max(1, step))]


def fresh(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialized result tensor of ``like``'s dtype and device that outlives the call.

    On the CPU numpy allocates it: a 4 MB result allocated by torch sat at the top of glibc's heap, was
    handed back to the OS when the caller freed it and page-faulted in again on the next call (the S²
    inverse at L = 128, float64, 16 maps: 465–628 faults per call, brk shrinking by 8 MB), while numpy's
    allocation of the same size was reused without a system call (0 faults).
    """
    if like.device.type != "cpu":
        return like.new_empty(shape)
    dtype = _NUMPY_DTYPES.get(like.dtype) or torch.empty((), dtype=like.dtype).numpy().dtype
    return torch.from_numpy(np.empty(shape, dtype=dtype))


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
