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
