"""Generating spherical digit datasets: NR and R variants of every split.

One dataset holds, for each split ("train", "test"), the source images,
labels, the "NR" signals (digit projected at the south pole, see
:mod:`sphcnn.data.projection`) and the "R" signals (the same digits in the
same order, image i rotated by ``rotations[i]``), so every R image is the
rotated copy of its NR twin: R_signal[i](x) = NR_signal[i](Rᵢ⁻¹ x).

Rotations are Haar-uniform on SO(3), drawn from a generator seeded by
(seed, split), so train and test use different rotations and everything is
reproducible. ``rotation_mode="per_image"`` draws one rotation per image;
``"chunked"`` draws one per ``chunk_size`` (500) consecutive images, as
s2cnn's generator did (only 20 distinct rotations for 10,000 test images).

Signals are stored as float16 in [0, 1] (pixel value / 255; float16 keeps a
relative error below 2⁻¹¹ and halves the file size).
"""

from __future__ import annotations

import datetime
import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from .. import __version__
from ..spectral._options import check_option
from ..spectral.grids import S2Grid
from ..spectral.rotation import random_rotation
from .projection import DEFAULT_EXTENT, project_images
from .sources import SPLITS, DigitSource, DigitSplit, resolve_source

log = logging.getLogger(__name__)

RotationMode = Literal["per_image", "chunked"]
Variant = Literal["NR", "R"]
VARIANTS: tuple[str, ...] = ("NR", "R")
FORMAT_NAME = "sphcnn.spherical_digits"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 500
SIGNAL_DTYPE = np.float16
_SPLIT_CODES = {"train": 1, "test": 2}


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose (a split, validation, augmentation), derived from the user's seed."""
    code = sum(ord(c) << (8 * i) for i, c in enumerate(purpose[:8]))
    state = np.random.SeedSequence([int(seed), code]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def draw_rotations(
    n: int, mode: RotationMode, generator: torch.Generator, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> torch.Tensor:
    """``n`` rotation matrices float64 ``[n, 3, 3]``: one per image, or one per ``chunk_size`` consecutive images."""
    check_option("rotation_mode", mode, RotationMode)
    if mode == "per_image":
        return random_rotation(n, generator=generator)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    per_chunk = random_rotation(math.ceil(n / chunk_size), generator=generator)
    return per_chunk.repeat_interleave(chunk_size, dim=0)[:n]


@dataclass(eq=False)
class SphericalSplit:
    """One split: source images ``uint8 [N,H,W]``, labels ``int64 [N]``, signals per variant
    (float16 ``[N, *grid.shape]`` in [0, 1]) and the R variant's rotations float64 ``[N, 3, 3]``."""

    images: np.ndarray
    labels: np.ndarray
    signals: dict[str, np.ndarray]
    rotations: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(eq=False)
class SphericalDigits:
    """A generated dataset: the grid, the splits and the metadata record."""

    grid: S2Grid
    splits: dict[str, SphericalSplit]
    metadata: dict = field(default_factory=dict)


def make_grid(L: int = 30, kind: str = "dh", nside: int | None = None) -> S2Grid:
    """``S2Grid(L, kind, nside)``; for HEALPix without ``nside`` the smallest power of 2 ≥ L/2 (16 for L = 30)."""
    if kind == "healpix" and nside is None:
        nside = 1
        while 2 * nside < L:
            nside *= 2
    return S2Grid(L, kind, nside=nside)


def grid_description(grid: S2Grid) -> dict:
    return {"kind": grid.kind, "L": grid.L, "nside": grid.nside, "shape": list(grid.shape)}


def creation_command() -> str:
    """The command line of this process, recorded in metadata."""
    return " ".join([sys.executable, *sys.argv]) if sys.argv and sys.argv[0] else sys.executable


def generate_spherical_digits(
    source: str | DigitSource = "embedded",
    grid: S2Grid | None = None,
    rotation_mode: RotationMode = "per_image",
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    extent: float = DEFAULT_EXTENT,
    progress: bool = False,
    command: str | None = None,
) -> SphericalDigits:
    """Project every train and test digit of ``source`` onto ``grid``, unrotated (NR) and rotated (R).

    ``grid`` defaults to ``S2Grid(30, "dh")``. ``progress`` shows a tqdm bar.
    """
    grid = S2Grid(30, "dh") if grid is None else grid
    if not isinstance(grid, S2Grid):
        raise TypeError(f"grid must be an S2Grid, got {type(grid).__name__}")
    check_option("rotation_mode", rotation_mode, RotationMode)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    source = resolve_source(source)
    loaded: dict[str, DigitSplit] = {split: source.load(split) for split in SPLITS}
    shapes = {split: data.images.shape[1:] for split, data in loaded.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"train and test images of {source.name} differ in size: {shapes}")

    total = 2 * sum(len(data) for data in loaded.values())
    bar = _progress_bar(total, progress, f"projecting {source.name} onto {grid.kind} L={grid.L}")
    splits: dict[str, SphericalSplit] = {}
    try:
        for split, data in loaded.items():
            generator = torch.Generator().manual_seed(derive_seed(seed, split))
            rotations = draw_rotations(len(data), rotation_mode, generator, chunk_size)
            signals = {
                variant: _project_in_chunks(data.images, grid, rotations if variant == "R" else None, extent, bar)
                for variant in VARIANTS
            }
            splits[split] = SphericalSplit(data.images, data.labels, signals, rotations.numpy())
    finally:
        if bar is not None:
            bar.close()

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "source": source.name,
        "source_fingerprints": {split: data.fingerprint() for split, data in loaded.items()},
        "grid": grid_description(grid),
        "projection": {
            "kind": "stereographic from the north pole onto the plane tangent at the south pole",
            "extent": float(extent),
            "image_shape": list(shapes["train"]),
            "interpolation": "bilinear, zero outside the image",
        },
        "rotation_mode": rotation_mode,
        "chunk_size": chunk_size if rotation_mode == "chunked" else None,
        "seed": seed,
        "variants": list(VARIANTS),
        "split_sizes": {split: len(data) for split, data in loaded.items()},
        "signal_dtype": np.dtype(SIGNAL_DTYPE).name,
        "signal_units": "pixel value / 255",
        "command": command if command is not None else creation_command(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sphcnn_version": __version__,
    }
    log.info("generated %s on %s L=%d (%s, seed %d): %s", source.name, grid.kind, grid.L, rotation_mode, seed,
             metadata["split_sizes"])
    return SphericalDigits(grid=grid, splits=splits, metadata=metadata)


def _project_in_chunks(images: np.ndarray, grid: S2Grid, rotations, extent: float, bar, chunk: int = 1000) -> np.ndarray:
    out = np.empty((len(images), *grid.shape), dtype=SIGNAL_DTYPE)
    flat_out = torch.from_numpy(out).reshape(len(images), -1)
    points = grid.points().reshape(-1, 3)  # computed once for all chunks
    for start in range(0, len(images), chunk):
        stop = min(start + chunk, len(images))
        chunk_rotations = None if rotations is None else rotations[start:stop]
        values = project_images(torch.from_numpy(images[start:stop]), points, chunk_rotations, extent)
        # torch converts to float16 much faster than numpy
        flat_out[start:stop] = (values * (1.0 / 255.0)).to(torch.float16)
        if bar is not None:
            bar.update(stop - start)
    return out


def _progress_bar(total: int, enabled: bool, description: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="img")
