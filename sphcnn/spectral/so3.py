"""Fourier transforms on SO(3) in the real Wigner-D basis, and spectral correlations.

Normalization (dR: Haar measure of total mass 1):

    F^ℓ = ∫ f(R) D^ℓ(R) dR            (forward, one (2ℓ+1)×(2ℓ+1) block per degree)
    f(R) = Σ_ℓ (2ℓ+1) Σ_mn F^ℓ_mn D^ℓ_mn(R)   (inverse)
    ∫ f² dR = Σ_ℓ (2ℓ+1) ‖F^ℓ‖²_F      (Parseval)

D^ℓ is the real Wigner matrix of :func:`sphcnn.spectral.wigner_D` (row m,
column n), so ``so3_ifft`` of a single block reproduces D at the grid points.
Coefficients are stored flat, block after block (row-major), length
Σ(2ℓ+1)² = L(4L²−1)/3.

Algorithm: with the complex Wigner functions D_c(α,β,γ)_mn = e^{−imα} d_mn(β)
e^{−inγ}, ∫ f D_c dR is a 2-D FFT over (α, γ) followed, per degree, by a
weighted sum over β with the small-d table; the real-basis blocks follow by
the unitary change of basis D = Ū D_c Uᵀ of :mod:`sphcnn.spectral.wigner`.
The small-d table is Σ_ℓ (2ℓ+1)² · n_β numbers (L = 128 on the SOFT grid:
0.7·10⁹, 2.9 GB in float32), computed once per (grid, dtype) by exact
diagonalization (no recursion in ℓ), in non-persistent buffers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._cache import cached_module
from .grids import SO3Grid
from .wigner import _k_block, _z_rotation_matrix, complex_to_real_block


def num_so3_coeffs(L: int) -> int:
    """Σ_{ℓ<L} (2ℓ+1)² = L(4L²−1)/3."""
    return L * (4 * L * L - 1) // 3


def so3_block_offset(ell: int) -> int:
    return num_so3_coeffs(ell)


def so3_bandlimit(n_coeffs: int) -> int:
    """The L with L(4L²−1)/3 = n_coeffs, or a clear error."""
    L = 0
    while num_so3_coeffs(L) < n_coeffs:
        L += 1
    if num_so3_coeffs(L) != n_coeffs:
        raise ValueError(
            f"SO(3) coefficients must have a trailing length L(4L²−1)/3 (1, 10, 35, 84, …), got {n_coeffs}"
        )
    return L


def small_d_complex(ell: int, beta: np.ndarray) -> np.ndarray:
    """Wigner small-d d^ℓ_mn(β) (complex basis, real valued), float64 ``[len(beta), 2ℓ+1, 2ℓ+1]``."""
    beta_t = torch.as_tensor(np.asarray(beta, dtype=np.float64))
    K = _k_block(ell, torch.float64, torch.device("cpu"))
    d_real = K.T @ _z_rotation_matrix(ell, beta_t) @ K
    U = torch.from_numpy(complex_to_real_block(ell))
    return (U.T @ d_real.to(torch.complex128) @ U.conj()).real.numpy()


class _SO3Transform(nn.Module):
    def __init__(self, grid: SO3Grid, L: int | None, dtype: torch.dtype, forward: bool) -> None:
        super().__init__()
        if not isinstance(grid, SO3Grid):
            raise TypeError(f"grid must be an SO3Grid, got {type(grid).__name__}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        L = grid.L if L is None else L
        if not isinstance(L, int) or not 1 <= L <= grid.L:
            raise ValueError(f"coefficient bandlimit L must be an integer in [1, grid.L={grid.L}], got {L!r}")
        self.grid, self.L, self.is_forward = grid, L, forward
        self._build(dtype, torch.device("cpu"))

    def _build(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        beta, w = self.grid.beta_nodes, self.grid.beta_weights
        n_ag = self.grid.shape[1]
        for ell in range(self.L):
            d = small_d_complex(ell, beta)
            if self.is_forward:  # fold β weights and the (α, γ) quadrature: Σ w_β/(2 n²) = ∫ dR
                d = d * (w / (2 * n_ag * n_ag))[:, None, None]
            else:
                d = d * (2 * ell + 1)
            self.register_buffer(f"d_{ell}", torch.from_numpy(d).to(dtype=dtype, device=device), persistent=False)
            U = torch.from_numpy(complex_to_real_block(ell)).to(dtype=cdtype, device=device)
            self.register_buffer(f"U_{ell}", U, persistent=False)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001
        # Rebuild from float64 rather than let fn cast float32 tables up to float64.
        old = self.table_dtype
        super()._apply(fn, recurse)
        new = fn(torch.zeros((), dtype=old)).dtype
        if new != old:
            self._build(new, getattr(self, "d_0").device)
        return self

    def _check_dtype(self, x: torch.Tensor, name: str) -> None:
        if x.dtype != self.table_dtype:
            raise TypeError(f"{name} is {x.dtype} but this transform's tables are {self.table_dtype}; "
                            f"convert the input or the module (module.to({x.dtype}))")

    def extra_repr(self) -> str:
        return f"L={self.L}, grid=SO3Grid(L={self.grid.L}, kind={self.grid.kind!r}), dtype={self.table_dtype}"


class SO3FFT(_SO3Transform):
    """Forward SO(3) transform: ``[..., *grid.shape]`` → ``[..., L(4L²−1)/3]`` (real Wigner basis).

    ``L`` (≤ grid.L, default grid.L) truncates the output: coarsening by lowering the bandlimit.
    """

    def __init__(self, grid: SO3Grid, L: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(grid, L, dtype, forward=True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        self.grid.check(f, "f")
        self._check_dtype(f, "f")
        L = self.L
        batch = f.shape[:-3]
        # Σ_{α,γ} f e^{−imα} e^{−inγ} for m, n ∈ [−L+1, L−1] (index m + L − 1)
        spec = torch.fft.fft2(f.reshape(-1, *self.grid.shape))
        idx = torch.arange(-L + 1, L, device=f.device) % self.grid.shape[1]
        spec = spec[:, :, idx][:, :, :, idx]
        blocks = []
        for ell in range(L):
            sl = slice(L - 1 - ell, L + ell)
            d = getattr(self, f"d_{ell}")
            g = torch.einsum("bjmn,jmn->bmn", spec[:, :, sl, sl], d.to(spec.dtype))
            U = getattr(self, f"U_{ell}")
            blocks.append((U.conj() @ g @ U.T).real.flatten(-2))
        return torch.cat(blocks, dim=-1).reshape(*batch, -1)


class InverseSO3FFT(_SO3Transform):
    """Inverse SO(3) transform: ``[..., L(4L²−1)/3]`` → ``[..., *grid.shape]``; L ≤ grid.L zero-pads."""

    def __init__(self, grid: SO3Grid, L: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(grid, L, dtype, forward=False)

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        L = self.L
        if not isinstance(F, torch.Tensor) or F.dim() < 1 or F.shape[-1] != num_so3_coeffs(L):
            shape = tuple(F.shape) if isinstance(F, torch.Tensor) else type(F).__name__
            raise ValueError(f"SO(3) coefficients must have shape [..., L(4L²−1)/3] = [..., {num_so3_coeffs(L)}] "
                             f"for L={L}, got {shape}")
        self._check_dtype(F, "F")
        batch = F.shape[:-1]
        F = F.reshape(-1, F.shape[-1])
        B, (n_beta, n_ag, _) = F.shape[0], self.grid.shape
        cdtype = getattr(self, "U_0").dtype
        spec = torch.zeros(B, n_beta, 2 * L - 1, 2 * L - 1, dtype=cdtype, device=F.device)
        for ell in range(L):
            off, n = num_so3_coeffs(ell), 2 * ell + 1
            U = getattr(self, f"U_{ell}")
            h = U.conj().T @ F[:, off: off + n * n].reshape(B, n, n).to(cdtype) @ U  # Σ F·D = Σ H·D_c
            d = getattr(self, f"d_{ell}")
            sl = slice(L - 1 - ell, L + ell)
            spec[:, :, sl, sl] += h.unsqueeze(1) * d.to(cdtype)
        # f = Σ_mn S_mn e^{−imα} e^{−inγ}: an (unnormalized) forward DFT of S placed at m mod n_ag
        full = torch.zeros(B, n_beta, n_ag, n_ag, dtype=cdtype, device=F.device)
        idx = torch.arange(-L + 1, L, device=F.device) % n_ag
        full[:, :, idx[:, None], idx[None, :]] = spec
        return torch.fft.fft2(full).real.reshape(*batch, *self.grid.shape)


def so3_fft(f: torch.Tensor, grid: SO3Grid, L: int | None = None) -> torch.Tensor:
    """SO(3) coefficients of samples ``f [..., *grid.shape]`` (see module docstring for the normalization)."""
    grid.check(f, "f")
    return cached_module(SO3FFT, grid, f.dtype, f.device, L=L)(f)


def so3_ifft(F: torch.Tensor, grid: SO3Grid) -> torch.Tensor:
    """Samples on ``grid`` of the function with SO(3) coefficients ``F [..., L(4L²−1)/3]``, L ≤ grid.L."""
    if not isinstance(F, torch.Tensor) or not F.is_floating_point():
        raise TypeError("SO(3) coefficients must be a float32 or float64 tensor")
    L = so3_bandlimit(F.shape[-1])
    if L > grid.L:
        raise ValueError(f"coefficients of bandlimit L={L} do not fit an SO3Grid of L={grid.L}")
    return cached_module(InverseSO3FFT, grid, F.dtype, F.device, L=L)(F)


def _blocks(x: torch.Tensor, L: int, size) -> list[torch.Tensor]:  # noqa: ANN001
    out, off = [], 0
    for ell in range(L):
        n = size(ell)
        out.append(x[..., off: off + n])
        off += n
    return out


def s2_correlation(f_hat: torch.Tensor, psi_hat: torch.Tensor) -> torch.Tensor:
    """SO(3) coefficients of [ψ ⋆ f](R) = ∫_{S²} f(x) ψ(R⁻¹x) dx, from real SH coefficients ``[..., L²]``.

    Per degree: F^ℓ = f̂_ℓ ψ̂_ℓᵀ / (2ℓ+1). Leading dims broadcast.
    """
    L = int(round(f_hat.shape[-1] ** 0.5))
    if L * L != f_hat.shape[-1] or f_hat.shape[-1] != psi_hat.shape[-1]:
        raise ValueError(f"f_hat and psi_hat must both have trailing length L², got {f_hat.shape[-1]} and "
                         f"{psi_hat.shape[-1]}")
    fb = _blocks(f_hat, L, lambda ell: 2 * ell + 1)
    pb = _blocks(psi_hat, L, lambda ell: 2 * ell + 1)
    return torch.cat([(a.unsqueeze(-1) * b.unsqueeze(-2) / (2 * ell + 1)).flatten(-2)
                      for ell, (a, b) in enumerate(zip(fb, pb))], dim=-1)


def so3_correlation(F_hat: torch.Tensor, Psi_hat: torch.Tensor) -> torch.Tensor:
    """SO(3) coefficients of [ψ ⋆ f](R) = ∫ f(Q) ψ(R⁻¹Q) dQ: per degree G^ℓ = F^ℓ Ψ^ℓᵀ."""
    if F_hat.shape[-1] != Psi_hat.shape[-1]:
        raise ValueError(f"F_hat and Psi_hat must have the same trailing length, got {F_hat.shape[-1]} and "
                         f"{Psi_hat.shape[-1]}")
    L = so3_bandlimit(F_hat.shape[-1])
    fb = _blocks(F_hat, L, lambda ell: (2 * ell + 1) ** 2)
    pb = _blocks(Psi_hat, L, lambda ell: (2 * ell + 1) ** 2)
    out = []
    for ell, (a, b) in enumerate(zip(fb, pb)):
        n = 2 * ell + 1
        out.append((a.unflatten(-1, (n, n)) @ b.unflatten(-1, (n, n)).transpose(-1, -2)).flatten(-2))
    return torch.cat(out, dim=-1)
