"""Wigner-D matrices, coefficient rotation and basis conversions, checked against independent evaluation."""

import pytest
import torch

from sphcnn.spectral import (
    S2Grid,
    complex_to_real_coeffs,
    e3nn_to_sh,
    random_rotation,
    real_sph_harm,
    real_to_complex_coeffs,
    rotate_sh,
    sh_to_e3nn,
    sht,
    wigner_D,
)
from sphcnn.spectral.testing import evaluate_sh, random_coefficients, relative_error, rotated_signal_pair


@pytest.mark.parametrize("kind", ["dh", "gl"])
def test_rotation_matches_independently_rotated_samples(kind, gen):
    """sht(f(R⁻¹x)) with f(R⁻¹x) evaluated pointwise == rotate_sh(sht(f), R) == D(R) c."""
    L = 10
    grid = S2Grid(L, kind)
    f, f_rot, c, R = rotated_signal_pair(L, grid, None, generator=gen)
    c_rot = sht(f_rot, grid)
    assert relative_error(rotate_sh(c, R), c_rot) < 1e-12
    assert relative_error(wigner_D(L, R) @ c, c_rot) < 1e-12


def test_rotation_at_L256_against_pointwise_evaluation(gen):
    L = 256
    c = random_coefficients(L, generator=gen)
    R = random_rotation(generator=gen)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    expected = evaluate_sh(c, (R.T @ x.T).T)
    assert relative_error(evaluate_sh(rotate_sh(c, R), x), expected) < 1e-12


def test_homomorphism_and_orthogonality(gen):
    L = 12
    R1, R2 = random_rotation(2, generator=gen)
    D1, D2, D12 = wigner_D(L, R1), wigner_D(L, R2), wigner_D(L, R1 @ R2)
    assert torch.allclose(D12, D1 @ D2, atol=1e-13)
    eye = torch.eye(L * L, dtype=torch.float64)
    assert torch.allclose(D1 @ D1.T, eye, atol=1e-13)
    assert torch.allclose(wigner_D(L, R1.T), D1.T, atol=1e-13)


def test_batched_rotations_and_broadcasting(gen):
    L = 5
    R = random_rotation(3, 2, generator=gen)
    c = random_coefficients(L, 2, generator=gen)
    out = rotate_sh(c, R)
    assert out.shape == (3, 2, L * L)
    for i in range(3):
        for j in range(2):
            assert torch.allclose(out[i, j], wigner_D(L, R[i, j]) @ c[j], atol=1e-13)


def test_z_rotation_shifts_longitude(gen):
    """Rotating about z by α: f(R⁻¹x) = f(θ, φ − α), evaluated directly from the basis."""
    from sphcnn.spectral import rot_z

    L = 6
    c = random_coefficients(L, generator=gen)
    alpha = torch.tensor(0.7, dtype=torch.float64)
    theta = torch.rand(30, generator=gen, dtype=torch.float64) * torch.pi
    phi = torch.rand(30, generator=gen, dtype=torch.float64) * 2 * torch.pi
    lhs = real_sph_harm(L, theta, phi) @ rotate_sh(c, rot_z(alpha))
    rhs = real_sph_harm(L, theta, phi - alpha) @ c
    assert torch.allclose(lhs, rhs, atol=1e-13)


def test_complex_conversion_matches_scipy(gen):
    import numpy as np
    from scipy.special import sph_harm_y

    L = 6
    c = random_coefficients(L, generator=gen)
    a = real_to_complex_coeffs(c)
    theta = np.linspace(0.1, 3.0, 17)
    phi = np.linspace(0.0, 6.0, 17)
    Yc = np.stack([sph_harm_y(ell, m, theta, phi) for ell in range(L) for m in range(-ell, ell + 1)], -1)
    f_complex = Yc @ a.numpy()
    f_real = (real_sph_harm(L, torch.tensor(theta), torch.tensor(phi)) @ c).numpy()
    np.testing.assert_allclose(f_complex.real, f_real, atol=1e-13)
    np.testing.assert_allclose(f_complex.imag, 0, atol=1e-13)
    assert torch.allclose(complex_to_real_coeffs(a), c, atol=1e-14)


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
def test_e3nn_conversion(normalization, gen):
    from e3nn import o3

    L = 6
    c = random_coefficients(L, generator=gen)
    x = torch.randn(100, 3, generator=gen, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    Ye = o3.spherical_harmonics(list(range(L)), x, normalize=True, normalization=normalization)
    c_e = sh_to_e3nn(c, normalization)
    assert torch.allclose(Ye @ c_e, evaluate_sh(c, x), atol=1e-12)
    assert torch.allclose(e3nn_to_sh(c_e, normalization), c, atol=1e-13)
    with pytest.raises(ValueError, match="normalization must be one of"):
        sh_to_e3nn(c, "orthonormal")


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 3\]"):
        wigner_D(4, torch.eye(4))
    with pytest.raises(ValueError, match="perfect square"):
        rotate_sh(torch.zeros(10), torch.eye(3))
