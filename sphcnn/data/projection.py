"""Stereographic projection of planar images onto the unit sphere.

Geometry (as s2cnn's ``gendata.py``): the image lies in the plane tangent
to the sphere at the south pole, centred on it; each point x of the sphere
is projected from the north pole onto that plane. For the unit sphere this
puts x = (sin θ cos φ, sin θ sin φ, cos θ) at planar position

    (u, v) = 2 (x, y) / (1 − z),   planar radius 2·cot(θ/2),

where u runs along +x and v along +y. The image covers the square
[−extent, extent]² (``extent = 1.5`` as s2cnn): with 1.5 the image edge
midpoints lie 73.7° from the south pole and the corners 93.4° (just past
the equator); the square covers 41.3 % of the sphere.

Pixel layout: column j grows with u (+x), row i grows with v (+y); pixel
centres sit at u = −extent + (j + ½)·2·extent/W. Seen from outside the
sphere below the south pole with +x to the right, the digit reads upright
(s2cnn maps rows to x and columns to y, i.e. the transposed, mirrored
digit; this does not change what a network can learn).

Interpolation is bilinear between pixel centres with the image extended by
zeros, so the signal is continuous and fades to 0 within half a pixel
outside the square (MNIST borders are 0 anyway). s2cnn's stencil before
its November 2024 fix mixed pixels i−1 and i+1; this one is the standard
bilinear interpolant. The north pole maps to infinity and is 0.

Rotations follow the library convention (R f)(x) = f(R⁻¹ x): the image
rotated by R is sampled at R⁻¹ x = Rᵀ x.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..spectral.grids import S2Grid

DEFAULT_EXTENT = 1.5


def plane_coordinates(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stereographic (u, v) of unit vectors ``[..., 3]`` and a mask of points with finite image (not the north pole)."""
    x, y, z = points.unbind(-1)
    gap = 1.0 - z
    # At the north pole the projection is at infinity; mask it instead of dividing by ~0.
    finite = gap > 1e-12
    scale = 2.0 / torch.where(finite, gap, torch.ones_like(gap))
    return x * scale, y * scale, finite


def coverage_angles(extent: float = DEFAULT_EXTENT) -> dict[str, float]:
    """Angular distance (degrees) from the south pole of the image edge midpoint and corner, and the covered sphere fraction."""

    def from_south(radius: float) -> float:
        # planar radius r = 2 cot(θ/2) with θ from the north pole; the angle from the south pole is π − θ.
        return math.degrees(math.pi - 2 * math.atan2(2.0, radius))

    return {
        "edge_deg": from_south(extent),
        "corner_deg": from_south(math.sqrt(2) * extent),
        "sphere_fraction": _covered_fraction(extent),
    }


def _covered_fraction(extent: float, n: int = 2000) -> float:
    # Area element of the inverse stereographic map onto the unit sphere: 16 / (4 + r²)² du dv.
    centres = (np.arange(n) + 0.5) / n * 2 * extent - extent
    u, v = np.meshgrid(centres, centres, indexing="ij")
    area = (16.0 / (4.0 + u**2 + v**2) ** 2).sum() * (2 * extent / n) ** 2
    return float(area / (4 * math.pi))


def bilinear_sample(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``images [B, H, W]`` at fractional pixel positions ``rows, cols [B or 1, P]``.

    Positions are in pixel units with pixel (i, j) centred at (i, j); outside
    the image the picture is 0 (zero padding), so the result is continuous.
    """
    B, H, W = images.shape
    # Pad one zero row/column before and two after so that every clamped stencil index is valid.
    padded = torch.nn.functional.pad(images, (1, 2, 1, 2)).reshape(B, -1)
    rows = rows.clamp(-1.0, float(H))
    cols = cols.clamp(-1.0, float(W))
    r0, c0 = rows.floor(), cols.floor()
    wr, wc = (rows - r0).to(images.dtype), (cols - c0).to(images.dtype)
    stride = W + 3
    base = ((r0.long() + 1) * stride + (c0.long() + 1)).expand(B, -1)

    def at(offset: int) -> torch.Tensor:
        return torch.gather(padded, 1, base + offset)

    top = at(0) * (1 - wc) + at(1) * wc
    bottom = at(stride) * (1 - wc) + at(stride + 1) * wc
    return top * (1 - wr) + bottom * wr


def project_images(
    images: torch.Tensor | np.ndarray,
    points: torch.Tensor,
    rotations: torch.Tensor | None = None,
    extent: float = DEFAULT_EXTENT,
) -> torch.Tensor:
    """Values on the sphere at unit vectors ``points [P, 3]`` of the images ``[B, H, W]`` projected stereographically.

    With ``rotations [B, 3, 3]`` image b is rotated by R_b, i.e. sampled at R_bᵀ x.
    Returns float32 ``[B, P]`` in the units of the images. Uses
    ``torch.nn.functional.grid_sample`` (bilinear, zero padding, pixel
    centres as in :func:`bilinear_sample`, which tests check it against).
    """
    images = torch.as_tensor(images)
    if images.dim() != 3:
        raise ValueError(f"images must have shape [B, H, W], got {tuple(images.shape)}")
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape [P, 3], got {tuple(points.shape)}")
    if not extent > 0:
        raise ValueError(f"extent must be positive, got {extent}")
    B = images.shape[0]
    images = images.to(torch.float32)
    if rotations is None:
        # One shared set of sample points: treat the images as channels of one picture.
        grid = _normalized_plane_grid(points.to(torch.float64).T, extent).to(torch.float32)  # [P, 2]
        out = torch.nn.functional.grid_sample(
            images.unsqueeze(0), grid[None, None], mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out[0, :, 0]
    if rotations.shape != (B, 3, 3):
        raise ValueError(f"rotations must have shape [{B}, 3, 3] to match the images, got {tuple(rotations.shape)}")
    # float32 is ample here: points that land on the image are far from the north pole.
    rotated = rotations.to(torch.float32).transpose(1, 2) @ points.to(torch.float32).T  # Rᵀ x, [B, 3, P]
    grid = _normalized_plane_grid(rotated, extent)  # [B, P, 2]
    out = torch.nn.functional.grid_sample(
        images.unsqueeze(1), grid.unsqueeze(1), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, 0, 0]


def _normalized_plane_grid(xyz: torch.Tensor, extent: float) -> torch.Tensor:
    """Points ``[..., 3, P]`` to grid_sample coordinates ``[..., P, 2]``: (u, v)/extent, ±1 at the image edges."""
    x, y, z = xyz.unbind(-2)
    scale = (2.0 / extent) / (1.0 - z).clamp_min(1e-6)
    grid = torch.stack((x * scale, y * scale), dim=-1)
    # The north pole projects to infinity: move it (and its tiny neighbourhood) far off the image.
    return grid.masked_fill_((z > 1.0 - 1e-6).unsqueeze(-1), 4.0)


def project_to_grid(
    images: torch.Tensor | np.ndarray,
    grid: S2Grid,
    rotations: torch.Tensor | None = None,
    extent: float = DEFAULT_EXTENT,
    batch_size: int = 500,
) -> torch.Tensor:
    """Project ``images [B, H, W]`` onto ``grid`` (optionally rotated per image): float32 ``[B, *grid.shape]``."""
    images = torch.as_tensor(images)
    points = grid.points().reshape(-1, 3)
    out = torch.empty(images.shape[0], points.shape[0], dtype=torch.float32)
    for start in range(0, images.shape[0], batch_size):
        stop = start + batch_size
        chunk_rotations = None if rotations is None else rotations[start:stop]
        out[start:stop] = project_images(images[start:stop], points, chunk_rotations, extent)
    return out.reshape(images.shape[0], *grid.shape)
