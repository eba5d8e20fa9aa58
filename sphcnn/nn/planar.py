"""Planar convolution as a sum of generator filters: ``F(x) = Σ_n α_n C(θ_n) x``.

``C(θ)`` is the doubly block circulant matrix of a 2-D filter θ (periodic
cross-correlation, the convention of ``torch.nn.Conv2d``). A layer holds
weights α over a fixed basis of generator filters θ_n:

- ``"unit_peaks"``: θ_n = δ at one filter position; α is the ordinary conv
  weight and the layer equals ``torch.nn.Conv2d``.
- ``"directional_derivatives"``: the local average ``1/(H_f W_f)`` and
  ``δ(u) − δ(u − (v, w))`` for every offset (v, w) ≠ 0 from the filter's
  anchor: finite differences in every direction the filter reaches. They
  span the zero-sum filters, the average adds the rest, so both bases span
  all ``H_f × W_f`` filters.

Filter positions are indexed as in ``Conv2d``; the anchor (the output pixel's
own position) is ``((H_f − 1) // 2, (W_f − 1) // 2)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sphcnn.spectral._options import check_option

FilterBasis = Literal["unit_peaks", "directional_derivatives"]
PaddingMode = Literal["zeros", "circular"]


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(not isinstance(s, int) or s < 1 for s in pair):
        raise ValueError(f"kernel size must be a positive int or a pair of them, got {size!r}")
    return pair


def filter_anchor(kernel_size: int | tuple[int, int]) -> tuple[int, int]:
    kh, kw = _pair(kernel_size)
    return (kh - 1) // 2, (kw - 1) // 2


def circulant_matrix(filt: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The ``[H·W, H·W]`` doubly block circulant matrix of a ``[H_f, W_f]`` filter.

    ``(C x.flatten()).reshape(H, W)`` is the periodic cross-correlation
    ``y(i, j) = Σ_ab θ(a, b) x((i + a − a₀) mod H, (j + b − b₀) mod W)`` with
    anchor ``(a₀, b₀)``: block ``(i, i')`` is the ``W × W`` circulant of the
    filter rows that reach image row ``i'`` from row ``i``, and depends on
    ``i' − i mod H`` only.
    """
    if filt.dim() != 2:
        raise ValueError(f"filter must have shape [H_f, W_f], got {tuple(filt.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} × {width}")
    kh, kw = filt.shape
    a0, b0 = filter_anchor((kh, kw))
    i, j, a, b = torch.meshgrid(
        torch.arange(height), torch.arange(width), torch.arange(kh), torch.arange(kw), indexing="ij"
    )
    rows = (i * width + j).reshape(-1)
    cols = (((i + a - a0) % height) * width + (j + b - b0) % width).reshape(-1)
    values = filt.reshape(1, 1, kh, kw).expand(height, width, kh, kw).reshape(-1)
    matrix = torch.zeros(height * width, height * width, dtype=filt.dtype, device=filt.device)
    # accumulate: a filter larger than the image wraps onto itself and adds up.
    return matrix.index_put_((rows, cols), values, accumulate=True)


def unit_peak_basis(kernel_size: int | tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[H_f·W_f, H_f, W_f]``: generator n is a single 1 at flat filter position n."""
    kh, kw = _pair(kernel_size)
    return torch.eye(kh * kw, dtype=dtype).reshape(kh * kw, kh, kw)


def directional_derivative_basis(kernel_size: int | tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[H_f·W_f, H_f, W_f]``: the local average, then ``δ(anchor) − δ(anchor + (v, w))`` per offset ≠ 0."""
    kh, kw = _pair(kernel_size)
    a0, b0 = filter_anchor((kh, kw))
    generators = [torch.full((kh, kw), 1.0 / (kh * kw), dtype=dtype)]
    for a in range(kh):
        for b in range(kw):
            if (a, b) == (a0, b0):
                continue
            g = torch.zeros(kh, kw, dtype=dtype)
            g[a0, b0] = 1.0
            g[a, b] = -1.0
            generators.append(g)
    return torch.stack(generators)


def filter_basis(basis: FilterBasis, kernel_size: int | tuple[int, int], dtype: torch.dtype = torch.float32):
    check_option("basis", basis, FilterBasis)
    make = unit_peak_basis if basis == "unit_peaks" else directional_derivative_basis
    return make(kernel_size, dtype)


class BasisConv2d(nn.Module):
    """Multi-channel 2-D convolution ``y_o = Σ_i Σ_n α_{o,i,n} θ_n ⋆ x_i + b_o`` over a filter basis.

    Initialised like ``torch.nn.Conv2d`` (same random draws, so with the same
    seed the effective filters are Conv2d's for either basis), then expressed
    in the basis. ``padding_mode="circular"`` makes it exactly ``circulant_matrix``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        basis: FilterBasis = "unit_peaks",
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
    ) -> None:
        super().__init__()
        self.basis = check_option("basis", basis, FilterBasis)
        self.padding_mode = check_option("padding_mode", padding_mode, PaddingMode)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), stride, padding
        generators = filter_basis(basis, self.kernel_size)
        self.register_buffer("generators", generators, persistent=False)
        n = generators.shape[0]
        self.alpha = nn.Parameter(torch.empty(out_channels, in_channels, n))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # Draw exactly as Conv2d does (weight, then bias), then change basis.
        reference = nn.Conv2d(in_channels, out_channels, self.kernel_size, bias=bias)
        with torch.no_grad():
            self.set_filters(reference.weight)
            if bias:
                self.bias.copy_(reference.bias)

    @torch.no_grad()
    def set_filters(self, weight: torch.Tensor) -> None:
        """Set α so that the effective filters equal ``weight`` ``[C_out, C_in, H_f, W_f]``."""
        expected = (self.out_channels, self.in_channels, *self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f"filters must have shape {expected}, got {tuple(weight.shape)}")
        g = self.generators.to(torch.float64).flatten(1)  # [n, k], invertible
        alpha = torch.linalg.solve(g.T, weight.to(torch.float64).flatten(2).unsqueeze(-1)).squeeze(-1)
        self.alpha.copy_(alpha.to(self.alpha.dtype))

    @property
    def weight(self) -> torch.Tensor:
        """Effective filters ``Σ_n α_n θ_n``, ``[C_out, C_in, H_f, W_f]``."""
        return torch.einsum("oin,nhw->oihw", self.alpha, self.generators.to(self.alpha.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"BasisConv2d expects [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        padding = self.padding
        if self.padding_mode == "circular" and padding:
            x = F.pad(x, (padding,) * 4, mode="circular")
            padding = 0
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, basis={self.basis}, "
            f"stride={self.stride}, padding={self.padding}, padding_mode={self.padding_mode}"
        )


def random_shift_flip(
    x: torch.Tensor, max_shift: int = 2, flip: bool = False, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Data augmentation for ``[B, C, H, W]``: shift each image by up to ``max_shift`` pixels
    per axis (zeros enter at the border) and, if ``flip``, mirror left-right with probability ½."""
    if x.dim() != 4:
        raise ValueError(f"expected images [B, C, H, W], got shape {tuple(x.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    b, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5 if flip else torch.zeros(b, dtype=torch.bool)
    padded = F.pad(x, (max_shift,) * 4)
    out = torch.empty_like(x)
    for k in range(b):
        top, left = max_shift - int(shifts[k, 0]), max_shift - int(shifts[k, 1])
        image = padded[k, :, top : top + h, left : left + w]
        out[k] = torch.flip(image, (-1,)) if flips[k] else image
    return out
