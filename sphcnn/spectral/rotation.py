"""Rotations of R³: ZYZ Euler angles, matrices, quaternions, random rotations.

Convention: R = R_z(α) R_y(β) R_z(γ) (active, right-handed), and a rotation
acts on functions by (R f)(x) = f(R⁻¹ x). Rotating spherical-harmonic
coefficients lives in :mod:`sphcnn.spectral.wigner` (``rotate_sh``).
"""

from __future__ import annotations

import torch


def _check_matrix(R: torch.Tensor) -> None:
    if not isinstance(R, torch.Tensor) or R.dim() < 2 or tuple(R.shape[-2:]) != (3, 3):
        shape = tuple(R.shape) if isinstance(R, torch.Tensor) else type(R).__name__
        raise ValueError(f"rotation matrices must have shape [..., 3, 3], got {shape}")
    if not R.is_floating_point():
        raise TypeError(f"rotation matrices must be floating point, got {R.dtype}")


def rot_z(angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` about +z, shape ``[..., 3, 3]``."""
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack((c, -s, z, s, c, z, z, z, o), dim=-1).reshape(*angle.shape, 3, 3)


def rot_y(angle: torch.Tensor) -> torch.Tensor:
    """Rotation by ``angle`` about +y, shape ``[..., 3, 3]``."""
    c, s = torch.cos(angle), torch.sin(angle)
    o, z = torch.ones_like(angle), torch.zeros_like(angle)
    return torch.stack((c, z, s, z, o, z, -s, z, c), dim=-1).reshape(*angle.shape, 3, 3)


def euler_to_matrix(alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """R = R_z(α) R_y(β) R_z(γ), broadcasting the angles."""
    alpha, beta, gamma = torch.broadcast_tensors(*map(torch.as_tensor, (alpha, beta, gamma)))
    return rot_z(alpha) @ rot_y(beta) @ rot_z(gamma)


def matrix_to_euler(R: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ZYZ angles (α, β, γ) with β ∈ [0, π], α, γ ∈ (−π, π].

    At the gimbal poles (sin β < eps) only α ± γ is defined; there γ = 0.
    """
    _check_matrix(R)
    sin_beta = torch.hypot(R[..., 0, 2], R[..., 1, 2])
    beta = torch.atan2(sin_beta, R[..., 2, 2])
    alpha = torch.atan2(R[..., 1, 2], R[..., 0, 2])
    gamma = torch.atan2(R[..., 2, 1], -R[..., 2, 0])
    pole = sin_beta < eps
    north = R[..., 2, 2] > 0
    alpha_pole = torch.where(north, torch.atan2(R[..., 1, 0], R[..., 0, 0]), torch.atan2(-R[..., 1, 0], R[..., 1, 1]))
    alpha = torch.where(pole, alpha_pole, alpha)
    gamma = torch.where(pole, torch.zeros_like(gamma), gamma)
    return alpha, beta, gamma


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) ``[..., 4]`` to rotation matrices; q is normalized first."""
    if q.shape[-1] != 4:
        raise ValueError(f"quaternions must have shape [..., 4], got {tuple(q.shape)}")
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def random_rotation(
    *shape: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Rotations drawn uniformly (Haar measure) from SO(3), shape ``[*shape, 3, 3]``.

    Uses normalized Gaussian quaternions, which are uniform on S³.
    """
    q = torch.randn(*shape, 4, generator=generator, dtype=torch.float64)
    return quaternion_to_matrix(q).to(dtype=dtype, device=device)


def rotate_points(R: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """R x for points ``x [..., 3]`` (broadcast against ``R [..., 3, 3]``)."""
    _check_matrix(R)
    return (R @ x.unsqueeze(-1)).squeeze(-1)


def angles_to_points(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    st = torch.sin(theta)
    return torch.stack((st * torch.cos(phi), st * torch.sin(phi), torch.cos(theta)), dim=-1)


def points_to_angles(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors to (colatitude θ ∈ [0, π], longitude φ ∈ [0, 2π))."""
    theta = torch.atan2(torch.hypot(x[..., 0], x[..., 1]), x[..., 2])
    phi = torch.remainder(torch.atan2(x[..., 1], x[..., 0]), 2 * torch.pi)
    return theta, phi
