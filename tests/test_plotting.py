"""Pictures of spherical signals: orientation of every view, all grids, PNG output."""

import numpy as np
import pytest
import torch

from sphcnn.data import gaussian_blob_digits, generate_spherical_digits, make_grid, project_to_grid
from sphcnn.plotting import nearest_grid_index, plot_sphere, plot_twins, sphere_image
from sphcnn.spectral import S2Grid

GRIDS = [S2Grid(12), S2Grid(12, "gl"), S2Grid(12, "healpix", nside=8)]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.kind)
def test_nearest_grid_index_finds_the_grid_points(grid):
    theta, phi = grid.theta.numpy().ravel(), grid.phi.numpy().ravel()
    np.testing.assert_array_equal(nearest_grid_index(grid, theta, phi), np.arange(theta.size))


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: g.kind)
@pytest.mark.parametrize("projection", ["equirectangular", "mollweide", "orthographic"])
def test_views_are_oriented_north_up_east_right(grid, projection):
    x, y, z = np.moveaxis(grid.points().numpy(), -1, 0)
    image_z = sphere_image(z, grid, projection, xsize=120)
    image_y = sphere_image(y, grid, projection, xsize=120)
    image_x = sphere_image(x, grid, projection, xsize=120)
    rows, cols = image_z.shape
    # rows run south → north (drawn with origin="lower"), columns west → east
    assert np.nanmean(image_z[-rows // 8 :]) > 0.5 > -0.5 > np.nanmean(image_z[: rows // 8])
    assert np.nanmean(image_y[:, cols // 2 + cols // 8 :]) > 0.2 > -0.2 > np.nanmean(image_y[:, : cols // 2 - cols // 8])
    assert image_x[rows // 2, cols // 2] > 0.9  # centred on longitude 0, latitude 0
    assert np.isnan(image_z).any() == (projection != "equirectangular")


def test_globe_shows_the_digit_upright_at_the_south_pole():
    grid = S2Grid(40)
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 4:10, 12:16] = 255  # a bar in the top rows of the image
    signal = project_to_grid(image, grid)[0].numpy()
    picture = sphere_image(signal, grid, "orthographic", center=(0, -90), roll=90, xsize=200)
    rows, cols = np.nonzero(np.nan_to_num(picture) > 100)
    # the image's top (row 0) is drawn at the top of the picture (high row index with origin="lower")
    assert rows.mean() > 0.6 * picture.shape[0] and abs(cols.mean() - picture.shape[1] / 2) < 0.1 * picture.shape[1]
    # not mirrored: a block in the image's left columns is drawn on the left
    image[:] = 0
    image[0, 12:16, 3:8] = 255
    picture = sphere_image(project_to_grid(image, grid)[0].numpy(), grid, "orthographic", center=(0, -90), roll=90, xsize=200)
    rows, cols = np.nonzero(np.nan_to_num(picture) > 100)
    assert cols.mean() < 0.4 * picture.shape[1] and abs(rows.mean() - picture.shape[0] / 2) < 0.1 * picture.shape[0]


def test_plot_functions_write_pngs(tmp_path):
    grid = make_grid(10, "healpix")
    data = generate_spherical_digits(gaussian_blob_digits(3, 3), grid)
    ax = plot_sphere(data.splits["test"].signals["R"][0], grid, "mollweide", title="R", colorbar=True)
    ax.figure.savefig(tmp_path / "one.png")
    part = data.splits["test"]
    figure = plot_twins(part.signals["NR"], part.signals["R"], part.labels, grid, part.rotations)
    figure.savefig(tmp_path / "twins.png")
    assert len(figure.axes) == 12
    for name in ("one.png", "twins.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_refused():
    grid = S2Grid(6)
    with pytest.raises(ValueError, match="grid shape"):
        sphere_image(np.zeros((12, 11)), grid)
    with pytest.raises(ValueError, match="projection must be one of"):
        sphere_image(np.zeros(grid.shape), grid, "gnomonic")
    assert sphere_image(torch.zeros(grid.shape), grid, xsize=40).shape == (20, 40)
