"""Helpers users need for their own tests too: random band-limited signals, rotated pairs, equivariance errors."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .grids import S2Grid
from .rotation import points_to_angles, random_rotation, rotate_points
from .wigner import real_sph_harm


def random_coefficients(L: int, *batch: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random real SH coefficients ``[*batch, L²]`` with unit-variance Gaussian entries."""
    return torch.randn(*batch, L * L, generator=generator, dtype=torch.float64).to(dtype)


def evaluate_sh(c: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """f(x) = Σ c_ℓm Y_ℓm(x) at unit vectors ``points [..., 3]`` by direct summation (float64).

    Independent of the fast transforms: uses only the pointwise basis.
    Returns ``[*c.shape[:-1], *points.shape[:-1]]``.
    """
    L = int(round(c.shape[-1] ** 0.5))
    theta, phi = points_to_angles(points.to(torch.float64))
    Y = real_sph_harm(L, theta, phi)  # [*pts, L²]
    return torch.einsum("...k,pk->...p", c.to(torch.float64), Y.reshape(-1, L * L)).reshape(
        *c.shape[:-1], *points.shape[:-1])


def rotated_signal_pair(L: int, grid: S2Grid, R: torch.Tensor | None = None, *batch: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random band-limited f on ``grid``, its rotation x ↦ f(R⁻¹x) sampled independently, c, and R.

    The rotated samples are computed by evaluating the series at R⁻¹x, not by
    rotating coefficients, so they can check rotation code.
    """
    if R is None:
        R = random_rotation(generator=generator)
    c = random_coefficients(L, *batch, generator=generator)
    pts = grid.points()
    f = evaluate_sh(c, pts)
    f_rot = evaluate_sh(c, rotate_points(R.T.to(torch.float64), pts))
    return f, f_rot, c, R


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ (max-norm over all entries)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(torch.finfo(b.dtype).tiny))


def equivariance_error(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, x_transformed: torch.Tensor,
                       transform_output: Callable[[torch.Tensor], torch.Tensor] = lambda y: y) -> float:
    """Relative error ‖fn(g·x) − g·fn(x)‖/‖g·fn(x)‖; ``transform_output`` is g on outputs (identity = invariance)."""
    return relative_error(fn(x_transformed), transform_output(fn(x)))


def evaluate_so3(F: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """f(R) = Σ_ℓ (2ℓ+1) Σ_mn F^ℓ_mn D^ℓ_mn(R) at rotation matrices ``R [..., 3, 3]`` by direct summation.

    Independent of the SO(3) FFT: uses only :func:`wigner_D_block`. Returns ``[*F.shape[:-1], *R.shape[:-2]]``.
    """
    from .rotation import matrix_to_euler
    from .so3 import num_so3_coeffs, so3_bandlimit
    from .wigner import wigner_D_block

    L = so3_bandlimit(F.shape[-1])
    alpha, beta, gamma = matrix_to_euler(R.to(torch.float64))
    out = 0
    for ell in range(L):
        n = 2 * ell + 1
        D = wigner_D_block(ell, alpha, beta, gamma).reshape(*alpha.shape, n * n)
        block = F[..., num_so3_coeffs(ell): num_so3_coeffs(ell + 1)].to(torch.float64)
        out = out + n * torch.einsum("...k,pk->...p", block, D.reshape(-1, n * n)).reshape(*F.shape[:-1], *alpha.shape)
    return out
