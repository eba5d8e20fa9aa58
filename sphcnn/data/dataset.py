"""A PyTorch ``Dataset`` over one split and variant of a spherical digit dataset.

Items are ``(x, y)``: x float32 ``[1, *grid.shape]``, y an int64 scalar.

With ``augment_rotation=True`` every item is a fresh uniformly random
rotation of its digit, made exactly by re-projecting the 28×28 source image
at R⁻¹x (no resampling of the gridded signal, so no blur). The rotations
come from a generator seeded with ``seed``; inside DataLoader workers each
worker reseeds from its own ``worker_info.seed`` (which the DataLoader
derives from its generator), so workers never repeat each other.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from ..spectral._options import check_option
from ..spectral.rotation import random_rotation
from .generation import SphericalDigits, Variant, derive_seed
from .projection import project_images
from .sources import Split


class SphericalDigitsDataset(Dataset):
    """Samples of one split ("train"/"test") and variant ("NR"/"R"), optionally a subset ``indices``.

    ``mean``/``std`` normalize the signal as (x − mean)/std (defaults: none).
    """

    def __init__(
        self,
        data: SphericalDigits,
        split: Split,
        variant: Variant,
        indices: Sequence[int] | np.ndarray | None = None,
        augment_rotation: bool = False,
        mean: float = 0.0,
        std: float = 1.0,
        seed: int = 0,
    ) -> None:
        check_option("split", split, Split)
        check_option("variant", variant, Variant)
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.grid = data.grid
        self.split, self.variant = split, variant
        part = data.splits[split]
        self.signals = part.signals[variant]
        self.labels = part.labels
        self.images = part.images
        self.extent = float(data.metadata["projection"]["extent"])
        n = len(self.labels)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1 or (len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n)):
            raise ValueError(f"indices must be a 1-D array of sample numbers in [0, {n}), got {indices!r}")
        self.augment_rotation = bool(augment_rotation)
        self.mean, self.std = float(mean), float(std)
        self.seed = seed
        self._points = self.grid.points().reshape(-1, 3).to(torch.float32)
        self._generator = torch.Generator().manual_seed(derive_seed(seed, "augment"))
        self._generator_owner: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # DataLoader fetches a whole batch through this, so augmentation projects the batch at once.
        indices = self.indices[np.asarray(items, dtype=np.int64)]
        if self.augment_rotation:
            rotations = random_rotation(len(indices), generator=self._augmentation_generator())
            signals = project_images(torch.from_numpy(self.images[indices]), self._points, rotations, self.extent)
            x = signals.reshape(len(indices), *self.grid.shape) / 255.0
        else:
            x = torch.from_numpy(self.signals[indices].astype(np.float32))
        if self.mean != 0.0 or self.std != 1.0:
            x = (x - self.mean) / self.std
        labels = torch.from_numpy(self.labels[indices])
        return [(x[i].unsqueeze(0), labels[i]) for i in range(len(indices))]

    def _augmentation_generator(self) -> torch.Generator:
        worker = get_worker_info()
        if worker is None:
            return self._generator
        if self._generator_owner != worker.seed:
            # Each worker holds a copy of this dataset: reseed per worker so copies differ.
            self._generator = torch.Generator().manual_seed(worker.seed % 2**63)
            self._generator_owner = worker.seed
        return self._generator


def signal_statistics(data: SphericalDigits, split: Split, variant: Variant, indices=None) -> tuple[float, float]:
    """Mean and standard deviation over all grid values of the chosen samples (float64 accumulation)."""
    signals = data.splits[split].signals[variant]
    chosen = signals if indices is None else signals[np.asarray(indices)]
    total = chosen.sum(dtype=np.float64)
    count = chosen.size
    mean = total / count
    square = np.square(chosen, dtype=np.float64).sum() / count
    return float(mean), float(np.sqrt(max(square - mean * mean, 0.0)))
