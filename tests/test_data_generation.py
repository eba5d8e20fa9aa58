"""Generation of NR/R twins: shapes, rotations, twin consistency, determinism, embedded split."""

import numpy as np
import pytest
import torch

from sphcnn.data import (
    EmbeddedMNIST,
    draw_rotations,
    gaussian_blob_digits,
    generate_spherical_digits,
    make_grid,
    project_to_grid,
)
from sphcnn.spectral import S2Grid, points_to_angles


@pytest.fixture(scope="module")
def blobs():
    return generate_spherical_digits(gaussian_blob_digits(24, 12, seed=0), S2Grid(32), "per_image", seed=5)


def interpolate_dh(signal, L, theta, phi):
    """Bilinear interpolation in (θ, φ) on a DH grid, written independently of the code under test."""
    step_theta, step_phi = np.pi / (2 * L), np.pi / L
    j, k = theta / step_theta, phi / step_phi
    j0, k0 = np.floor(j).astype(int), np.floor(k).astype(int)
    a, b = j - j0, k - k0
    j1 = np.minimum(j0 + 1, 2 * L - 1)
    k0, k1 = k0 % (2 * L), (k0 + 1) % (2 * L)
    return (1 - a) * ((1 - b) * signal[j0, k0] + b * signal[j0, k1]) + a * ((1 - b) * signal[j1, k0] + b * signal[j1, k1])


def test_layout_and_metadata(blobs):
    grid = blobs.grid
    for split, n in (("train", 24), ("test", 12)):
        part = blobs.splits[split]
        assert part.images.shape == (n, 28, 28) and part.labels.shape == (n,)
        assert part.rotations.shape == (n, 3, 3)
        for variant in ("NR", "R"):
            assert part.signals[variant].shape == (n, *grid.shape)
            assert part.signals[variant].dtype == np.float16
            assert 0 <= part.signals[variant].min() and part.signals[variant].max() <= 1
        orthogonality = part.rotations @ part.rotations.transpose(0, 2, 1)
        np.testing.assert_allclose(orthogonality, np.broadcast_to(np.eye(3), orthogonality.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(part.rotations), 1.0, atol=1e-12)
    meta = blobs.metadata
    assert meta["grid"] == {"kind": "dh", "L": 32, "nside": None, "shape": [64, 64]}
    assert meta["rotation_mode"] == "per_image" and meta["seed"] == 5 and meta["chunk_size"] is None
    assert meta["source"].startswith("gaussian-blobs") and meta["split_sizes"] == {"train": 24, "test": 12}
    assert meta["command"] and meta["projection"]["extent"] == 1.5


def test_nr_signals_are_unrotated_projections(blobs):
    part = blobs.splits["test"]
    expected = project_to_grid(torch.from_numpy(part.images), blobs.grid).numpy() / 255
    np.testing.assert_allclose(part.signals["NR"], expected, atol=1e-3)


def test_rotating_nr_by_the_stored_rotation_gives_the_r_twin(blobs):
    L = blobs.grid.L
    points = blobs.grid.points().numpy().reshape(-1, 3)
    top, bottom = blobs.grid.ring_theta[0], blobs.grid.ring_theta[-1]
    for split in ("train", "test"):
        part = blobs.splits[split]
        for i in range(len(part.labels)):
            R = part.rotations[i]
            theta, phi = points_to_angles(torch.from_numpy(points @ R))  # R⁻¹x = Rᵀx, as row vectors
            theta, phi = theta.numpy(), phi.numpy()
            covered = (theta >= top) & (theta <= bottom)  # where the independent interpolation is defined
            twin = interpolate_dh(part.signals["NR"][i].astype(np.float64), L, theta, phi)
            r = part.signals["R"][i].reshape(-1).astype(np.float64)
            peak = r.max()
            assert peak > 0.3
            # tolerance: bilinear error of blobs (σ ≥ 2 px ≈ 0.2 rad) on a π/64 grid is a few % of the peak
            np.testing.assert_allclose(r[covered], twin[covered], atol=0.05 * peak)
            # and the rotation moved the digit: R differs from NR
            assert np.abs(r - part.signals["NR"][i].reshape(-1)).max() > 0.3 * peak


def test_same_digits_same_order_in_both_variants(blobs):
    part = blobs.splits["train"]
    total_nr = part.signals["NR"].astype(np.float64) * blobs.grid.weights.numpy()
    total_r = part.signals["R"].astype(np.float64) * blobs.grid.weights.numpy()
    # integrals over the sphere are rotation invariant (to quadrature/interpolation accuracy)
    np.testing.assert_allclose(total_r.sum((1, 2)), total_nr.sum((1, 2)), rtol=0.03)


def test_seeded_and_reproducible():
    source = gaussian_blob_digits(8, 4, seed=1)
    grid = S2Grid(8)
    a = generate_spherical_digits(source, grid, seed=3)
    b = generate_spherical_digits(source, grid, seed=3)
    c = generate_spherical_digits(source, grid, seed=4)
    for split in ("train", "test"):
        np.testing.assert_array_equal(a.splits[split].rotations, b.splits[split].rotations)
        np.testing.assert_array_equal(a.splits[split].signals["R"], b.splits[split].signals["R"])
        assert not np.allclose(a.splits[split].rotations, c.splits[split].rotations)
        np.testing.assert_array_equal(a.splits[split].signals["NR"], c.splits[split].signals["NR"])
    assert not np.allclose(a.splits["train"].rotations[:4], a.splits["test"].rotations)


def test_chunked_mode_shares_one_rotation_per_chunk():
    gen = torch.Generator().manual_seed(0)
    R = draw_rotations(1234, "chunked", gen, chunk_size=500).numpy()
    assert R.shape == (1234, 3, 3)
    chunks = [R[:500], R[500:1000], R[1000:]]
    for chunk in chunks:
        np.testing.assert_array_equal(chunk, np.broadcast_to(chunk[0], chunk.shape))
    assert not np.allclose(chunks[0][0], chunks[1][0]) and not np.allclose(chunks[1][0], chunks[2][0])
    per_image = draw_rotations(50, "per_image", torch.Generator().manual_seed(0)).numpy()
    assert len({tuple(np.round(r.ravel(), 12)) for r in per_image}) == 50
    with pytest.raises(ValueError, match="rotation_mode must be one of"):
        draw_rotations(5, "per_batch", gen)
    with pytest.raises(ValueError, match="chunk_size"):
        draw_rotations(5, "chunked", gen, chunk_size=0)


def test_random_rotations_move_the_south_pole_uniformly():
    R = draw_rotations(20000, "per_image", torch.Generator().manual_seed(2)).numpy()
    moved = R @ np.array([0.0, 0.0, -1.0])
    # uniform on S²: each coordinate has mean 0 and variance 1/3, z is uniform on [-1, 1]
    np.testing.assert_allclose(moved.mean(0), 0, atol=0.03)
    np.testing.assert_allclose((moved**2).mean(0), 1 / 3, atol=0.02)
    assert np.histogram(moved[:, 2], bins=4, range=(-1, 1))[0].min() > 0.9 * 5000


def test_embedded_split_is_balanced_disjoint_and_fixed():
    source = EmbeddedMNIST()
    train, test = source.load("train"), source.load("test")
    assert len(train) == 4000 and len(test) == 1000
    np.testing.assert_array_equal(np.bincount(train.labels), 400)
    np.testing.assert_array_equal(np.bincount(test.labels), 100)
    np.testing.assert_array_equal(train.labels[:20], np.tile(np.arange(10), 2))
    train_keys = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_keys for img in test.images)
    assert train.images.dtype == np.uint8 and train.images.max() == 255


@pytest.mark.parametrize("kind", ["gl", "healpix"])
def test_other_grids(kind):
    grid = make_grid(12, kind)
    data = generate_spherical_digits(gaussian_blob_digits(4, 2), grid, seed=0)
    assert data.splits["train"].signals["R"].shape == (4, *grid.shape)
    assert data.metadata["grid"]["kind"] == kind
    if kind == "healpix":
        assert grid.nside == 8  # smallest power of 2 >= L/2
