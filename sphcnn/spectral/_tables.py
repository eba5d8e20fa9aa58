"""Modules whose precomputed tables are rebuilt, never cast, when their dtype changes."""

from __future__ import annotations

import torch
from torch import nn


class TableModule(nn.Module):
    """Base for modules holding precomputed tables in non-persistent buffers.

    The tables are computed in float64 and cast once; ``.to(dtype)``,
    ``.double()`` or ``.float()`` rebuild them from float64 in the new dtype
    (a float32 table cast up to float64 would keep float32 round-off).
    Subclasses implement ``_build_tables(dtype, device)`` and call it in
    ``__init__``; it must set ``self.table_dtype``.
    """

    table_dtype: torch.dtype

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        raise NotImplementedError

    def _table_device(self) -> torch.device:
        for buf in self.buffers(recurse=False):
            return buf.device
        return torch.device("cpu")

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001
        old = self.table_dtype
        super()._apply(fn, recurse)
        new = fn(torch.zeros((), dtype=old)).dtype
        if new != old:
            self._build_tables(new, self._table_device())
        return self

    def _check_dtype(self, x: torch.Tensor, name: str) -> None:
        if x.dtype != self.table_dtype:
            raise TypeError(f"{name} is {x.dtype} but this module's tables are {self.table_dtype}; "
                            f"convert the input or the module (module.to({x.dtype}))")
