"""ReLU on the SO(3) grid between an inverse and a forward SO(3) transform, one batch chunk at a time.

A grid nonlinearity computes coefficients → samples → ReLU → coefficients. Done on the whole
batch, every step reads and writes full grids (the s2cnn network's first activation: 640
signals × 20³ samples, 20 MB in float32, five times per training step) and autograd keeps
the activated grid for the backward. Here samples exist for one chunk of signals at a time
(~2 MB), from the pair-major spectra of :meth:`InverseSO3FFT.to_pairs` to those of
:meth:`SO3FFT.from_pairs`: the FFTs, the ReLU and the layout copies work on cache-resident
data, and the backward keeps a boolean mask, a quarter of the grid.

With the mask fixed the map between spectra is linear: M = G2P_{L_out} ∘ mask ∘ P2G_{L_in}
(P2G / G2P the layout maps of :mod:`sphcnn.spectral.so3`, optionally scaled per n). Its adjoint
has the same form with the two bandlimits swapped and the half-spectrum weights w_L moved
onto the scales (P2G(s)ᵀ = G2P(s / w), G2P(s)ᵀ = P2G(w · s)), so each direction's backward is
the other and double backward works.
"""

from __future__ import annotations

import torch

from ._fft import half_spectrum_weight
from ._workspace import Workspace, batch_ranges
from .so3 import SO3FFT, InverseSO3FFT, _grid_to_pairs, _pairs_to_grid, num_so3_coeffs

# samples per chunk: 2 MB, small enough for the FFT output, the ReLU and the copies to stay in cache (s2cnn step on
# 2 threads, alternating processes: 256 KB 139 / 182 ms, 512 KB 127 / 148, 1–4 MB 103–137 with 2 MB the most even)
CHUNK_BYTES = 1 << 21


def _scaled(weight: torch.Tensor, scale: torch.Tensor | None, divide: bool = False) -> torch.Tensor:
    if divide:
        return 1 / weight if scale is None else scale / weight
    return weight if scale is None else weight * scale


def _masked_map(pairs: torch.Tensor, n: int, L_out: int, mask: torch.Tensor | None,
                scale_in: torch.Tensor | None, scale_out: torch.Tensor | None,
                workspace: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair-major spectra ``[2L_in−1, L_in, β, B, 2]`` → samples on the n × n (α, γ) planes → ReLU (``mask``
    None: the mask of positive samples is computed and returned) or × ``mask`` → spectra ``[2L_out−1, L_out, β,
    B, 2]``, in batch chunks."""
    n_beta, B = pairs.shape[2], pairs.shape[3]
    out = pairs.new_empty(2 * L_out - 1, L_out, n_beta, B, 2)
    activate = mask is None
    if activate:
        mask = torch.empty(B, n_beta, n, n, dtype=torch.bool, device=pairs.device)
    chunk_bytes = CHUNK_BYTES if pairs.device.type == "cpu" else None
    for b0, b1 in batch_ranges(B, pairs.element_size() * n_beta * n * n, chunk_bytes):
        f = _pairs_to_grid(pairs[:, :, :, b0:b1], n, workspace, scale_in)
        if activate:
            torch.gt(f, 0, out=mask[b0:b1])
            f.relu_()
        else:
            f.mul_(mask[b0:b1])
        _grid_to_pairs(f, L_out, workspace, scale=scale_out, out=out[:, :, :, b0:b1])
    return out, mask


class _MaskedGridMap(torch.autograd.Function):
    """The linear map of :func:`_masked_map` with the mask fixed; its backward is its adjoint, the same map."""

    @staticmethod
    def forward(ctx, pairs: torch.Tensor, mask: torch.Tensor, n: int, L_out: int,  # noqa: ANN001
                scale_in: torch.Tensor | None, scale_out: torch.Tensor | None, workspace: Workspace) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.n, ctx.L_in, ctx.scales, ctx.workspace = n, pairs.shape[1], (scale_in, scale_out), workspace
        return _masked_map(pairs, n, L_out, mask, scale_in, scale_out, workspace)[0]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return _adjoint(ctx, grad), None, None, None, None, None, None


def _adjoint(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """Mᵀ grad for the map saved in ``ctx``: G2P_{L_in}(s_in / w_in) ∘ mask ∘ P2G_{L_out}(w_out · s_out)."""
    (mask,), (scale_in, scale_out) = ctx.saved_tensors, ctx.scales
    L_out = grad.shape[1]
    w_in, w_out = (half_spectrum_weight(L, ctx.n, grad) for L in (ctx.L_in, L_out))
    return _MaskedGridMap.apply(grad, mask, ctx.n, ctx.L_in, _scaled(w_out, scale_out),
                                _scaled(w_in, scale_in, divide=True), ctx.workspace)


class _GridReLU(torch.autograd.Function):
    """:func:`_masked_map` computing its mask: ReLU between the layouts; the backward is the masked adjoint."""

    @staticmethod
    def forward(ctx, pairs: torch.Tensor, n: int, L_out: int, workspace: Workspace) -> torch.Tensor:  # noqa: ANN001
        out, mask = _masked_map(pairs, n, L_out, None, None, None, workspace)
        ctx.save_for_backward(mask)
        ctx.n, ctx.L_in, ctx.scales, ctx.workspace = n, pairs.shape[1], (None, None), workspace
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return _adjoint(ctx, grad), None, None, None


def relu_between(x: torch.Tensor, to_grid: InverseSO3FFT, from_grid: SO3FFT, workspace: Workspace) -> torch.Tensor:
    """``from_grid(relu(to_grid(x)))`` for coefficients ``x [B, L_in(4L_in²−1)/3]`` (B ≥ 2, ``from_grid.L ≥ 2``,
    one grid), without whole-batch grids: returns ``[B, L_out(4L_out²−1)/3]``."""
    grids = [(t.grid.L, t.grid.kind) for t in (to_grid, from_grid)]
    if grids[0] != grids[1]:
        raise ValueError(f"relu_between: the two transforms must use one SO3Grid, got (L, kind) {grids}")
    if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] != num_so3_coeffs(to_grid.L) or from_grid.L < 2:
        raise ValueError(f"relu_between expects x [B >= 2, {num_so3_coeffs(to_grid.L)}] and from_grid.L >= 2, got "
                         f"{tuple(x.shape)} and L={from_grid.L}")
    to_grid._check_dtype(x, "x")
    pairs = to_grid.to_pairs(x.T)
    pairs = _GridReLU.apply(pairs, to_grid.grid.shape[1], from_grid.L, workspace)
    return from_grid.from_pairs(pairs).T
