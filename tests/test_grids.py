import math

import numpy as np
import pytest
import torch

from sphcnn.spectral import S2Grid


@pytest.mark.parametrize("kind,L,shape", [("dh", 8, (16, 16)), ("gl", 8, (8, 15)), ("dh", 1, (2, 2))])
def test_shapes_and_ranges(kind, L, shape):
    g = S2Grid(L, kind)
    assert g.shape == shape and g.theta.shape == shape and g.phi.shape == shape and g.weights.shape == shape
    assert g.theta.dtype == torch.float64
    assert (g.theta >= 0).all() and (g.theta <= math.pi).all()
    assert (g.phi >= 0).all() and (g.phi < 2 * math.pi).all()


def test_dh_includes_north_pole():
    g = S2Grid(4, "dh")
    assert g.theta[0, 0] == 0 and torch.allclose(g.theta[:, 0], torch.pi * torch.arange(8, dtype=torch.float64) / 8, atol=1e-15)


@pytest.mark.parametrize("kind", ["dh", "gl"])
@pytest.mark.parametrize("L", [3, 10, 33])
def test_quadrature_exact_for_polynomials(kind, L):
    """∫ cos^k θ dΩ = 4π/(k+1) for even k: exact up to degree 2L−2."""
    g = S2Grid(L, kind)
    for k in range(0, 2 * L - 1, 2):
        got = (g.weights * torch.cos(g.theta) ** k).sum().item()
        assert got == pytest.approx(4 * math.pi / (k + 1), rel=1e-12, abs=1e-13)


def test_healpix_grid_matches_healpy():
    import healpy as hp

    g = S2Grid(12, "healpix", nside=4)
    theta, phi = hp.pix2ang(4, np.arange(192))
    assert g.shape == (192,)
    np.testing.assert_array_equal(g.theta.numpy(), theta)
    assert g.weights.sum().item() == pytest.approx(4 * math.pi)
    rings = g.rings()
    assert rings.count.sum() == 192 and rings.theta.size == 4 * 4 - 1


def test_points_are_unit_vectors_from_z():
    g = S2Grid(5, "gl")
    p = g.points()
    assert torch.allclose(p.norm(dim=-1), torch.ones(()).double())
    assert torch.allclose(p[..., 2], torch.cos(g.theta))


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(L=4, kind="equiangular"), "grid kind must be one of"),
        (dict(L=0), "bandlimit L"),
        (dict(L=4.0), "bandlimit L"),
        (dict(L=4, kind="healpix"), "nside"),
        (dict(L=4, kind="healpix", nside=6), "power of 2"),
        (dict(L=20, kind="healpix", nside=4), "L <= 3\\*nside = 12"),
        (dict(L=4, kind="dh", nside=4), "only meaningful"),
    ],
)
def test_bad_grid_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        S2Grid(**kwargs)


def test_check_rejects_bad_input():
    g = S2Grid(4)
    with pytest.raises(ValueError, match=r"trailing grid shape \(8, 8\)"):
        g.check(torch.zeros(2, 8, 7))
    with pytest.raises(TypeError, match="float32 or float64"):
        g.check(torch.zeros(8, 8, dtype=torch.int64))
