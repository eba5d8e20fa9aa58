"""Stereographic projection and bilinear interpolation, checked against formulas written here."""

import math

import numpy as np
import pytest
import torch

from sphcnn.data import bilinear_sample, coverage_angles, project_images, project_to_grid
from sphcnn.data.projection import plane_coordinates
from sphcnn.spectral import S2Grid, random_rotation

SOUTH, NORTH = [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]


def random_unit_vectors(n, seed=0):
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True)


def stereographic(points):
    """Independent formula: project from the north pole onto the plane z = -1 (numpy)."""
    p = np.asarray(points, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = 2.0 / (1.0 - p[..., 2])
        return t * p[..., 0], t * p[..., 1]


def test_centre_pixel_lands_on_the_south_pole():
    image = torch.zeros(1, 27, 27)
    image[0, 13, 13] = 200.0  # the centre pixel of an odd-sized image
    values = project_images(image, torch.tensor([SOUTH, NORTH]))
    assert values[0, 0] == pytest.approx(200.0)
    assert values[0, 1] == 0.0  # the north pole maps to infinity
    # 28×28 (MNIST): the centre is the corner shared by pixels 13 and 14
    image = torch.zeros(1, 28, 28)
    image[0, 13:15, 13:15] = 100.0
    assert project_images(image, torch.tensor([SOUTH]))[0, 0] == pytest.approx(100.0)
    image[0, 13, 13] = 0.0
    assert project_images(image, torch.tensor([SOUTH]))[0, 0] == pytest.approx(75.0)


def test_digit_centre_is_brightest_near_the_south_pole_on_the_grid():
    image = torch.zeros(1, 27, 27)
    image[0, 13, 13] = 1.0
    grid = S2Grid(30)
    signal = project_to_grid(image, grid)[0]
    row, col = divmod(int(signal.argmax()), grid.shape[1])
    assert row == grid.shape[0] - 1  # the ring closest to the south pole


@pytest.mark.parametrize("rotated", [False, True])
def test_projection_matches_the_planar_function_it_samples(rotated):
    # image = samples at pixel centres of a smooth, asymmetric planar function g(u, v)
    extent, size = 1.5, 28
    centres = -extent + (np.arange(size) + 0.5) * (2 * extent / size)
    v, u = np.meshgrid(centres, centres, indexing="ij")  # rows follow v (+y), columns follow u (+x)

    def g(u, v):
        return np.exp(-((u - 0.4) ** 2 / 0.3 + (v + 0.2) ** 2 / 0.15))

    image = torch.from_numpy(g(u, v)).float()[None]
    points = random_unit_vectors(4000)
    R = random_rotation(1, generator=torch.Generator().manual_seed(3)) if rotated else None
    values = project_images(image, points, R).numpy()[0]
    source_points = points.numpy() if R is None else points.numpy() @ R[0].numpy()  # Rᵀ x as rows
    pu, pv = stereographic(source_points)
    inside = (np.abs(pu) < extent - 0.1) & (np.abs(pv) < extent - 0.1)
    assert inside.sum() > 500
    # bilinear error of this g on 3/28-wide pixels is below h²/8·max|g''| ≈ 0.03
    np.testing.assert_allclose(values[inside], g(pu, pv)[inside], atol=0.04)
    far = (np.abs(pu) > extent + 0.1) | (np.abs(pv) > extent + 0.1)
    assert np.all(values[far] == 0)


def test_bilinear_is_exact_for_affine_images_and_zero_outside():
    rows, cols = torch.meshgrid(torch.arange(10.0), torch.arange(12.0), indexing="ij")
    image = (3.0 + 0.5 * rows - 2.0 * cols)[None]
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(1, 500, generator=gen, dtype=torch.float64) * 9
    c = torch.rand(1, 500, generator=gen, dtype=torch.float64) * 11
    np.testing.assert_allclose(bilinear_sample(image.double(), r, c), 3.0 + 0.5 * r - 2.0 * c, rtol=1e-12)
    outside = bilinear_sample(image, torch.tensor([[-1.0, 5.0, 12.0, -30.0]]), torch.tensor([[4.0, 11.0, 3.0, 2.0]]))
    assert outside[0, 0] == 0 and outside[0, 2] == 0 and outside[0, 3] == 0
    assert outside[0, 1] == pytest.approx(float(image[0, 5, 11]))


@pytest.mark.parametrize("rotated", [False, True])
def test_fast_projection_agrees_with_reference_bilinear(rotated):
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (6, 28, 28), generator=gen).to(torch.uint8)
    points = random_unit_vectors(3000, seed=1)
    R = random_rotation(6, generator=gen) if rotated else None
    fast = project_images(images, points, R)
    source = points.expand(6, -1, -1) if R is None else points @ R
    u, v, finite = plane_coordinates(source)
    reference = bilinear_sample(images.double(), (v + 1.5) * 28 / 3 - 0.5, (u + 1.5) * 28 / 3 - 0.5)
    reference = torch.where(finite, reference, 0.0)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), atol=2e-3)


def test_coverage_of_the_image_square():
    cover = coverage_angles(1.5)
    assert cover["edge_deg"] == pytest.approx(73.74, abs=0.01)
    assert cover["corner_deg"] == pytest.approx(93.37, abs=0.01)
    # independent estimate: quadrature over a fine DH grid of the points landing in the square
    grid = S2Grid(200)
    u, v = stereographic(grid.points().numpy())
    inside = (np.abs(u) <= 1.5) & (np.abs(v) <= 1.5)
    fraction = float(grid.weights.numpy()[inside].sum() / (4 * math.pi))
    assert cover["sphere_fraction"] == pytest.approx(fraction, abs=2e-3)


def test_projection_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        project_images(torch.zeros(28, 28), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\[P, 3\]"):
        project_images(torch.zeros(1, 28, 28), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="rotations must have shape"):
        project_images(torch.zeros(2, 28, 28), torch.zeros(5, 3), torch.eye(3)[None])
