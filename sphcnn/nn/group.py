"""Discrete group convolution on Z^d ⋊ H by "transform the filter, then convolve".

H is a finite group of signed axis permutations (d × d integer matrices with
one ±1 per row and column), d ∈ {1, 2, 3}. It acts on a signal on the grid
about the grid's centre, ``(h·x)(t) = x(h⁻¹ t)``, and optionally also permutes
the input channels (the reverse complement swaps A↔T, C↔G while reversing).

Feature maps on Z^d ⋊ H have shape ``[B, C, |H|, *spatial]``. The group acts
on them by ``(h·F)(h', t) = F(h⁻¹h', h⁻¹t)``; a translation shifts ``t``.

Lifting (Z^d → Z^d ⋊ H) and group (Z^d ⋊ H → Z^d ⋊ H) layers compute, for each
output element h, an ordinary cross-correlation with the filter transformed by
h — the same action as on the signals. All |H| transformed filters are
gathered from the free weights with one precomputed index and applied by a
single ``conv{d}d`` with ``|H| × C_out`` output channels, so the cost is that
of an ordinary convolution of that width.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sphcnn.spectral._options import check_option

GroupName = Literal["p4", "p4m", "rc", "O", "Oh"]
Reduction = Literal["max", "mean"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def signed_permutation_matrices(dim: int, proper_only: bool = False) -> np.ndarray:
    """All d × d signed permutation matrices (``2^d d!``), or only those with determinant +1."""
    if dim not in (1, 2, 3):
        raise ValueError(f"spatial dimension must be 1, 2 or 3, got {dim!r}")
    matrices = []
    for perm in itertools.permutations(range(dim)):
        for signs in itertools.product((1, -1), repeat=dim):
            m = np.zeros((dim, dim), dtype=np.int64)
            m[list(perm), range(dim)] = signs
            if proper_only and round(np.linalg.det(m)) != 1:
                continue
            matrices.append(m)
    return np.stack(matrices)


class SignedPermutationGroup:
    """A finite group H of signed axis permutations, given by its elements.

    The elements are checked to be signed permutation matrices, distinct,
    to contain the identity and to be closed under composition (a finite
    closed set is a group). Index 0 is always the identity.

    Attributes:
        matrices: ``[|H|, d, d]`` int64 numpy array.
        cayley: ``cayley[i, j]`` = index of ``h_i h_j``.
        inverse: ``inverse[i]`` = index of ``h_i⁻¹``.
    """

    def __init__(self, matrices: Sequence | np.ndarray | torch.Tensor, name: str | None = None) -> None:
        m = np.asarray(matrices.detach().cpu() if isinstance(matrices, torch.Tensor) else matrices)
        if m.ndim != 3 or m.shape[1] != m.shape[2] or m.shape[1] not in (1, 2, 3) or m.shape[0] == 0:
            raise ValueError(f"group elements must have shape [n, d, d] with d in 1..3 and n >= 1, got {m.shape}")
        if not np.all(np.isin(m, (-1, 0, 1))):
            raise ValueError("group elements must be signed permutation matrices (entries -1, 0, 1)")
        m = m.astype(np.int64)
        nonzero = np.abs(m)
        if not (np.all(nonzero.sum(axis=1) == 1) and np.all(nonzero.sum(axis=2) == 1)):
            raise ValueError("group elements must be signed permutation matrices (one ±1 in every row and column)")
        keys = {e.tobytes(): i for i, e in enumerate(m)}
        if len(keys) != len(m):
            raise ValueError("group elements must be distinct; got duplicates")
        identity = np.eye(m.shape[1], dtype=np.int64)
        if identity.tobytes() not in keys:
            raise ValueError("group elements must contain the identity matrix")
        # Put the identity first so index 0 always means "do nothing".
        order = [keys[identity.tobytes()]] + [i for i in range(len(m)) if i != keys[identity.tobytes()]]
        m = m[order]
        keys = {e.tobytes(): i for i, e in enumerate(m)}
        n = len(m)
        cayley = np.empty((n, n), dtype=np.int64)
        for i in range(n):
            for j in range(n):
                key = (m[i] @ m[j]).tobytes()
                if key not in keys:
                    raise ValueError(
                        f"the given matrices are not a group: the product of elements {i} and {j} "
                        f"is not among them (not closed under composition)"
                    )
                cayley[i, j] = keys[key]
        self.matrices = m
        self.cayley = cayley
        self.inverse = np.argmax(cayley == 0, axis=1)
        self.name = name or f"H{n}<GL({m.shape[1]})"

    @property
    def order(self) -> int:
        return len(self.matrices)

    @property
    def dim(self) -> int:
        return self.matrices.shape[1]

    def __len__(self) -> int:
        return self.order

    def __repr__(self) -> str:
        return f"SignedPermutationGroup(name={self.name!r}, order={self.order}, dim={self.dim})"

    def act_on_grid(self, x: torch.Tensor, element: int) -> torch.Tensor:
        """``(h·x)(t) = x(h⁻¹t)`` on the last ``d`` axes, about the grid centre.

        For ``h`` with column ``k`` holding ``s_k`` in row ``π(k)``, ``h⁻¹ t`` has
        coordinate ``k`` equal to ``s_k t_{π(k)}``: flip the axes with ``s_k = −1``,
        then move input axis ``k`` to output axis ``π(k)``.
        """
        d = self.dim
        if x.dim() < d:
            raise ValueError(f"expected a tensor with at least {d} spatial axes, got shape {tuple(x.shape)}")
        m = self.matrices[element]
        lead = x.dim() - d
        rows = np.argmax(np.abs(m), axis=0)  # π(k)
        signs = m[rows, np.arange(d)]
        flipped = [lead + k for k in range(d) if signs[k] < 0]
        if flipped:
            x = torch.flip(x, flipped)
        source_of_output = np.argsort(rows)  # π⁻¹(j): the input axis that lands on output axis j
        return x.permute(*range(lead), *(lead + int(k) for k in source_of_output))

    def act_on_group_signal(self, x: torch.Tensor, element: int) -> torch.Tensor:
        """``(h·F)(h', t) = F(h⁻¹h', h⁻¹t)`` for ``F`` of shape ``[..., |H|, *spatial]``."""
        d = self.dim
        if x.dim() < d + 1 or x.shape[-d - 1] != self.order:
            raise ValueError(
                f"expected a signal on Z^{d} ⋊ H of shape [..., {self.order}, *{d} spatial], got {tuple(x.shape)}"
            )
        source = torch.as_tensor(self.cayley[self.inverse[element]], device=x.device)
        return self.act_on_grid(x.index_select(x.dim() - d - 1, source), element)


def make_group(name: GroupName) -> SignedPermutationGroup:
    """The named groups: p4 / p4m on Z², ``rc`` = Z₂ reversal on Z, O (24) / Oh (48) on Z³."""
    check_option("group", name, GroupName)
    dim, proper = {"p4": (2, True), "p4m": (2, False), "rc": (1, False), "O": (3, True), "Oh": (3, False)}[name]
    return SignedPermutationGroup(signed_permutation_matrices(dim, proper_only=proper), name=name)


def _as_group(group: SignedPermutationGroup | str) -> SignedPermutationGroup:
    if isinstance(group, SignedPermutationGroup):
        return group
    return make_group(group)


def _check_channel_permutation(
    group: SignedPermutationGroup, perm: Sequence[Sequence[int]] | np.ndarray | torch.Tensor, channels: int
) -> np.ndarray:
    """Validate ``perm[i]``: ``(h_i·f)[:, k] = f[:, perm[i][k]]``, a homomorphism H → S_C."""
    p = np.asarray(perm.detach().cpu() if isinstance(perm, torch.Tensor) else perm)
    if p.shape != (group.order, channels):
        raise ValueError(
            f"channel permutation must have shape [|H|, in_channels] = [{group.order}, {channels}], got {p.shape}"
        )
    p = p.astype(np.int64)
    for i, row in enumerate(p):
        if sorted(row.tolist()) != list(range(channels)):
            raise ValueError(f"channel permutation row {i} is not a permutation of 0..{channels - 1}: {row.tolist()}")
    if not np.array_equal(p[0], np.arange(channels)):
        raise ValueError("the identity element must not permute channels (row 0 of the channel permutation)")
    for i in range(group.order):
        for j in range(group.order):
            # h_i·(h_j·f) = f[:, p_j][:, p_i] = f[:, p_j[p_i]] must equal (h_i h_j)·f.
            if not np.array_equal(p[group.cayley[i, j]], p[j][p[i]]):
                raise ValueError(
                    f"channel permutation is not a group action: elements {i} and {j} compose inconsistently"
                )
    return p


def _spatial_conv_check(x: torch.Tensor, expected_rank: int, expected_shape: str, channels: int, what: str) -> None:
    if x.dim() != expected_rank:
        raise ValueError(f"{what} expects input of shape {expected_shape} ({expected_rank} axes), got {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{what} expects {channels} input channels, got {x.shape[1]} (shape {tuple(x.shape)})")


class _GroupConvBase(nn.Module):
    """Shared machinery: free weights, the gather index of transformed filters, bias, conv."""

    def __init__(self, group, in_channels: int, out_channels: int, kernel_size: int, padding: int, bias: bool):
        super().__init__()
        self.group = _as_group(group)
        if kernel_size < 1 or padding < 0:
            raise ValueError(f"kernel_size must be >= 1 and padding >= 0, got {kernel_size}, {padding}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None

    def _build(self, filter_shape: tuple[int, ...], transform) -> None:
        numel = int(np.prod(filter_shape))
        self.weight = nn.Parameter(torch.empty(self.out_channels, *filter_shape))
        base = torch.arange(numel).reshape(filter_shape)
        index = torch.stack([transform(base, i).reshape(-1) for i in range(self.group.order)])
        self.register_buffer("filter_index", index, persistent=False)
        fan_in = numel
        bound = 1.0 / fan_in**0.5
        with torch.no_grad():
            # Conv's default (kaiming-uniform with a = √5) bound is 1/√fan_in.
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def transformed_filters(self) -> torch.Tensor:
        """``[C_out·|H|, *filter_shape]``: filter ``o·|H| + i`` is ``h_i`` applied to filter ``o``."""
        # index_select: its backward (index_add) is cheaper on CPU than that of advanced indexing.
        flat = self.weight.flatten(1).index_select(1, self.filter_index.reshape(-1))  # [C_out, |H|·numel]
        return flat.reshape(self.out_channels * self.group.order, *self.weight.shape[1:])

    def _convolve(self, x: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        bias = None
        if self.bias is not None:
            bias = self.bias.repeat_interleave(self.group.order)  # shared over H: equivariant
        y = _CONV[self.group.dim](x, filters, bias, padding=self.padding)
        return y.reshape(y.shape[0], self.out_channels, self.group.order, *y.shape[2:])

    def extra_repr(self) -> str:
        return (
            f"group={self.group.name}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, padding={self.padding}, bias={self.bias is not None}"
        )


class LiftingConv(_GroupConvBase):
    """Z^d → Z^d ⋊ H: ``F_o(t, h) = Σ_k Σ_y f_k(y) (h·ψ_o)_k(y − t)``.

    Input ``[B, C_in, *spatial]``, output ``[B, C_out, |H|, *spatial']``.

    Args:
        group: a :class:`SignedPermutationGroup` or a name (``"p4"``, ``"p4m"``, ``"rc"``, ``"O"``, ``"Oh"``).
        channel_permutation: optional ``[|H|, C_in]`` indices; element ``i``
            maps input ``f`` to ``f[:, perm[i]]`` besides moving the grid
            (e.g. ``[[0, 1, 2, 3], [3, 2, 1, 0]]`` for the reverse complement of ACGT).
    """

    def __init__(
        self,
        group: SignedPermutationGroup | GroupName,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        bias: bool = True,
        channel_permutation: Sequence[Sequence[int]] | np.ndarray | torch.Tensor | None = None,
    ) -> None:
        super().__init__(group, in_channels, out_channels, kernel_size, padding, bias)
        self.channel_permutation = None
        if channel_permutation is not None:
            self.channel_permutation = _check_channel_permutation(self.group, channel_permutation, in_channels)
        self._build((in_channels,) + (kernel_size,) * self.group.dim, self.act_on_input)

    def act_on_input(self, x: torch.Tensor, element: int) -> torch.Tensor:
        """The action on input signals ``[..., C_in, *spatial]``: move the grid and permute channels."""
        y = self.group.act_on_grid(x, element)
        if self.channel_permutation is not None:
            perm = torch.as_tensor(self.channel_permutation[element], device=x.device)
            y = y.index_select(y.dim() - self.group.dim - 1, perm)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.group.dim
        _spatial_conv_check(x, d + 2, f"[B, C_in, *{d} spatial]", self.in_channels, "LiftingConv")
        return self._convolve(x, self.transformed_filters())


class GroupConv(_GroupConvBase):
    """Z^d ⋊ H → Z^d ⋊ H: ``F_o(t, h) = Σ_k Σ_{h'} Σ_y f_k(y, h') ψ_{o,k}(h⁻¹h', h⁻¹(y − t))``.

    Input and output ``[B, C, |H|, *spatial]``.
    """

    def __init__(
        self,
        group: SignedPermutationGroup | GroupName,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__(group, in_channels, out_channels, kernel_size, padding, bias)
        shape = (in_channels, self.group.order) + (kernel_size,) * self.group.dim
        self._build(shape, self.group.act_on_group_signal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, n = self.group.dim, self.group.order
        _spatial_conv_check(x, d + 3, f"[B, C_in, {n}, *{d} spatial]", self.in_channels, "GroupConv")
        if x.shape[2] != n:
            raise ValueError(f"GroupConv expects {n} group elements on axis 2, got shape {tuple(x.shape)}")
        filters = self.transformed_filters().flatten(1, 2)
        return self._convolve(x.flatten(1, 2), filters)


def _reduce(x: torch.Tensor, dim: int, reduction: Reduction) -> torch.Tensor:
    return x.amax(dim=dim) if reduction == "max" else x.mean(dim=dim)


class GroupPool(nn.Module):
    """Pool over H: ``[B, C, |H|, *spatial] → [B, C, *spatial]`` (invariant to the H part)."""

    def __init__(self, reduction: Reduction = "max") -> None:
        super().__init__()
        self.reduction = check_option("reduction", reduction, Reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"GroupPool expects [B, C, |H|, *spatial], got shape {tuple(x.shape)}")
        return _reduce(x, 2, self.reduction)


class GlobalPool(nn.Module):
    """Pool over every axis after the channel axis: ``[B, C, ...] → [B, C]``."""

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction = check_option("reduction", reduction, Reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"GlobalPool expects [B, C, ...], got shape {tuple(x.shape)}")
        return _reduce(x.flatten(2), 2, self.reduction)


class GroupSpatialPool(nn.Module):
    """Coarsen the grid of ``[B, C, |H|, *spatial]`` by non-overlapping ``k^d`` blocks.

    Blocks must tile the grid exactly: with a remainder, the dropped border
    would sit on one side only and break the symmetry about the centre.
    """

    def __init__(self, dim: int, kernel_size: int, reduction: Reduction = "max") -> None:
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"spatial dimension must be 1, 2 or 3, got {dim!r}")
        self.dim, self.kernel_size = dim, kernel_size
        self.reduction = check_option("reduction", reduction, Reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, k = self.dim, self.kernel_size
        if x.dim() != d + 3:
            raise ValueError(f"GroupSpatialPool expects [B, C, |H|, *{d} spatial], got shape {tuple(x.shape)}")
        spatial = x.shape[3:]
        if any(s % k for s in spatial):
            raise ValueError(f"spatial size {tuple(spatial)} is not divisible by the pool size {k}; equivariance needs it")
        pool = _MAX_POOL[d] if self.reduction == "max" else _AVG_POOL[d]
        y = pool(x.flatten(1, 2), k)
        return y.reshape(*x.shape[:3], *y.shape[2:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_size={self.kernel_size}, reduction={self.reduction}"


class GroupBatchNorm(nn.Module):
    """Batch norm with one mean, variance, scale and shift per channel, shared over H and space.

    Sharing the statistics and the affine map over H is what keeps it equivariant.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(num_channels, eps=eps, momentum=momentum, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"GroupBatchNorm expects [B, C, |H|, *spatial], got shape {tuple(x.shape)}")
        return self.norm(x.flatten(2)).reshape(x.shape)
