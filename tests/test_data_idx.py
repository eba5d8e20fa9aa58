"""IDX reader/writer and the IDX digit source, on small files written here."""

import gzip

import numpy as np
import pytest

from sphcnn.data import IDXDigits, IDXFormatError, read_idx, write_idx
from sphcnn.data.sources import IDX_FILE_STEMS


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["array.idx", "array.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 5, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_standard_layout(tmp_path):
    labels = np.array([7, 2, 1], dtype=np.uint8)
    raw = write_idx(tmp_path / "labels", labels).read_bytes()
    # magic 0x00000801 then the count as big-endian uint32, then the bytes
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "plain", array, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), array)


def test_corrupt_idx_files_give_clear_errors(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((4, 3, 3), np.uint8)).read_bytes()
    cases = {
        "truncated": good[:-5],
        "magic": b"\x01" + good[1:],
        "type": good[:2] + b"\x07" + good[3:],
        "header": good[:6],
    }
    messages = {"truncated": "needs", "magic": "not an IDX", "type": "unknown IDX element type", "header": "truncated header"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IDXFormatError, match=messages[name]):
            read_idx(tmp_path / name)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-8])
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(tmp_path / "bad.gz")


def test_writer_rejects_unsupported_dtypes(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


def write_mnist_dir(directory, n_train=6, n_test=4, gz_train=True, size=28):
    rng = np.random.default_rng(1)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if (split == "train") == gz_train else ""
        image_stem, label_stem = IDX_FILE_STEMS[split]
        write_idx(directory / f"{image_stem}{suffix}", images)
        write_idx(directory / f"{label_stem}{suffix}", labels)
        data[split] = (images, labels)
    return data


def test_idx_source_reads_mnist_layout(tmp_path):
    data = write_mnist_dir(tmp_path)
    source = IDXDigits(tmp_path)
    for split, (images, labels) in data.items():
        loaded = source.load(split)
        np.testing.assert_array_equal(loaded.images, images)
        np.testing.assert_array_equal(loaded.labels, labels)
        assert loaded.labels.dtype == np.int64
    assert str(tmp_path.resolve()) in source.name


def test_idx_source_names_missing_files(tmp_path):
    write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        IDXDigits(tmp_path).load("test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        IDXDigits(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split must be one of"):
        IDXDigits(tmp_path).load("validation")


def test_idx_source_checks_counts(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        IDXDigits(tmp_path).load("train")
