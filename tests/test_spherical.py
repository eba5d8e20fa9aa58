"""Spherical layers and models: semantics of the correlations, equivariance with independently rotated inputs."""

import pytest
import torch

from sphcnn.models.spherical import S2CNN, DeepS2CNN
from sphcnn.nn.spherical import (
    DegreeLinear,
    NormActivation,
    S2Activation,
    S2Convolution,
    S2Integrate,
    S2ZonalConvolution,
    SO3Activation,
    SO3Convolution,
    SO3Integrate,
    SpectralBatchNorm,
    Truncate,
)
from sphcnn.spectral import S2Grid, SO3Grid, num_so3_coeffs, random_rotation, rotate_sh, s2_correlation, sht, wigner_D
from sphcnn.spectral.testing import evaluate_sh, evaluate_so3, random_coefficients, relative_error, rotated_signal_pair


def so3_rotate(F, Q):
    """Coefficients of f(Q⁻¹R) from those of f: each block F^ℓ ↦ D^ℓ(Q) F^ℓ (built from wigner_D)."""
    L = int(round((F.shape[-1] * 3 / 4) ** (1 / 3))) + 1
    while num_so3_coeffs(L) > F.shape[-1]:
        L -= 1
    D = wigner_D(L, Q)
    out = []
    for ell in range(L):
        n, off = 2 * ell + 1, num_so3_coeffs(ell)
        block = F[..., off: off + n * n].unflatten(-1, (n, n))
        out.append((D[ell * ell: (ell + 1) ** 2, ell * ell: (ell + 1) ** 2] @ block).flatten(-2))
    return torch.cat(out, -1)


def test_s2_convolution_with_localized_kernel_is_sum_over_kernel_points(gen):
    """[ψ ⋆ f](R) = Σ_i Σ_k w_ik f_i(R x_k) for ψ_i = Σ_k w_ik δ_{x_k}, f band-limited to L_out."""
    L = 6
    grid = S2Grid(L, "gl")
    conv = S2Convolution(2, 3, grid, L, bias=False, dtype=torch.float64)
    c = random_coefficients(L, 1, 2, generator=gen)
    x = evaluate_sh(c, grid.points())
    out = conv(x)
    R = random_rotation(3, generator=gen)
    pts = conv.kernel_points  # [K, 3]
    direct = torch.einsum("iok,ikr->or", conv.weight.detach(),
                          torch.stack([evaluate_sh(c[0, i], (R @ pts.T).transpose(-1, -2)).T for i in range(2)]))
    assert relative_error(evaluate_so3(out[0], R), direct) < 1e-11
    # and it is s2_correlation summed over input channels
    psi = conv.filter_coefficients()
    expected = sum(s2_correlation(sht(x[:, i], grid), psi[i].unsqueeze(0).expand(1, 3, L * L).transpose(0, 1))
                   .transpose(0, 1) for i in range(2))
    assert relative_error(out.detach(), expected.detach()) < 1e-12


def test_so3_convolution_with_localized_kernel(gen):
    """[ψ ⋆ f](R) = Σ_k w_k f(R R_k) for ψ = Σ_k w_k δ_{R_k}."""
    L = 4
    conv = SO3Convolution(1, 2, L, L, bias=False, dtype=torch.float64)
    F = torch.randn(1, 1, num_so3_coeffs(L), generator=gen, dtype=torch.float64)
    out = conv(F)
    R = random_rotation(3, generator=gen)
    Rk = conv.kernel_rotations
    values = evaluate_so3(F[0, 0], R[:, None] @ Rk[None])  # [3, K]
    direct = torch.einsum("ok,rk->or", conv.weight.detach()[0], values)
    assert relative_error(evaluate_so3(out[0], R), direct.detach()) < 1e-11


@pytest.mark.parametrize("kernel", ["localized", "spectral"])
def test_s2_convolution_is_equivariant(kernel, gen):
    grid = S2Grid(8, "dh")
    conv = S2Convolution(1, 3, grid, 6, kernel=kernel, dtype=torch.float64)
    f, f_rot, _, Q = rotated_signal_pair(8, grid, None, 1, generator=gen)
    with torch.no_grad():
        assert relative_error(conv(f_rot.unsqueeze(1)), so3_rotate(conv(f.unsqueeze(1)), Q)) < 1e-11


@pytest.mark.parametrize("kernel", ["localized", "spectral"])
def test_so3_layers_are_equivariant(kernel, gen):
    L = 5
    F = torch.randn(2, 3, num_so3_coeffs(L), generator=gen, dtype=torch.float64)
    Q = random_rotation(generator=gen)
    layers = [SO3Convolution(3, 4, L, 4, kernel=kernel, dtype=torch.float64),
              DegreeLinear(3, 2, L, "so3", dtype=torch.float64), NormActivation(3, L),
              SpectralBatchNorm(3, L).double(), Truncate(L, 3)]
    with torch.no_grad():
        for layer in layers:
            assert relative_error(layer(so3_rotate(F, Q)), so3_rotate(layer(F), Q)) < 1e-11, layer


def test_s2_layers_are_equivariant(gen):
    L = 6
    c = random_coefficients(L, 2, 3, generator=gen)
    Q = random_rotation(generator=gen)
    layers = [S2ZonalConvolution(3, 2, L, 5, n_anchors=3, dtype=torch.float64),
              DegreeLinear(3, 2, L, "s2", dtype=torch.float64), NormActivation(3, L, "s2"),
              SpectralBatchNorm(3, L, "s2").double()]
    with torch.no_grad():
        for layer in layers:
            out = layer(c)
            L_out = int(round(out.shape[-1] ** 0.5))
            assert relative_error(layer(rotate_sh(c, Q)), rotate_sh(out, Q)) < 1e-11, layer
            assert L_out <= L


def test_pointwise_activations_match_grid_evaluation(gen):
    """S2Activation = sht(σ(isht(c))) on its grid; with σ = identity it is exact truncation."""
    c = random_coefficients(5, 1, 2, generator=gen)
    act = S2Activation(5, 3, torch.nn.Identity(), dtype=torch.float64)
    assert relative_error(act(c), c[..., :9]) < 1e-12
    F = torch.randn(1, 2, num_so3_coeffs(4), generator=gen, dtype=torch.float64)
    so3_act = SO3Activation(4, 2, torch.nn.Identity(), oversampling=1.5, dtype=torch.float64)
    assert relative_error(so3_act(F), F[..., : num_so3_coeffs(2)]) < 1e-12
    relu = SO3Activation(4, 1, oversampling=2, dtype=torch.float64)
    grid = relu.grid
    values = evaluate_so3(F[0], grid.matrices())
    assert relative_error(relu(F)[0, :, 0], (grid.weights * values.clamp_min(0)).sum((-1, -2, -3))) < 1e-12


@pytest.mark.parametrize("kind", ["soft", "gl"])
@pytest.mark.parametrize("L_in, L_out", [(4, 3), (3, 4)])
def test_relu_activation_runs_in_batch_chunks_as_on_whole_grids(kind, L_in, L_out, gen, monkeypatch):
    """With nn.ReLU, SO3Activation maps between the FFTs' spectra in batch chunks (here one signal each):
    values and gradients as σ on samples evaluated independently (evaluate_so3), second derivatives by gradgradcheck."""
    from sphcnn.spectral import _grid_relu, so3_fft

    monkeypatch.setattr(_grid_relu, "CHUNK_BYTES", 1)
    calls = []
    chunked = _grid_relu._GridReLU.apply
    monkeypatch.setattr(_grid_relu._GridReLU, "apply", lambda *args: calls.append(args) or chunked(*args))
    act = SO3Activation(L_in, L_out, grid_kind=kind, dtype=torch.float64)
    F = torch.randn(2, 3, num_so3_coeffs(L_in), generator=gen, dtype=torch.float64, requires_grad=True)
    out = act(F)
    assert calls, "the chunked path did not run"
    reference = so3_fft(evaluate_so3(F, act.grid.matrices()).clamp_min(0), act.grid, L=L_out)
    assert relative_error(out, reference) < 1e-12
    weight = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * weight).sum(), F)
    (expected,) = torch.autograd.grad((reference * weight).sum(), F)
    assert relative_error(grad, expected) < 1e-12
    assert torch.autograd.gradcheck(act, (F[:1, :2],)) and torch.autograd.gradgradcheck(act, (F[:1, :2],))


def test_relu_between_rejects_mismatched_transforms():
    from sphcnn.spectral import InverseSO3FFT, SO3FFT
    from sphcnn.spectral._grid_relu import relu_between
    from sphcnn.spectral._workspace import Workspace

    inverse, forward = InverseSO3FFT(SO3Grid(4, "gl")), SO3FFT(SO3Grid(4, "soft"))
    with pytest.raises(ValueError, match="one SO3Grid"):
        relu_between(torch.zeros(2, num_so3_coeffs(4)), inverse, forward, Workspace())
    forward = SO3FFT(SO3Grid(4, "gl"), L=1)
    with pytest.raises(ValueError, match=r"from_grid.L >= 2"):
        relu_between(torch.zeros(2, num_so3_coeffs(4)), inverse, forward, Workspace())
    with pytest.raises(ValueError, match=r"B >= 2"):
        relu_between(torch.zeros(1, num_so3_coeffs(4)), inverse, SO3FFT(SO3Grid(4, "gl")), Workspace())


def test_batch_norm_statistics_and_state_dict(gen):
    """Normalized signals have zero mean and unit variance over batch and domain (checked on the grid)."""
    L = 4
    bn = SpectralBatchNorm(2, L, affine=False).double()
    F = torch.randn(8, 2, num_so3_coeffs(L), generator=gen, dtype=torch.float64) + 3
    grid = SO3Grid(L, "gl")
    from sphcnn.spectral import so3_ifft

    values = so3_ifft(bn(F), grid)  # [8, 2, grid]
    w = grid.weights
    mean = (values * w).sum((-1, -2, -3)).mean(0)
    var = ((values - mean[:, None, None, None]) ** 2 * w).sum((-1, -2, -3)).mean(0)
    assert torch.allclose(mean, torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(var, torch.ones(2, dtype=torch.float64), rtol=1e-4)
    keys_train = set(bn.state_dict())
    bn.eval()
    assert set(bn.state_dict()) == keys_train


def test_readouts(gen):
    F = torch.randn(2, 3, num_so3_coeffs(3), generator=gen)
    assert torch.equal(SO3Integrate()(F), F[..., 0])
    c = random_coefficients(3, 2, 3, generator=gen)
    grid = S2Grid(3, "gl")
    from sphcnn.spectral import isht

    assert torch.allclose(S2Integrate()(c), (isht(c, grid) * grid.weights).sum((-1, -2)), atol=1e-12)


def test_s2cnn_layout_and_parameter_count():
    from sphcnn.models import count_parameters

    model = S2CNN(feature_norm=False)
    assert count_parameters(model) == 154_550  # s2cnn "original" with its 24 + 192 point kernel grids
    assert model(torch.randn(2, 1, 60, 60)).shape == (2, 10)
    assert count_parameters(S2CNN()) == 154_550 + 2 * 40  # default: BatchNorm1d on the invariant features


@pytest.mark.parametrize("activation,oversampling", [("silu", 8), pytest.param("relu", 10, marks=pytest.mark.slow)])
def test_network_is_invariant_to_rotations(activation, oversampling, gen):
    """S² input rotated independently (f evaluated at Q⁻¹x) → invariant logits to < 1e-5 (float64)."""
    grid = S2Grid(30, "dh")
    f, f_rot, _, _ = rotated_signal_pair(10, grid, None, 1, generator=gen)
    torch.manual_seed(0)
    model = S2CNN(channels=(3, 3), oversampling=oversampling, activation=activation).double().eval()
    with torch.no_grad():
        assert relative_error(model(f_rot.unsqueeze(1)), model(f.unsqueeze(1))) < 1e-5


def test_deep_model_is_nearly_invariant(gen):
    grid = S2Grid(30, "dh")
    f, f_rot, _, _ = rotated_signal_pair(8, grid, None, 2, generator=gen)
    torch.manual_seed(0)
    model = DeepS2CNN(channels=(4, 6), bandlimits=(6, 4), oversampling=3, activation="silu").double().eval()
    with torch.no_grad():
        assert relative_error(model(f_rot.unsqueeze(1)), model(f.unsqueeze(1))) < 1e-3


def test_gradcheck_layers(gen):
    torch.manual_seed(0)
    grid = S2Grid(3, "gl")
    x = torch.randn(1, 1, *grid.shape, dtype=torch.float64, requires_grad=True)
    F = torch.randn(1, 2, num_so3_coeffs(3), dtype=torch.float64, requires_grad=True)
    c = torch.randn(1, 2, 9, dtype=torch.float64, requires_grad=True)
    checks = [
        (S2Convolution(1, 2, grid, 3, dtype=torch.float64), x),
        (S2Convolution(1, 2, grid, 2, kernel="spectral", dtype=torch.float64), x),
        (SO3Convolution(2, 2, 3, 2, dtype=torch.float64), F),
        (SO3Activation(3, 2, torch.nn.Softplus(), dtype=torch.float64), F),
        (S2Activation(3, 2, torch.nn.Softplus(), dtype=torch.float64), c),
        (S2ZonalConvolution(2, 1, 3, 3, dtype=torch.float64), c),
        (NormActivation(2, 3), F),
        (SpectralBatchNorm(2, 3).double(), torch.randn(3, 2, num_so3_coeffs(3), dtype=torch.float64, requires_grad=True)),
    ]
    for layer, inp in checks:
        assert torch.autograd.gradcheck(layer, (inp,)), layer


def test_bad_inputs():
    grid = S2Grid(4)
    conv = S2Convolution(2, 3, grid, 3)
    with pytest.raises(ValueError, match=r"\[batch, 2, \*\(8, 8\)\]"):
        conv(torch.zeros(1, 3, 8, 8))
    so3 = SO3Convolution(3, 4, 3, 2)
    with pytest.raises(ValueError, match=r"\[batch, 3, 35\]"):
        so3(torch.zeros(1, 3, 10))
    with pytest.raises(ValueError, match="L_out <= L_in"):
        SO3Convolution(1, 1, 3, 4)
    with pytest.raises(ValueError, match="kernel must be one of"):
        S2Convolution(1, 1, grid, 3, kernel="gaussian")
    with pytest.raises(ValueError, match="activation must be one of"):
        S2CNN(activation="gelu")
    with pytest.raises(ValueError, match="bandlimits must not increase"):
        DeepS2CNN(bandlimits=(4, 6, 8))
