"""Planar convolution over filter bases, circulant matrices, planar baseline models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sphcnn.models.blueprint import count_parameters
from sphcnn.models.planar import PlanarCNN, ResidualPlanarCNN
from sphcnn.nn.planar import (
    BasisConv2d,
    circulant_matrix,
    directional_derivative_basis,
    random_shift_flip,
    unit_peak_basis,
)

TOL = 1e-12


def periodic_correlation(x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    """Conv2d cross-correlation of [H, W] x with periodic padding, anchor ((kh-1)//2, (kw-1)//2)."""
    kh, kw = filt.shape
    a0, b0 = (kh - 1) // 2, (kw - 1) // 2
    padded = F.pad(x[None, None], (b0, kw - 1 - b0, a0, kh - 1 - a0), mode="circular")
    return F.conv2d(padded, filt[None, None])[0, 0]


@pytest.mark.parametrize("kernel, size", [((3, 3), (6, 7)), ((5, 2), (8, 5)), ((4, 4), (5, 6))])
def test_circulant_matrix_is_periodic_convolution(kernel, size):
    torch.manual_seed(0)
    filt = torch.randn(*kernel, dtype=torch.float64)
    x = torch.randn(*size, dtype=torch.float64)
    c = circulant_matrix(filt, *size)
    assert (c @ x.reshape(-1)).reshape(size).sub(periodic_correlation(x, filt)).abs().max() < TOL


def test_circulant_matrix_is_doubly_block_circulant_sum_of_shifts():
    torch.manual_seed(1)
    h, w = 5, 4
    filt = torch.randn(3, 3, dtype=torch.float64)
    c = circulant_matrix(filt, h, w).reshape(h, w, h, w)
    for i in range(h):
        for k in range(h):
            block = c[i, :, k, :]
            assert torch.equal(block, c[0, :, (k - i) % h, :])  # block circulant
            for j in range(w):
                assert torch.equal(block[j], torch.roll(block[0], j))  # each block circulant
    # C(θ) = Σ θ_ab C(δ_ab), and every C(δ_ab) is a permutation (a shift).
    total = torch.zeros(h * w, h * w, dtype=torch.float64)
    for n, peak in enumerate(unit_peak_basis(3, torch.float64)):
        shift = circulant_matrix(peak, h, w)
        assert torch.equal(shift.sum(0), torch.ones(h * w, dtype=torch.float64))
        assert torch.equal(shift.sum(1), torch.ones(h * w, dtype=torch.float64))
        total += filt.reshape(-1)[n] * shift
    assert (total - c.reshape(h * w, h * w)).abs().max() < TOL


def test_unit_peak_layer_equals_conv2d():
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 5, (3, 4), stride=2, padding=1).double()
    torch.manual_seed(2)
    layer = BasisConv2d(3, 5, (3, 4), basis="unit_peaks", stride=2, padding=1).double()
    assert torch.equal(layer.weight, conv.weight) and torch.equal(layer.bias, conv.bias)  # same init
    x = torch.randn(2, 3, 11, 9, dtype=torch.float64)
    assert (layer(x) - conv(x)).abs().max() < TOL
    assert count_parameters(layer) == count_parameters(conv)


@pytest.mark.parametrize("kernel", [3, 5, (2, 3)])
def test_bases_span_the_same_space(kernel):
    peaks = unit_peak_basis(kernel, torch.float64).flatten(1)
    derivs = directional_derivative_basis(kernel, torch.float64).flatten(1)
    n = peaks.shape[1]
    assert peaks.shape == derivs.shape == (n, n)
    assert torch.linalg.matrix_rank(derivs) == n
    assert torch.linalg.matrix_rank(torch.cat([peaks, derivs])) == n
    # The differences are zero-sum (they see no constant); the average is what adds the constant.
    assert derivs[1:].sum(1).abs().max() < TOL and abs(derivs[0].sum() - 1) < TOL
    # Any conv is reproduced by the derivative basis.
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, kernel, padding=1).double()
    layer = BasisConv2d(2, 3, kernel, basis="directional_derivatives", padding=1).double()
    layer.set_filters(conv.weight)
    layer.bias.data.copy_(conv.bias)
    x = torch.randn(2, 2, 7, 8, dtype=torch.float64)
    assert (layer(x) - conv(x)).abs().max() < TOL


def test_derivative_layer_has_conv2d_init_and_generators_are_differences():
    torch.manual_seed(4)
    conv = nn.Conv2d(2, 3, 3)
    torch.manual_seed(4)
    layer = BasisConv2d(2, 3, 3, basis="directional_derivatives")
    assert (layer.weight - conv.weight).abs().max() < 1e-6
    g = directional_derivative_basis(3)
    assert torch.allclose(g[0], torch.full((3, 3), 1 / 9))
    assert g[1][1, 1] == 1 and g[1][0, 0] == -1 and g[1].abs().sum() == 2  # δ(u) − δ(u − (−1, −1))


def test_circular_padding_layer_is_the_circulant_matrix():
    torch.manual_seed(5)
    layer = BasisConv2d(1, 1, 3, basis="directional_derivatives", padding=1, padding_mode="circular", bias=False)
    layer = layer.double()
    x = torch.randn(6, 6, dtype=torch.float64)
    c = circulant_matrix(layer.weight[0, 0].detach(), 6, 6)
    assert (layer(x[None, None])[0, 0].reshape(-1) - c @ x.reshape(-1)).abs().max() < TOL


def test_bad_options_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="basis must be one of"):
        BasisConv2d(1, 1, 3, basis="wavelets")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        BasisConv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"):
        BasisConv2d(2, 1, 3)(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="filters must have shape"):
        BasisConv2d(2, 1, 3).set_filters(torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"\[H_f, W_f\]"):
        circulant_matrix(torch.randn(3), 4, 4)
    with pytest.raises(ValueError, match="too small"):
        PlanarCNN(image_size=12)


def test_planar_cnn_is_the_s2cnn_baseline():
    model = PlanarCNN()
    assert count_parameters(model) == 68_106
    ref = nn.Sequential(
        nn.Conv2d(1, 32, 5, stride=3), nn.ReLU(), nn.Conv2d(32, 64, 5, stride=3), nn.ReLU(),
        nn.Flatten(), nn.Linear(1600, 10),
    )
    with torch.no_grad():
        ref[0].weight.copy_(model.blocks[0].linear.weight); ref[0].bias.copy_(model.blocks[0].linear.bias)
        ref[2].weight.copy_(model.blocks[1].linear.weight); ref[2].bias.copy_(model.blocks[1].linear.bias)
        ref[5].load_state_dict(model.head.state_dict())
    x = torch.randn(3, 1, 60, 60)
    out = model(x)
    assert out.shape == (3, 10)
    assert (out - ref(x)).abs().max() < 1e-5
    assert count_parameters(PlanarCNN(basis="directional_derivatives")) == 68_106


def test_residual_planar_cnn_trains():
    torch.manual_seed(6)
    model = ResidualPlanarCNN(channels=(8, 16), blocks_per_stage=2)
    x = torch.randn(16, 1, 60, 60)
    y = torch.randint(0, 10, (16,))
    assert model(x).shape == (16, 10)
    assert sum(b.residual for b in model.blocks) == 4
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    assert loss.item() < 0.5 * first


def test_random_shift_flip_moves_images():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    gen = torch.Generator().manual_seed(0)
    out = random_shift_flip(x, max_shift=2, flip=True, generator=gen)
    gen = torch.Generator().manual_seed(0)
    shifts = torch.randint(-2, 3, (2, 2), generator=gen)
    flips = torch.rand(2, generator=gen) < 0.5
    for k in range(2):
        s0, s1 = shifts[k].tolist()
        expected = torch.zeros(6, 6)
        for i in range(6):
            for j in range(6):
                if 0 <= i - s0 < 6 and 0 <= j - s1 < 6:
                    expected[i, j] = x[k, 0, i - s0, j - s1]
        if flips[k]:
            expected = expected.flip(-1)
        assert torch.equal(out[k, 0], expected)
    assert torch.equal(random_shift_flip(x, max_shift=0), x)
