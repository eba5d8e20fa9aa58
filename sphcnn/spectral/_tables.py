"""Modules whose precomputed tables are rebuilt, never cast, when their dtype changes, and shared between modules."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterable, Sequence

import numpy as np
import torch
from torch import nn


class SharedTables:
    """The tensors built for one key (module kind, grid, L, direction, dtype, device), in build order, and views
    of them that a transform takes on every call (:meth:`derived`)."""

    __slots__ = ("__weakref__", "_derived", "tensors")

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors = tensors
        self._derived: dict = {}

    def derived(self, key: Hashable, build: Callable[[], object]) -> object:
        """``build()`` — views of these tensors (numpy arrays, transposes) — once per key, as long as the tables
        live; copies and pickles start without them."""
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = build()
        return found

    def __getstate__(self) -> tuple[torch.Tensor, ...]:
        return self.tensors

    def __setstate__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors, self._derived = tensors, {}


# Every module of the same key holds the same tables: built once (GL L = 512 float64 S² analysis: 272 MB and
# 0.4–0.9 s), freed with the last module holding them (weak values). In memory only, never on disk.
_SHARED: weakref.WeakValueDictionary[tuple, SharedTables] = weakref.WeakValueDictionary()


def shared_tables(key: tuple, build: Callable[[], Iterable[np.ndarray]], dtype: torch.dtype,
                  device: torch.device) -> SharedTables:
    """The tables of ``key`` in ``dtype`` on ``device``: ``build()``'s arrays (float64, or already in ``dtype``)
    cast once, or those another module already holds."""
    full_key = (*key, dtype, device)
    tables = _SHARED.get(full_key)
    if tables is None:
        tensors = tuple(torch.from_numpy(t).to(dtype=dtype, device=device) for t in build())
        tables = _SHARED[full_key] = SharedTables(tensors)
    return tables


class TableModule(nn.Module):
    """Base for modules holding precomputed tables in non-persistent buffers.

    The tables are computed in float64 and cast once; ``.to(dtype)``,
    ``.double()`` or ``.float()`` rebuild them from float64 in the new dtype
    (a float32 table cast up to float64 would keep float32 round-off).
    Subclasses implement ``_build_tables(dtype, device)`` and call it in
    ``__init__``; it must set ``self.table_dtype``. Large tables registered
    by :meth:`register_shared` are one set per key, dtype and device for all
    modules; a ``.to(device)`` takes the set on that device (built there once)
    instead of copying this module's.
    """

    table_dtype: torch.dtype
    _shared_names: tuple[str, ...] = ()

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        raise NotImplementedError

    def register_shared(self, key: tuple, names: Sequence[str], build: Callable[[], Iterable[np.ndarray]],
                        dtype: torch.dtype, device: torch.device) -> None:
        """Register ``build()``'s tables, one per name, as non-persistent buffers shared by every module of ``key``."""
        self._shared = shared_tables(key, build, dtype, device)  # the strong reference that keeps the set alive
        self._shared_names = tuple(names)
        for name, table in zip(self._shared_names, self._shared.tensors, strict=True):
            self.register_buffer(name, table, persistent=False)

    def _table_device(self) -> torch.device:
        for buf in self.buffers(recurse=False):
            return buf.device
        return torch.device("cpu")

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001
        old, before = self.table_dtype, self._table_device()
        probe = fn(torch.zeros((), dtype=old, device=before))
        changed = probe.dtype != old or probe.device != before
        if changed:  # keep the shared tables out of nn.Module's copy: the set of the new dtype and device replaces them
            for name in self._shared_names:
                self._buffers[name] = None
        super()._apply(fn, recurse)
        if changed:
            self._build_tables(probe.dtype, self._table_device())
        return self

    def _check_dtype(self, x: torch.Tensor, name: str) -> None:
        if x.dtype != self.table_dtype:
            raise TypeError(f"{name} is {x.dtype} but this module's tables are {self.table_dtype}; "
                            f"convert the input or the module (module.to({x.dtype}))")
