"""The one validator for string options: an unknown option is an error, never a fallback."""

from __future__ import annotations

from typing import Any, get_args


def check_option(name: str, value: Any, allowed_type: Any) -> str:
    """Return ``value`` if it is one of the ``Literal`` type's values, else raise ``ValueError``."""
    allowed = get_args(allowed_type)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_bandlimit(L: Any, minimum: int = 1) -> int:
    if isinstance(L, bool) or not isinstance(L, int) or L < minimum:
        raise ValueError(f"bandlimit L must be an integer >= {minimum}, got {L!r}")
    return L


def check_transform_args(grid: Any, grid_type: type, L: Any, dtype: Any) -> int:
    """Validate a transform's (grid, output bandlimit, table dtype); returns L (default grid.L)."""
    import torch

    if not isinstance(grid, grid_type):
        raise TypeError(f"grid must be an {grid_type.__name__}, got {type(grid).__name__}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    L = grid.L if L is None else L
    if isinstance(L, bool) or not isinstance(L, int) or not 1 <= L <= grid.L:
        raise ValueError(f"coefficient bandlimit L must be an integer in [1, grid.L={grid.L}], got {L!r}")
    return L
