"""Group convolution on Z^d ⋊ H: equivariance from the definition, errors, invariant models.

The transformed inputs and outputs are built here, independently of the
library: a grid signal is moved by evaluating it at h⁻¹t in centred
coordinates (numpy, matrix inverse), the H axis by looking up h⁻¹h' among
the matrices, channels by explicit index lists, and p4 cases by torch.rot90.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sphcnn.models.blueprint import count_parameters
from sphcnn.models.group import CNN1d, GroupCNN, OhCNN3d, RCEquivariantCNN1d, cnn1d_matching_parameters
from sphcnn.nn.group import (
    GlobalPool,
    GroupBatchNorm,
    GroupConv,
    GroupPool,
    GroupSpatialPool,
    LiftingConv,
    SignedPermutationGroup,
    make_group,
    signed_permutation_matrices,
)

TOL = 1e-12


# ---- reference actions, written from the definitions -------------------------------------------


def move_grid(x: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """(h·x)(t) = x(h⁻¹ t) on the last d axes, t in coordinates centred on the grid."""
    d = matrix.shape[0]
    sizes = x.shape[-d:]
    assert len(set(sizes)) == 1, "test grids are cubes"
    centre = (sizes[0] - 1) / 2
    t = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=0).reshape(d, -1)
    source = np.linalg.inv(matrix) @ (t - centre) + centre
    source = np.rint(source).astype(np.int64)
    out = x[(..., *[torch.as_tensor(source[k]) for k in range(d)])]
    return out.reshape(*x.shape[:-d], *sizes)


def element_index(matrices: np.ndarray, matrix: np.ndarray) -> int:
    hits = [i for i, m in enumerate(matrices) if np.array_equal(m, matrix)]
    assert len(hits) == 1
    return hits[0]


def move_group_signal(y: torch.Tensor, matrices: np.ndarray, g: int) -> torch.Tensor:
    """(g·F)(h', t) = F(g⁻¹h', g⁻¹t) for F of shape [B, C, |H|, *spatial]."""
    g_inv = np.rint(np.linalg.inv(matrices[g])).astype(np.int64)
    source = [element_index(matrices, g_inv @ m) for m in matrices]
    return move_grid(y[:, :, source], matrices[g])


def check_lifting_and_group_equivariance(group, in_channels, size, channel_perm=None, kernel=3, padding=1):
    torch.manual_seed(0)
    d = group.dim
    lift = LiftingConv(group, in_channels, 3, kernel, padding=padding, channel_permutation=channel_perm).double()
    conv = GroupConv(group, 3, 2, kernel, padding=padding).double()
    x = torch.randn(2, in_channels, *(size,) * d, dtype=torch.float64)
    y = lift(x)
    z = conv(y)
    worst = 0.0
    for g in range(group.order):
        gx = move_grid(x, group.matrices[g])
        if channel_perm is not None:
            gx = gx[:, list(channel_perm[g])]
        worst = max(worst, (lift(gx) - move_group_signal(y, group.matrices, g)).abs().max().item())
        gy = move_group_signal(y, group.matrices, g)
        worst = max(worst, (conv(gy) - move_group_signal(z, group.matrices, g)).abs().max().item())
    assert z.abs().max() > 0.1  # not trivially zero
    return worst


# ---- the groups ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, order, dim", [("p4", 4, 2), ("p4m", 8, 2), ("rc", 2, 1), ("O", 24, 3), ("Oh", 48, 3)])
def test_named_groups_have_expected_orders_and_are_closed(name, order, dim):
    g = make_group(name)
    assert (g.order, g.dim) == (order, dim)
    m = g.matrices
    assert np.array_equal(m[0], np.eye(dim))
    for i in range(order):
        assert np.array_equal(m[g.inverse[i]] @ m[i], np.eye(dim))
        for j in range(order):
            assert np.array_equal(m[g.cayley[i, j]], m[i] @ m[j])
    dets = np.rint(np.linalg.det(m))
    assert np.all(dets == 1) == (name in ("p4", "O"))


def test_act_on_grid_matches_reference_and_rot90():
    g = make_group("p4m")
    x = torch.randn(2, 3, 5, 5)
    for i in range(g.order):
        assert torch.equal(g.act_on_grid(x, i), move_grid(x, g.matrices[i]))
    # Rotation taking axis 0 to axis 1 is torch.rot90 on (rows, cols).
    r = element_index(g.matrices, np.array([[0, -1], [1, 0]]))
    assert torch.equal(g.act_on_grid(x, r), torch.rot90(x, 1, (-2, -1)))
    o = make_group("Oh")
    v = torch.randn(1, 4, 4, 4)
    for i in range(o.order):
        assert torch.equal(o.act_on_grid(v, i), move_grid(v, o.matrices[i]))


# ---- equivariance of the layers -------------------------------------------------------------------


@pytest.mark.parametrize("name, size", [("p4", 7), ("p4m", 6), ("O", 4), ("Oh", 4)])
def test_lifting_and_group_conv_are_equivariant(name, size):
    assert check_lifting_and_group_equivariance(make_group(name), 2, size) < TOL


def test_even_kernel_without_padding_is_equivariant():
    assert check_lifting_and_group_equivariance(make_group("p4m"), 2, 8, kernel=4, padding=0) < TOL


def test_reverse_complement_layers_are_equivariant():
    g = make_group("rc")
    perm = [[0, 1, 2, 3], [3, 2, 1, 0]]
    assert check_lifting_and_group_equivariance(g, 4, 11, channel_perm=perm, kernel=5, padding=2) < TOL
    # The same with the transform written out: reverse the sequence, swap A<->T, C<->G.
    torch.manual_seed(1)
    lift = LiftingConv("rc", 4, 3, 5, channel_permutation=perm).double()
    x = torch.randn(2, 4, 20, dtype=torch.float64)
    rc_x = torch.flip(x, (-1,))[:, [3, 2, 1, 0]]
    expected = torch.flip(lift(x), (-1,))[:, :, [1, 0]]
    assert (lift(rc_x) - expected).abs().max() < TOL


def test_lifting_is_transform_the_filter_then_convolve():
    torch.manual_seed(2)
    lift = LiftingConv("p4", 2, 3, 3, padding=1).double()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    g = lift.group
    out = lift(x)
    for k in range(4):
        i = element_index(g.matrices, np.linalg.matrix_power(np.array([[0, -1], [1, 0]]), k))
        filt = torch.rot90(lift.weight, k, (-2, -1))
        ref = torch.nn.functional.conv2d(x, filt, lift.bias, padding=1)
        assert (out[:, :, i] - ref).abs().max() < TOL


def test_trivial_group_is_ordinary_convolution():
    trivial = SignedPermutationGroup(np.eye(3)[None])
    lift = LiftingConv(trivial, 2, 3, 3).double()
    x = torch.randn(1, 2, 5, 5, 5, dtype=torch.float64)
    ref = torch.nn.functional.conv3d(x, lift.weight, lift.bias)
    assert (lift(x)[:, :, 0] - ref).abs().max() < TOL


def test_translation_equivariance_in_the_interior():
    conv = GroupConv("p4", 2, 2, 3).double()
    x = torch.randn(1, 2, 4, 9, 9, dtype=torch.float64)
    shifted = torch.roll(x, (1, 2), (-2, -1))
    expected = torch.roll(conv(x), (1, 2), (-2, -1))
    assert (conv(shifted)[..., 3:, 3:] - expected[..., 3:, 3:]).abs().max() < TOL


def test_norm_pool_and_readout_respect_the_symmetry():
    g = make_group("p4m")
    x = torch.randn(3, 2, g.order, 6, 6, dtype=torch.float64)
    norm = GroupBatchNorm(2).double()
    with torch.no_grad():
        norm.norm.weight.uniform_(0.5, 2.0)
        norm.norm.bias.uniform_(-1, 1)
    pool = GroupSpatialPool(2, 2)
    invariant = torch.nn.Sequential(GroupPool("max"), GlobalPool("mean"))
    for i in range(g.order):
        gx = move_group_signal(x, g.matrices, i)
        for mode in (True, False):
            norm.train(mode)
            assert (norm(gx) - move_group_signal(norm(x), g.matrices, i)).abs().max() < TOL
        assert (pool(gx) - move_group_signal(pool(x), g.matrices, i)).abs().max() < TOL
        assert (invariant(gx) - invariant(x)).abs().max() < TOL


# ---- invariant models ------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_group_cnn_is_invariant_on_60x60_images(group):
    torch.manual_seed(3)
    model = GroupCNN(group=group, channels=(4, 4, 4)).double().eval()
    x = torch.randn(2, 1, 60, 60, dtype=torch.float64)
    out = model(x)
    assert out.shape == (2, 10)
    moved = [torch.rot90(x, k, (-2, -1)) for k in range(4)]
    if group == "p4m":
        moved += [torch.flip(m, (-1,)) for m in moved]
    for m in moved:
        assert (model(m) - out).abs().max() < TOL
    # A plain rotation of the input changes the output of a non-invariant layer, so the check can fail.
    lift = model.blocks[0].linear
    assert (lift(moved[1]) - lift(x)).abs().max() > 1e-3


def test_rc_model_is_invariant_and_matches_plain_parameters():
    torch.manual_seed(4)
    model = RCEquivariantCNN1d(channels=(6, 8), kernel_sizes=(7, 5)).double()
    x = torch.randn(3, 4, 30, dtype=torch.float64)
    rc_x = torch.flip(x, (-1,))[:, [3, 2, 1, 0]]
    assert (model(rc_x) - model(x)).abs().max() < TOL
    one_block = RCEquivariantCNN1d(channels=(16,), kernel_sizes=(9,))
    assert count_parameters(cnn1d_matching_parameters(one_block)) == count_parameters(one_block)
    plain = cnn1d_matching_parameters(model, channels=(6, 8), kernel_sizes=(7, 5))
    assert abs(count_parameters(plain) - count_parameters(model)) <= 0.02 * count_parameters(model)
    assert isinstance(plain, CNN1d)


@pytest.mark.parametrize("group", ["O", "Oh"])
def test_cube_cnn_is_invariant_under_every_element(group):
    torch.manual_seed(5)
    model = OhCNN3d(group=group, channels=(2, 2)).double().eval()
    x = torch.randn(2, 1, 6, 6, 6, dtype=torch.float64)
    out = model(x)
    for m in signed_permutation_matrices(3, proper_only=(group == "O")):
        assert (model(move_grid(x, m)) - out).abs().max() < TOL
    if group == "O":  # a reflection is not in O: the output may (and does) change
        assert (model(torch.flip(x, (-1,))) - out).abs().max() > 1e-6


# ---- bad input --------------------------------------------------------------------------------------


def test_not_a_group_is_rejected():
    rot = np.array([[0, -1], [1, 0]])
    with pytest.raises(ValueError, match="not closed"):
        SignedPermutationGroup([np.eye(2), rot])
    with pytest.raises(ValueError, match="identity"):
        SignedPermutationGroup([-np.eye(2)])
    with pytest.raises(ValueError, match="distinct"):
        SignedPermutationGroup([np.eye(2), np.eye(2)])
    with pytest.raises(ValueError, match="signed permutation"):
        SignedPermutationGroup([np.eye(2), np.array([[1, 1], [0, 1]])])
    with pytest.raises(ValueError, match="signed permutation"):
        SignedPermutationGroup([np.eye(2), 0.5 * np.eye(2)])
    with pytest.raises(ValueError, match=r"\[n, d, d\]"):
        SignedPermutationGroup(np.eye(2))
    with pytest.raises(ValueError, match="group must be one of"):
        make_group("p6")


def test_bad_channel_permutation_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        LiftingConv("rc", 4, 2, 3, channel_permutation=[[0, 1, 2], [2, 1, 0]])
    with pytest.raises(ValueError, match="not a permutation"):
        LiftingConv("rc", 4, 2, 3, channel_permutation=[[0, 1, 2, 3], [3, 3, 1, 0]])
    with pytest.raises(ValueError, match="not a group action"):
        # A 3-cycle on the channels for an element of order 2.
        LiftingConv("rc", 3, 2, 3, channel_permutation=[[0, 1, 2], [1, 2, 0]])
    with pytest.raises(ValueError, match="identity"):
        LiftingConv("rc", 2, 2, 3, channel_permutation=[[1, 0], [1, 0]])


def test_wrong_input_shapes_are_rejected():
    lift = LiftingConv("p4", 1, 2, 3)
    with pytest.raises(ValueError, match="spatial"):
        lift(torch.randn(1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="input channels"):
        lift(torch.randn(1, 2, 8, 8))
    conv = GroupConv("p4", 2, 2, 3)
    with pytest.raises(ValueError, match="spatial"):
        conv(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="4 group elements"):
        conv(torch.randn(1, 2, 8, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        GroupSpatialPool(2, 2)(torch.randn(1, 2, 4, 7, 7))
    with pytest.raises(ValueError, match="divisible"):
        GroupCNN(image_size=50)
    with pytest.raises(ValueError, match="group must be one of"):
        GroupCNN(group="Oh")
    with pytest.raises(ValueError, match="odd"):
        OhCNN3d(kernel_sizes=(3, 4))
