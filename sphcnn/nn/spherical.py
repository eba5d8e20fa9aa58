"""Spherical CNN layers: correlations on S² and SO(3) as products of coefficients, degree by degree.

Signals travel between layers as real coefficients — ``[B, C, L²]`` on S²,
``[B, C, L(4L²−1)/3]`` on SO(3) (layouts of :mod:`sphcnn.spectral`) — and
visit a sampling grid only where a pointwise nonlinearity needs values.
A rotation Q acts on S² coefficients by D(Q)·c and on each SO(3) block by
D^ℓ(Q)·F^ℓ; every layer here commutes with that action (exactly for the
linear layers, up to grid aliasing for pointwise nonlinearities).

Filters are (a) "localized": weights on a few points near the north pole /
the identity (Cohen et al.'s kernel grids), whose spectra are sums of Y_ℓm
or D^ℓ at those points, or (b) "spectral": free coefficients per degree.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ..spectral import S2Grid, SO3Grid
from ..spectral._grid_relu import relu_between
from ..spectral._options import check_option
from ..spectral._tables import TableModule
from ..spectral._workspace import Workspace
from ..spectral.rotation import euler_to_matrix, matrix_to_euler
from ..spectral.sht import SHT, InverseSHT
from ..spectral.so3 import SO3FFT, InverseSO3FFT, num_so3_coeffs
from ..spectral.wigner import real_sph_harm, wigner_D_block

KernelKind = Literal["localized", "spectral"]
SO3GridKind = Literal["soft", "gl"]


# ------------------------------------------------------------------ kernel supports


def s2_near_identity_grid(max_beta: float = math.pi / 8, n_alpha: int = 8, n_beta: int = 3) -> torch.Tensor:
    """Unit vectors at colatitudes β = max_beta·(1…n_beta)/n_beta and n_alpha longitudes (s2cnn's S² kernel grid).

    These are points R_z(α) R_y(β) ẑ around the north pole, float64 ``[n_alpha·n_beta, 3]``.
    """
    beta = max_beta * torch.arange(1, n_beta + 1, dtype=torch.float64) / n_beta
    alpha = 2 * math.pi * torch.arange(n_alpha, dtype=torch.float64) / n_alpha
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    return torch.stack((torch.sin(b) * torch.cos(a), torch.sin(b) * torch.sin(a), torch.cos(b)), -1).reshape(-1, 3)


def so3_near_identity_grid(max_beta: float = math.pi / 8, max_gamma: float = 2 * math.pi, n_alpha: int = 8,
                           n_beta: int = 3, n_gamma: int = 8) -> torch.Tensor:
    """Rotations R_z(α) R_y(β) R_z(γ' − α) near the identity (s2cnn's SO(3) kernel grid), ``[n, 3, 3]`` float64.

    β = max_beta·(1…n_beta)/n_beta, α on n_alpha points, γ' on n_gamma points of [−max_gamma, max_gamma).
    """
    beta = max_beta * torch.arange(1, n_beta + 1, dtype=torch.float64) / n_beta
    alpha = 2 * math.pi * torch.arange(n_alpha, dtype=torch.float64) / n_alpha
    gamma = -max_gamma + 2 * max_gamma * torch.arange(n_gamma, dtype=torch.float64) / n_gamma
    b, a, g = torch.meshgrid(beta, alpha, gamma, indexing="ij")
    return euler_to_matrix(a, b, g - a).reshape(-1, 3, 3)


def _so3_blocks_at(L: int, R: torch.Tensor) -> torch.Tensor:
    """Flat real Wigner-D blocks ``[n, L(4L²−1)/3]`` at rotations ``R [n, 3, 3]``, float64."""
    alpha, beta, gamma = matrix_to_euler(R.to(torch.float64))
    return torch.cat([wigner_D_block(ell, alpha, beta, gamma).flatten(-2) for ell in range(L)], dim=-1)


def _degrees(L: int, per_degree) -> torch.Tensor:  # noqa: ANN001
    return torch.cat([torch.full((per_degree(ell),), ell, dtype=torch.long) for ell in range(L)])


def _check_coeffs(x: torch.Tensor, channels: int, n_coeffs: int, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] != channels or x.shape[2] != n_coeffs:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} expects coefficients of shape [batch, {channels}, {n_coeffs}], got {shape}")


# ------------------------------------------------------------------ correlations


class S2Convolution(TableModule):
    """S² → SO(3) correlation [ψ ⋆ f](R) = Σ_i ∫ f_i(x) ψ_io(R⁻¹x) dx, per output channel o.

    Input: samples ``[B, C_in, *grid.shape]`` (or S² coefficients ``[B, C_in, ≥L_out²]``
    with ``input="coeffs"``). Output: SO(3) coefficients ``[B, C_out, L_out(4L_out²−1)/3]``;
    degree ℓ of the output is f̂_ℓ ψ̂_ℓᵀ/(2ℓ+1) summed over input channels.

    Args:
        grid: the S² sampling grid of the input (its L is the input bandlimit).
        L_out: output bandlimit (≤ grid.L); degrees ≥ L_out are discarded.
        kernel: "localized" (weights on ``kernel_points``, default s2cnn's 24 points
            within π/8 of the north pole) or "spectral" (free coefficients).
        bias: a learnable constant per output channel (the ℓ = 0 coefficient).
    """

    def __init__(self, in_channels: int, out_channels: int, grid: S2Grid, L_out: int,
                 kernel: KernelKind = "localized", kernel_points: torch.Tensor | None = None,
                 bias: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_option("kernel", kernel, KernelKind)
        if not isinstance(grid, S2Grid):
            raise TypeError(f"grid must be an S2Grid, got {type(grid).__name__}")
        if not 1 <= L_out <= grid.L:
            raise ValueError(f"L_out must be in [1, grid.L={grid.L}], got {L_out}")
        self.in_channels, self.out_channels, self.grid, self.L_out, self.kernel = (
            in_channels, out_channels, grid, L_out, kernel)
        self.sht = SHT(grid, L=L_out, dtype=dtype)
        if kernel == "localized":
            self.kernel_points = s2_near_identity_grid() if kernel_points is None else kernel_points.double()
            n = self.kernel_points.shape[0]
            self.weight = nn.Parameter(torch.empty(in_channels, out_channels, n, dtype=dtype).uniform_(-1, 1)
                                       * math.sqrt(3.0 / (in_channels * n)))
        else:
            self.weight = nn.Parameter(torch.randn(in_channels, out_channels, L_out * L_out, dtype=dtype)
                                       / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=dtype)) if bias else None
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        L = self.L_out
        # index q of the flat SO(3) output ↔ (ℓ, m, n): f̂ at ℓ²+ℓ+m, ψ̂ at ℓ²+ℓ+n, scale 1/(2ℓ+1)
        ells = _degrees(L, lambda ell: (2 * ell + 1) ** 2)
        m = torch.cat([torch.arange(-ell, ell + 1).repeat_interleave(2 * ell + 1) for ell in range(L)])
        n = torch.cat([torch.arange(-ell, ell + 1).repeat(2 * ell + 1) for ell in range(L)])
        base = ells * ells + ells
        self.register_buffer("f_index", (base + m).to(device), persistent=False)
        self.register_buffer("psi_index", (base + n).to(device), persistent=False)
        self.register_buffer("scale", (1.0 / (2 * ells.double() + 1)).to(dtype=dtype, device=device), persistent=False)
        if self.kernel == "localized":
            theta = torch.arccos(self.kernel_points[:, 2].clamp(-1, 1))
            phi = torch.atan2(self.kernel_points[:, 1], self.kernel_points[:, 0])
            Y = real_sph_harm(L, theta, phi)  # [n, L²]
            self.register_buffer("kernel_basis", Y.to(dtype=dtype, device=device), persistent=False)

    def filter_coefficients(self) -> torch.Tensor:
        """ψ̂ ``[C_in, C_out, L_out²]``."""
        return self.weight @ self.kernel_basis if self.kernel == "localized" else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 + len(self.grid.shape) or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"S2Convolution expects [batch, {self.in_channels}, *{self.grid.shape}], got {shape}")
        f_hat = self.sht(x)  # [B, C_in, L²]
        psi = self.filter_coefficients()
        out = torch.einsum("biq,ioq->boq", f_hat[..., self.f_index], psi[..., self.psi_index]) * self.scale
        if self.bias is not None:
            out = torch.cat((out[..., :1] + self.bias[:, None], out[..., 1:]), dim=-1)
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, L_in={self.grid.L}, L_out={self.L_out}, "
                f"kernel={self.kernel!r}")


class SO3Convolution(TableModule):
    """SO(3) → SO(3) correlation [ψ ⋆ f](R) = Σ_i ∫ f_i(Q) ψ_io(R⁻¹Q) dQ, in coefficients.

    Input ``[B, C_in, N(L_in)]``, output ``[B, C_out, N(L_out)]`` with L_out ≤ L_in
    (higher input degrees are discarded): G^ℓ = Σ_i F_i^ℓ Ψ_io^ℓᵀ.

    Args:
        kernel: "localized" (weights on rotations near the identity, default s2cnn's
            192-point grid) or "spectral" (free coefficients per degree).
    """

    def __init__(self, in_channels: int, out_channels: int, L_in: int, L_out: int,
                 kernel: KernelKind = "localized", kernel_rotations: torch.Tensor | None = None,
                 bias: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_option("kernel", kernel, KernelKind)
        if not 1 <= L_out <= L_in:
            raise ValueError(f"need 1 <= L_out <= L_in, got L_in={L_in}, L_out={L_out}")
        self.in_channels, self.out_channels, self.L_in, self.L_out, self.kernel = (
            in_channels, out_channels, L_in, L_out, kernel)
        if kernel == "localized":
            self.kernel_rotations = so3_near_identity_grid() if kernel_rotations is None else kernel_rotations.double()
            n = self.kernel_rotations.shape[0]
            self.weight = nn.Parameter(torch.empty(in_channels, out_channels, n, dtype=dtype).uniform_(-1, 1)
                                       * math.sqrt(3.0 / (in_channels * n)))
        else:
            self.weight = nn.Parameter(torch.randn(in_channels, out_channels, num_so3_coeffs(L_out), dtype=dtype)
                                       / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=dtype)) if bias else None
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        if self.kernel == "localized":
            blocks = _so3_blocks_at(self.L_out, self.kernel_rotations)
            self.register_buffer("kernel_basis", blocks.to(dtype=dtype, device=device), persistent=False)
        else:
            self.register_buffer("kernel_basis", None, persistent=False)

    def filter_coefficients(self) -> torch.Tensor:
        """Ψ ``[C_in, C_out, N(L_out)]``."""
        return self.weight @ self.kernel_basis if self.kernel == "localized" else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coeffs(x, self.in_channels, num_so3_coeffs(self.L_in), "SO3Convolution")
        psi = self.filter_coefficients()
        B, out = x.shape[0], []
        for ell in range(self.L_out):
            n, off = 2 * ell + 1, num_so3_coeffs(ell)
            F = x[..., off: off + n * n].reshape(B, self.in_channels, n, n)
            P = psi[..., off: off + n * n].reshape(self.in_channels, self.out_channels, n, n)
            # G_o[m, j] = Σ_i Σ_k F_i[m, k] Ψ_io[j, k]: one matmul over (i, k)
            lhs = F.permute(0, 2, 1, 3).reshape(B * n, self.in_channels * n)
            rhs = P.permute(0, 3, 1, 2).reshape(self.in_channels * n, self.out_channels * n)
            out.append((lhs @ rhs).reshape(B, n, self.out_channels, n).permute(0, 2, 1, 3).reshape(B, -1, n * n))
        out = torch.cat(out, dim=-1)
        if self.bias is not None:
            out = torch.cat((out[..., :1] + self.bias[:, None], out[..., 1:]), dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, L_in={self.L_in}, L_out={self.L_out}, kernel={self.kernel!r}"


class S2ZonalConvolution(nn.Module):
    """S² → S² convolution with zonal (isotropic) filters (Esteves et al.): out_ℓm = Σ_i k_io(ℓ) f_i,ℓm.

    Input/output S² coefficients ``[B, C, L_in²]`` → ``[B, C_out, L_out²]``. The per-degree
    filter k(ℓ) is linear interpolation of ``n_anchors`` free values spread over ℓ = 0…L_out−1,
    which keeps filters spatially localized (smooth spectra), as in Esteves et al.
    """

    def __init__(self, in_channels: int, out_channels: int, L_in: int, L_out: int, n_anchors: int | None = None,
                 bias: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not 1 <= L_out <= L_in:
            raise ValueError(f"need 1 <= L_out <= L_in, got L_in={L_in}, L_out={L_out}")
        n_anchors = L_out if n_anchors is None else n_anchors
        if not 1 <= n_anchors <= L_out:
            raise ValueError(f"n_anchors must be in [1, L_out={L_out}], got {n_anchors}")
        self.in_channels, self.out_channels, self.L_in, self.L_out = in_channels, out_channels, L_in, L_out
        self.weight = nn.Parameter(torch.randn(in_channels, out_channels, n_anchors, dtype=dtype) / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=dtype)) if bias else None
        pos = torch.linspace(0, n_anchors - 1, L_out, dtype=torch.float64) if n_anchors > 1 else torch.zeros(L_out)
        lo = pos.floor().long().clamp(max=n_anchors - 1)
        hi = (lo + 1).clamp(max=n_anchors - 1)
        interp = torch.zeros(n_anchors, L_out, dtype=torch.float64)
        interp[lo, torch.arange(L_out)] += 1 - (pos - lo)
        interp[hi, torch.arange(L_out)] += pos - lo
        expand = torch.repeat_interleave(interp, 2 * torch.arange(L_out) + 1, dim=1)  # [anchors, L_out²]
        self.register_buffer("expand", expand.to(dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coeffs(x, self.in_channels, self.L_in ** 2, "S2ZonalConvolution")
        k = self.weight @ self.expand.to(self.weight.dtype)  # [C_in, C_out, L_out²]
        out = torch.einsum("biq,ioq->boq", x[..., : self.L_out ** 2], k)
        if self.bias is not None:
            out = torch.cat((out[..., :1] + self.bias[:, None] * math.sqrt(4 * math.pi), out[..., 1:]), dim=-1)
        return out


class DegreeLinear(nn.Module):
    """Channel mixing per degree (a "1×1 convolution"): out^ℓ = Σ_i W_io(ℓ) x_i^ℓ; equivariant on S² and SO(3).

    ``domain="so3"`` for ``[B, C, N(L)]`` SO(3) coefficients, ``"s2"`` for ``[B, C, L²]``.
    """

    def __init__(self, in_channels: int, out_channels: int, L: int, domain: Literal["s2", "so3"] = "so3",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_option("domain", domain, Literal["s2", "so3"])
        self.in_channels, self.out_channels, self.L, self.domain = in_channels, out_channels, L, domain
        self.weight = nn.Parameter(torch.randn(L, in_channels, out_channels, dtype=dtype) / math.sqrt(in_channels))
        per = (lambda ell: (2 * ell + 1) ** 2) if domain == "so3" else (lambda ell: 2 * ell + 1)
        self.register_buffer("degree", _degrees(L, per), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_coeffs(x, self.in_channels, self.degree.numel(), "DegreeLinear")
        return torch.einsum("biq,qio->boq", x, self.weight[self.degree])


# ------------------------------------------------------------------ nonlinearities


class SO3Activation(nn.Module):
    """Pointwise nonlinearity on an SO(3) grid: coefficients (L_in) → grid → σ → coefficients (L_out).

    The grid has bandlimit ⌈oversampling · L_in⌉; σ(f) is not band-limited, so the
    result is equivariant up to aliasing that shrinks as ``oversampling`` grows
    (measured in ``docs`` / ``experiments/equivariance_vs_oversampling.py``).
    ``L_out = 1`` gives ∫ σ(f) dR: an invariant readout of the activated signal.
    """

    def __init__(self, L_in: int, L_out: int | None = None, activation: nn.Module | None = None,
                 oversampling: float = 1.0, grid_kind: SO3GridKind = "soft", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_option("grid_kind", grid_kind, SO3GridKind)
        L_out = L_in if L_out is None else L_out
        if oversampling < 1:
            raise ValueError(f"oversampling must be >= 1, got {oversampling}")
        L_grid = max(L_in, L_out, math.ceil(oversampling * L_in))
        self.L_in, self.L_out = L_in, L_out
        self.grid = SO3Grid(L_grid, grid_kind)
        self.to_grid = InverseSO3FFT(self.grid, L=L_in, dtype=dtype)
        self.from_grid = SO3FFT(self.grid, L=L_out, dtype=dtype)
        self.activation = activation if activation is not None else nn.ReLU()
        self.workspace = Workspace()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != num_so3_coeffs(self.L_in):
            raise ValueError(f"SO3Activation expects [batch, channels, {num_so3_coeffs(self.L_in)}] "
                             f"(L_in={self.L_in}), got {tuple(x.shape)}")
        if type(self.activation) is nn.ReLU and self._blocked(x.shape[0] * x.shape[1]):
            # the same map in batch chunks, never holding a whole batch of grids (see sphcnn.spectral._grid_relu)
            y = relu_between(x.reshape(-1, x.shape[-1]), self.to_grid, self.from_grid, self.workspace)
            return y.reshape(*x.shape[:2], -1)
        return self.from_grid(self.activation(self.to_grid(x)))

    def _blocked(self, signals: int) -> bool:
        """Whether both transforms take their blocked path for this many signals (not one signal's own path, nor
        the integral of ``L_out = 1``)."""
        return self.L_out > 1 and (signals > 1 or not (self.to_grid.single_signal or self.from_grid.single_signal))

    def extra_repr(self) -> str:
        return f"L_in={self.L_in}, L_out={self.L_out}, grid=SO3Grid(L={self.grid.L}, kind={self.grid.kind!r})"


class S2Activation(nn.Module):
    """Pointwise nonlinearity on an S² grid: coefficients (L_in) → grid → σ → coefficients (L_out)."""

    def __init__(self, L_in: int, L_out: int | None = None, activation: nn.Module | None = None,
                 oversampling: float = 1.0, grid_kind: Literal["dh", "gl"] = "gl",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        check_option("grid_kind", grid_kind, Literal["dh", "gl"])
        L_out = L_in if L_out is None else L_out
        if oversampling < 1:
            raise ValueError(f"oversampling must be >= 1, got {oversampling}")
        self.L_in, self.L_out = L_in, L_out
        self.grid = S2Grid(max(L_in, L_out, math.ceil(oversampling * L_in)), grid_kind)
        self.to_grid = InverseSHT(self.grid, L=L_in, dtype=dtype)
        self.from_grid = SHT(self.grid, L=L_out, dtype=dtype)
        self.activation = activation if activation is not None else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.L_in ** 2:
            raise ValueError(f"S2Activation expects [batch, channels, {self.L_in ** 2}], got {tuple(x.shape)}")
        return self.from_grid(self.activation(self.to_grid(x)))


class NormActivation(nn.Module):
    """Gated nonlinearity in the spectral domain: each degree block x^ℓ (ℓ > 0) is scaled by
    σ(‖x^ℓ‖ + b_cℓ)/‖x^ℓ‖ and ℓ = 0 passes through σ; exact equivariance (block norms are invariant).
    """

    def __init__(self, channels: int, L: int, domain: Literal["s2", "so3"] = "so3", eps: float = 1e-6) -> None:
        super().__init__()
        check_option("domain", domain, Literal["s2", "so3"])
        self.L, self.eps = L, eps
        per = (lambda ell: (2 * ell + 1) ** 2) if domain == "so3" else (lambda ell: 2 * ell + 1)
        self.register_buffer("degree", _degrees(L, per), persistent=False)
        self.bias = nn.Parameter(torch.zeros(channels, L))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.degree.numel() or x.shape[1] != self.bias.shape[0]:
            raise ValueError(f"NormActivation expects [batch, {self.bias.shape[0]}, {self.degree.numel()}], "
                             f"got {tuple(x.shape)}")
        sq = torch.zeros(*x.shape[:2], self.L, dtype=x.dtype, device=x.device).index_add(-1, self.degree, x * x)
        norm = torch.sqrt(sq + self.eps**2)
        gain = torch.relu(norm + self.bias) / norm
        gain = torch.cat((torch.ones_like(gain[..., :1]), gain[..., 1:]), dim=-1)  # ℓ = 0: plain ReLU below
        out = x * gain[..., self.degree]
        return torch.cat((torch.relu(out[..., :1]), out[..., 1:]), dim=-1)


# ------------------------------------------------------------------ normalization, readout


class SpectralBatchNorm(nn.Module):
    """Equivariant batch normalization of S² or SO(3) signals, computed from coefficients.

    Per channel: subtract the batch mean of the signal's mean (the ℓ = 0 part) and divide by
    the batch standard deviation over the domain, σ² = E ∫ (f − μ)² — by Parseval
    Σ_{ℓ>0} (2ℓ+1)‖F^ℓ‖² on SO(3), Σ_{ℓ>0} ‖f̂_ℓ‖²/4π on S². Both statistics are
    rotation invariant, so the layer commutes with rotations. Running statistics are
    always-present buffers: the state_dict is the same in train and eval mode. ``momentum=None``
    averages all batches since :meth:`reset_running_stats` equally (used by
    :class:`sphcnn.training.BatchNormRecalibration`).
    """

    def __init__(self, channels: int, L: int, domain: Literal["s2", "so3"] = "so3", momentum: float | None = 0.1,
                 eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        check_option("domain", domain, Literal["s2", "so3"])
        self.domain, self.momentum, self.eps, self.L = domain, momentum, eps, L
        if domain == "so3":
            degree = _degrees(L, lambda ell: (2 * ell + 1) ** 2)
            energy_weight, self.mean_scale = (2 * degree + 1).double(), 1.0
        else:
            degree = _degrees(L, lambda ell: 2 * ell + 1)
            energy_weight, self.mean_scale = torch.full((L * L,), 1 / (4 * math.pi), dtype=torch.float64), math.sqrt(4 * math.pi)
        energy_weight[0] = 0
        self.register_buffer("energy_weight", energy_weight.float(), persistent=False)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        # batches averaged since the last reset, for momentum=None (a plain average, as torch's batch norms)
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.energy_weight.numel() or x.shape[1] != self.running_mean.numel():
            raise ValueError(f"SpectralBatchNorm expects [batch, {self.running_mean.numel()}, "
                             f"{self.energy_weight.numel()}], got {tuple(x.shape)}")
        mean_signal = x[..., 0] / self.mean_scale  # spatial mean of each signal
        if self.training:
            mu = mean_signal.mean(0)
            within = (x * x * self.energy_weight.to(x.dtype)).sum(-1)  # ∫ (f − mean f)², per signal
            var = (within + (mean_signal - mu) ** 2 * (4 * math.pi if self.domain == "s2" else 1.0)).mean(0)
            var = var / (4 * math.pi if self.domain == "s2" else 1.0)
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                self.running_mean.lerp_(mu.detach().to(self.running_mean.dtype), factor)
                self.running_var.lerp_(var.detach().to(self.running_var.dtype), factor)
        else:
            mu, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        scale = torch.rsqrt(var + self.eps)
        shift = -mu * scale
        if self.weight is not None:
            scale, shift = scale * self.weight, shift * self.weight + self.bias
        out = x * scale[:, None]
        return torch.cat((out[..., :1] + shift[:, None] * self.mean_scale, out[..., 1:]), dim=-1)


class SO3Integrate(nn.Module):
    """Invariant readout ∫ f dR: the ℓ = 0 coefficient of SO(3) coefficients ``[B, C, N]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"SO3Integrate expects [batch, channels, coefficients], got {tuple(x.shape)}")
        return x[..., 0]


class S2Integrate(nn.Module):
    """Invariant readout ∫ f dx = √(4π) f̂_00 of S² coefficients ``[B, C, L²]`` → ``[B, C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"S2Integrate expects [batch, channels, coefficients], got {tuple(x.shape)}")
        return x[..., 0] * math.sqrt(4 * math.pi)


class Truncate(nn.Module):
    """Coarsening P by lowering the bandlimit: keep degrees < L_out of S² or SO(3) coefficients."""

    def __init__(self, L_in: int, L_out: int, domain: Literal["s2", "so3"] = "so3") -> None:
        super().__init__()
        check_option("domain", domain, Literal["s2", "so3"])
        if not 1 <= L_out <= L_in:
            raise ValueError(f"need 1 <= L_out <= L_in, got L_in={L_in}, L_out={L_out}")
        size = num_so3_coeffs if domain == "so3" else (lambda L: L * L)
        self.n_in, self.n_out = size(L_in), size(L_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.n_in:
            raise ValueError(f"Truncate expects a trailing dimension {self.n_in}, got {tuple(x.shape)}")
        return x[..., : self.n_out]
