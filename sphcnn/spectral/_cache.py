"""In-memory cache of transform modules for the functional API (never written to disk)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

_CACHE: "OrderedDict[tuple, nn.Module]" = OrderedDict()
MAX_ENTRIES = 8


def cached_module(cls: type, grid, dtype: torch.dtype, device: torch.device, **kwargs) -> nn.Module:  # noqa: ANN001
    """``cls(grid, dtype=dtype, **kwargs).to(device)``, built once per (class, grid, dtype, device, kwargs)."""
    key = (cls.__name__, grid.key, dtype, str(device), tuple(sorted(kwargs.items())))
    module = _CACHE.get(key)
    if module is None:
        module = cls(grid, dtype=dtype, **kwargs).to(device)
        _CACHE[key] = module
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return module


def clear_cache() -> None:
    """Drop all cached transform tables (frees their memory)."""
    _CACHE.clear()
