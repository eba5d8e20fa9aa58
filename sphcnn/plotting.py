"""Pictures of spherical signals: equirectangular, Mollweide and orthographic (globe) views.

Every view is made by healpy's projectors (``healpy.projector``), which map
each picture pixel to a direction on the sphere; the signal is then looked
up at the nearest grid point (``"dh"``/``"gl"``: nearest ring and longitude;
``"healpix"``: healpy's own ``vec2pix``, so HEALPix maps are drawn exactly as
``healpy.mollview`` would). Longitude grows to the right ("geo" convention),
north is up. Figures are made with ``matplotlib.figure.Figure`` and never
touch pyplot's global state.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .spectral._options import check_option
from .spectral.grids import S2Grid

Projection = Literal["equirectangular", "mollweide", "orthographic"]


def nearest_grid_index(grid: S2Grid, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Flat index of the grid point nearest (in θ then φ) to each (θ, φ)."""
    if grid.kind == "healpix":
        import healpy as hp

        return hp.ang2pix(grid.nside, theta, phi)
    rings = grid.ring_theta
    n_phi = grid.shape[1]
    upper = np.clip(np.searchsorted(rings, theta), 1, len(rings) - 1)
    ring = np.where(np.abs(theta - rings[upper - 1]) <= np.abs(rings[upper] - theta), upper - 1, upper)
    column = np.rint(np.mod(phi, 2 * np.pi) / (2 * np.pi / n_phi)).astype(np.int64) % n_phi
    return ring * n_phi + column


def sphere_image(
    signal: torch.Tensor | np.ndarray,
    grid: S2Grid,
    projection: Projection = "equirectangular",
    center: tuple[float, float] = (0.0, 0.0),
    xsize: int = 400,
    roll: float = 0.0,
) -> np.ndarray:
    """The 2-D picture of ``signal`` (shape ``grid.shape``) in ``projection``; NaN off the sphere.

    ``center`` = (longitude, latitude) in degrees of the picture centre; ``roll``
    turns the view about it (degrees). A projected digit reads upright on the
    globe at ``center=(0, -90), roll=90``.
    """
    check_option("projection", projection, Projection)
    import healpy.projector as hpp

    values = signal.detach().cpu().numpy() if isinstance(signal, torch.Tensor) else np.asarray(signal)
    if values.shape != grid.shape:
        raise ValueError(f"signal must have the grid shape {grid.shape} ({grid.kind}, L={grid.L}), got {values.shape}")
    flat = values.reshape(-1).astype(np.float64)
    rotation = (center[0], center[1], roll)
    if projection == "equirectangular":
        projector = hpp.CartesianProj(rot=rotation, xsize=xsize, ysize=xsize // 2, flipconv="geo")
    elif projection == "mollweide":
        projector = hpp.MollweideProj(rot=rotation, xsize=xsize, flipconv="geo")
    else:
        projector = hpp.OrthographicProj(rot=rotation, xsize=xsize, half_sky=True, flipconv="geo")

    def lookup(x, y, z):
        theta = np.arccos(np.clip(z, -1.0, 1.0))
        phi = np.arctan2(y, x)
        return nearest_grid_index(grid, theta, phi)

    image = np.asarray(projector.projmap(flat, lookup), dtype=np.float64)
    image[~np.isfinite(image)] = np.nan
    return image


def plot_sphere(
    signal: torch.Tensor | np.ndarray,
    grid: S2Grid,
    projection: Projection = "equirectangular",
    ax=None,
    center: tuple[float, float] = (0.0, 0.0),
    title: str | None = None,
    cmap: str = "viridis",
    xsize: int = 400,
    colorbar: bool = False,
    roll: float = 0.0,
):
    """Draw ``signal`` on ``ax`` (a new ``Figure`` if None); returns the axes."""
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(6, 3.4 if projection != "orthographic" else 5)).add_subplot()
    image = sphere_image(signal, grid, projection, center, xsize, roll)
    # healpy's projmap returns rows from south to north; origin="lower" puts north up.
    artist = ax.imshow(np.ma.masked_invalid(image), origin="lower", cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(artist, ax=ax, shrink=0.7)
    return ax


def plot_twins(
    nr_signals, r_signals, labels, grid: S2Grid, rotations=None, projections=("equirectangular", "orthographic"),
    xsize: int = 240,
):
    """A figure of NR/R twins: one column per sample, rows NR and R for each projection.

    With ``rotations`` the R globe view is centred where the rotation moved the
    digit's centre (R applied to the south pole); the NR globe looks at the south pole.
    """
    from matplotlib.figure import Figure

    n = len(labels)
    rows = [(variant, projection) for projection in projections for variant in ("NR", "R")]
    figure = Figure(figsize=(1.9 * n, 1.3 * len(rows) + 0.4), layout="constrained")
    axes = figure.subplots(len(rows), n, squeeze=False)
    for column in range(n):
        for row, (variant, projection) in enumerate(rows):
            signal = (nr_signals if variant == "NR" else r_signals)[column]
            center, roll = (0.0, -90.0), 90.0  # the NR digit, upright
            if variant == "R" and rotations is not None:
                center, roll = _digit_center(np.asarray(rotations[column])), 0.0
            if projection != "orthographic":
                center, roll = (0.0, 0.0), 0.0
            title = f"{variant} {projection[:4]}. label {int(labels[column])}" if row == 0 or variant == "NR" else f"{variant} {projection[:4]}."
            plot_sphere(signal, grid, projection, ax=axes[row, column], center=center, title=title, xsize=xsize, roll=roll)
    return figure


def _digit_center(rotation: np.ndarray) -> tuple[float, float]:
    """(longitude, latitude) in degrees of R·(south pole): where a rotated digit sits."""
    x, y, z = rotation @ np.array([0.0, 0.0, -1.0])
    return float(np.degrees(np.arctan2(y, x))), float(np.degrees(np.arcsin(np.clip(z, -1, 1))))
