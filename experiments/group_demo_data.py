"""DataModules for the group-CNN demos of ``experiments/group_demos.py``, for the Hydra CLI.

    python experiments/train.py experiment=dna_rc          # reverse-complement invariant CNN
    python experiments/train.py experiment=dna_plain       # plain CNN, same task
    python experiments/train.py experiment=polycubes_oh    # O_h-invariant 3-D CNN

The data are generated in memory from a seed by the demo's own functions
(nothing is downloaded or cached). The test split is the held-out
transformed one: motifs planted on the reverse strand only (DNA) or shapes
turned by random 90° rotations (polycubes), while training and validation
see a single strand / orientation.
"""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from experiments.group_demos import free_polycubes, make_dna_data, make_polycube_data, rotate_volumes
from sphcnn.spectral._options import check_option

Strand = Literal["forward", "reverse"]


class _InMemoryDataModule(pl.LightningDataModule):
    def __init__(self, batch_size: int, seed: int) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size, self.seed = batch_size, seed
        self.datasets: dict[str, TensorDataset] = {}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.datasets:
            raise RuntimeError("call setup() before asking for data loaders")
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, generator=generator)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class DNAMotifDataModule(_InMemoryDataModule):
    """One-hot DNA ``[B, 4, length]``; label 1 = a planted motif. Train/val: forward strand; test: ``test_strand``."""

    def __init__(
        self,
        n_train: int = 512,
        n_val: int = 256,
        n_test: int = 512,
        length: int = 48,
        motif_length: int = 8,
        test_strand: Strand = "reverse",
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        check_option("test_strand", test_strand, Strand)
        if motif_length > length:
            raise ValueError(f"motif_length {motif_length} is longer than the sequences ({length})")
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.length, self.motif_length, self.test_strand = length, motif_length, test_strand

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        rng = np.random.default_rng(self.seed)
        motif = rng.integers(0, 4, size=self.motif_length)
        for split, strand in (("train", "forward"), ("val", "forward"), ("test", self.test_strand)):
            self.datasets[split] = TensorDataset(*make_dna_data(self.sizes[split], self.length, motif, strand, rng))


class PolycubeDataModule(_InMemoryDataModule):
    """Noisy voxel volumes ``[B, 1, grid, grid, grid]`` of the free polycubes of ``cube_size`` cells.

    Train/val: every shape in one fixed orientation; test: the same shapes
    turned by random rotations of the cube when ``rotate_test``.
    """

    def __init__(
        self,
        cube_size: int = 4,
        grid: int = 6,
        per_class_train: int = 20,
        per_class_val: int = 10,
        per_class_test: int = 20,
        noise: float = 0.1,
        rotate_test: bool = True,
        batch_size: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        self.cube_size, self.grid, self.noise, self.rotate_test = cube_size, grid, noise, rotate_test
        self.per_class = {"train": per_class_train, "val": per_class_val, "test": per_class_test}
        self.num_classes = len(free_polycubes(cube_size))

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        rng = np.random.default_rng(self.seed)
        shapes = free_polycubes(self.cube_size)
        for split in ("train", "val", "test"):
            x, y = make_polycube_data(shapes, self.per_class[split], self.grid, self.noise, rng)
            if split == "test" and self.rotate_test:
                x = rotate_volumes(x, rng)
            self.datasets[split] = TensorDataset(x, y)
