"""Where generated datasets live, and generating them on first use.

Cache directory, first match wins: the ``cache_dir`` argument, the
``SPHCNN_CACHE`` environment variable, ``$XDG_CACHE_HOME/sphcnn``,
``~/.cache/sphcnn``. Nothing is ever written to the working directory by
default.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from ..spectral.grids import S2Grid
from .generation import DEFAULT_CHUNK_SIZE, RotationMode, generate_spherical_digits
from .projection import DEFAULT_EXTENT
from .sources import DigitSource, resolve_source
from .storage import DatasetFileError, MetadataMismatchError, check_metadata, read_metadata, save_dataset

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$SPHCNN_CACHE``, else ``$XDG_CACHE_HOME/sphcnn``, else ``~/.cache/sphcnn``."""
    if os.environ.get("SPHCNN_CACHE"):
        return Path(os.environ["SPHCNN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "sphcnn"
    return Path.home() / ".cache" / "sphcnn"


def expected_settings(
    source: DigitSource, grid: S2Grid, rotation_mode: RotationMode, seed: int, chunk_size: int, extent: float
) -> dict:
    """The settings a dataset file must have been generated with (see :func:`~sphcnn.data.storage.check_metadata`)."""
    return {
        "source": source.name,
        "grid": {"kind": grid.kind, "L": grid.L, "nside": grid.nside},
        "rotation_mode": rotation_mode,
        "chunk_size": chunk_size if rotation_mode == "chunked" else None,
        "seed": seed,
        "extent": float(extent),
    }


def dataset_filename(settings: dict) -> str:
    """A readable file name that differs whenever the defining settings differ."""
    grid = settings["grid"]
    grid_part = f"{grid['kind']}{grid['L']}" + (f"n{grid['nside']}" if grid["nside"] else "")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", settings["source"].split("/")[-1]).strip("-")[:40]
    digest = hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:10]
    return f"spherical-{slug}-{grid_part}-{settings['rotation_mode']}-seed{settings['seed']}-{digest}.npz"


def ensure_dataset_file(
    source: str | DigitSource = "embedded",
    grid: S2Grid | None = None,
    rotation_mode: RotationMode = "per_image",
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    extent: float = DEFAULT_EXTENT,
    cache_dir: str | os.PathLike | None = None,
    data_file: str | os.PathLike | None = None,
    progress: bool = False,
) -> Path:
    """Path of a dataset file with these settings, generating it into the cache if it is not there.

    A given ``data_file`` must exist and match (else :class:`MetadataMismatchError`
    or :class:`DatasetFileError`); it is never generated or overwritten. A cached
    file that does not match or is unreadable is regenerated, with a warning.
    """
    grid = S2Grid(30, "dh") if grid is None else grid
    source = resolve_source(source)
    settings = expected_settings(source, grid, rotation_mode, seed, chunk_size, extent)
    if data_file is not None:
        check_metadata(read_metadata(data_file), settings, data_file)
        return Path(data_file)
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = path / dataset_filename(settings)
    if path.exists():
        try:
            check_metadata(read_metadata(path), settings, path)
            return path
        except (DatasetFileError, MetadataMismatchError) as err:
            log.warning("regenerating cached dataset: %s", err)
    dataset = generate_spherical_digits(source, grid, rotation_mode, seed, chunk_size, extent, progress=progress)
    save_dataset(dataset, path)
    return path

