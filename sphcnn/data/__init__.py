"""Spherical MNIST: digit sources, stereographic projection, generation, storage, Dataset.

Importable without Lightning; the Lightning ``SphericalMNISTDataModule``
lives in :mod:`sphcnn.data.datamodule`.
"""

from .cache import default_cache_dir, ensure_dataset_file, expected_settings
from .dataset import SphericalDigitsDataset, signal_statistics
from .generation import (
    RotationMode,
    SphericalDigits,
    SphericalSplit,
    Variant,
    derive_seed,
    draw_rotations,
    generate_spherical_digits,
    make_grid,
)
from .idx import IDXFormatError, read_idx, write_idx
from .projection import DEFAULT_EXTENT, bilinear_sample, coverage_angles, plane_coordinates, project_images, project_to_grid
from .sources import ArrayDigits, DigitSource, DigitSplit, EmbeddedMNIST, IDXDigits, gaussian_blob_digits, resolve_source
from .storage import (
    DatasetFileError,
    MetadataMismatchError,
    check_metadata,
    load_dataset,
    read_metadata,
    save_dataset,
)

__all__ = [
    "DEFAULT_EXTENT",
    "ArrayDigits",
    "DatasetFileError",
    "DigitSource",
    "DigitSplit",
    "EmbeddedMNIST",
    "IDXDigits",
    "IDXFormatError",
    "MetadataMismatchError",
    "RotationMode",
    "SphericalDigits",
    "SphericalDigitsDataset",
    "SphericalSplit",
    "Variant",
    "bilinear_sample",
    "check_metadata",
    "coverage_angles",
    "default_cache_dir",
    "derive_seed",
    "draw_rotations",
    "ensure_dataset_file",
    "expected_settings",
    "gaussian_blob_digits",
    "generate_spherical_digits",
    "load_dataset",
    "make_grid",
    "plane_coordinates",
    "project_images",
    "project_to_grid",
    "read_idx",
    "read_metadata",
    "resolve_source",
    "save_dataset",
    "signal_statistics",
    "write_idx",
]
