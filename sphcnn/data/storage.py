"""Dataset files: one uncompressed ``.npz`` per dataset, written atomically.

Contents (all plain arrays; loading never unpickles):

* ``metadata``: a JSON record (source, grid, projection, rotation mode,
  seed, split sizes, creation command, time, version);
* ``grid_theta``, ``grid_phi``: the sampling points;
* per split s ∈ {train, test}: ``s_images`` (uint8 source images),
  ``s_labels`` (int64), ``s_NR`` and ``s_R`` (float16 signals),
  ``s_rotations`` (float64 [N, 3, 3], the R variant's rotations).

The zip container checks a CRC-32 of every array when it is read, so
flipped or missing bytes are reported instead of returning wrong data.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..spectral.grids import S2Grid
from .generation import FORMAT_NAME, FORMAT_VERSION, VARIANTS, SphericalDigits, SphericalSplit
from .sources import SPLITS

log = logging.getLogger(__name__)


class DatasetFileError(ValueError):
    """A dataset file is missing, truncated, corrupt or not a sphcnn dataset."""


class MetadataMismatchError(ValueError):
    """A dataset file was generated with settings other than those requested."""


def save_dataset(dataset: SphericalDigits, path: str | os.PathLike) -> Path:
    """Write ``dataset`` to ``path`` atomically: a temporary file in the same directory, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "metadata": np.array(json.dumps(dataset.metadata, sort_keys=True)),
        "grid_theta": dataset.grid.theta.numpy(),
        "grid_phi": dataset.grid.phi.numpy(),
    }
    for split, data in dataset.splits.items():
        arrays[f"{split}_images"] = data.images
        arrays[f"{split}_labels"] = data.labels
        arrays[f"{split}_rotations"] = data.rotations
        for variant, signals in data.signals.items():
            arrays[f"{split}_{variant}"] = signals
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file private (0600); give it the permissions a normal write would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        # Interrupted or failed: leave no half-written file behind.
        Path(temporary).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)  # restored at once: reading the umask requires setting it
    return mask


def read_metadata(path: str | os.PathLike) -> dict:
    """The metadata record of a dataset file (reads nothing else)."""
    path = Path(path)
    with _open(path) as archive:
        return _metadata(archive, path)


def load_dataset(path: str | os.PathLike, expected: dict | None = None) -> SphericalDigits:
    """Read a dataset file; with ``expected`` (see :func:`check_metadata`) refuse one made with other settings."""
    path = Path(path)
    with _open(path) as archive:
        metadata = _metadata(archive, path)
        if expected is not None:
            check_metadata(metadata, expected, path)
        try:
            grid_info = metadata["grid"]
            grid = S2Grid(grid_info["L"], grid_info["kind"], nside=grid_info["nside"])
            splits = {}
            for split in SPLITS:
                signals = {variant: archive[f"{split}_{variant}"] for variant in VARIANTS}
                splits[split] = SphericalSplit(
                    images=archive[f"{split}_images"],
                    labels=archive[f"{split}_labels"],
                    signals=signals,
                    rotations=archive[f"{split}_rotations"],
                )
            theta = archive["grid_theta"]
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
            raise DatasetFileError(f"{path} is corrupt or incomplete ({type(err).__name__}: {err}); delete it and regenerate") from err
    _check_consistency(path, grid, theta, splits, metadata)
    return SphericalDigits(grid=grid, splits=splits, metadata=metadata)


# Settings that define a dataset; the rest of the metadata is provenance.
DEFINING_KEYS = ("source", "grid", "rotation_mode", "chunk_size", "seed", "extent")


def dataset_settings(metadata: dict) -> dict:
    """The defining settings of a metadata record, in the form :func:`check_metadata` compares."""
    grid = metadata["grid"]
    return {
        "source": metadata["source"],
        "grid": {"kind": grid["kind"], "L": grid["L"], "nside": grid["nside"]},
        "rotation_mode": metadata["rotation_mode"],
        "chunk_size": metadata["chunk_size"],
        "seed": metadata["seed"],
        "extent": metadata["projection"]["extent"],
    }


def check_metadata(metadata: dict, expected: dict, path: str | os.PathLike = "<dataset>") -> None:
    """Raise :class:`MetadataMismatchError` listing every setting where the file differs from ``expected``.

    ``expected`` holds any of ``DEFINING_KEYS``; ``grid`` is ``{"kind", "L", "nside"}``.
    """
    unknown = set(expected) - set(DEFINING_KEYS)
    if unknown:
        raise ValueError(f"unknown dataset settings {sorted(unknown)}; known: {list(DEFINING_KEYS)}")
    actual = dataset_settings(metadata)
    differences = [
        f"{key}: file has {actual[key]!r}, config asks for {value!r}"
        for key, value in expected.items()
        if actual[key] != value
    ]
    if differences:
        raise MetadataMismatchError(
            f"dataset file {path} does not match the requested settings:\n  "
            + "\n  ".join(differences)
            + "\nPass a file made with these settings, or regenerate (a different data_file or cache_dir)."
        )


def _open(path: Path):
    if not path.is_file():
        raise DatasetFileError(f"dataset file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetFileError(f"{path} is not a readable sphcnn dataset file ({type(err).__name__}: {err}); delete it and regenerate") from err


def _metadata(archive, path: Path) -> dict:
    try:
        metadata = json.loads(str(archive["metadata"]))
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetFileError(f"{path} has no readable metadata record ({type(err).__name__}: {err}); not a sphcnn dataset file?") from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise DatasetFileError(f"{path} is not a sphcnn dataset file (format {metadata.get('format') if isinstance(metadata, dict) else None!r})")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise DatasetFileError(
            f"{path} has format version {metadata.get('format_version')}, this sphcnn reads version {FORMAT_VERSION}; regenerate it"
        )
    return metadata


def _check_consistency(path: Path, grid: S2Grid, theta: np.ndarray, splits: dict, metadata: dict) -> None:
    problems = []
    if theta.shape != grid.shape or not np.allclose(theta, grid.theta.numpy()):
        problems.append(f"stored grid points do not match a {grid.kind} grid with L={grid.L}")
    for split, data in splits.items():
        n = metadata["split_sizes"][split]
        if len(data.labels) != n or len(data.images) != n or data.rotations.shape != (n, 3, 3):
            problems.append(f"{split}: arrays do not hold the {n} samples the metadata lists")
        for variant, signals in data.signals.items():
            if signals.shape != (n, *grid.shape):
                problems.append(f"{split} {variant}: signals have shape {signals.shape}, expected {(n, *grid.shape)}")
    if problems:
        raise DatasetFileError(f"{path} is inconsistent: " + "; ".join(problems))
