"""Group-equivariant CNNs on Z^d ⋊ H, assembled by the blueprint.

Every model here is ``Blueprint([lifting block, group blocks...], readout, head)``
with the blocks of :mod:`sphcnn.nn.group`; the readout pools over H and then
over space, so the logits are invariant to H (and, up to the border, to
translations).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from torch import nn

from sphcnn.models.blueprint import Block, Blueprint, count_parameters
from sphcnn.nn.group import (
    GlobalPool,
    GroupBatchNorm,
    GroupConv,
    GroupPool,
    GroupSpatialPool,
    LiftingConv,
    Reduction,
    SignedPermutationGroup,
    make_group,
)
from sphcnn.spectral._options import check_option

PlaneGroup = Literal["p4", "p4m"]
CubeGroup = Literal["O", "Oh"]

# ACGT one-hot: the complement swaps A↔T and C↔G.
DNA_COMPLEMENT = (3, 2, 1, 0)


def _check_stages(channels: Sequence[int], kernel_sizes: Sequence[int], pool_sizes: Sequence[int]) -> None:
    if not (len(channels) == len(kernel_sizes) == len(pool_sizes)) or len(channels) == 0:
        raise ValueError(
            "channels, kernel_sizes and pool_sizes need one entry per block and at least one block, got "
            f"{len(channels)}, {len(kernel_sizes)}, {len(pool_sizes)}"
        )
    if any(k % 2 == 0 or k < 1 for k in kernel_sizes):
        raise ValueError(f"kernel sizes must be odd (same-size padding keeps the grid centre), got {list(kernel_sizes)}")
    if any(p < 1 for p in pool_sizes):
        raise ValueError(f"pool sizes must be >= 1, got {list(pool_sizes)}")


def group_blocks(
    group: SignedPermutationGroup,
    in_channels: int,
    channels: Sequence[int],
    kernel_sizes: Sequence[int],
    pool_sizes: Sequence[int],
    channel_permutation=None,
    norm: bool = True,
    residual: bool = False,
) -> list[Block]:
    """A lifting block then group blocks: conv (same size) → [norm] → ReLU → [residual] → spatial pool."""
    _check_stages(channels, kernel_sizes, pool_sizes)
    blocks = []
    previous = in_channels
    for i, (c, k, p) in enumerate(zip(channels, kernel_sizes, pool_sizes)):
        if i == 0:
            linear = LiftingConv(group, previous, c, k, padding=k // 2, channel_permutation=channel_permutation)
        else:
            linear = GroupConv(group, previous, c, k, padding=k // 2)
        blocks.append(
            Block(
                linear,
                nonlinearity=nn.ReLU(),
                norm=GroupBatchNorm(c) if norm else None,
                pool=GroupSpatialPool(group.dim, p) if p > 1 else None,
                residual=residual and i > 0 and previous == c,
            )
        )
        previous = c
    return blocks


def group_readout(group_reduction: Reduction = "max", space_reduction: Reduction = "mean") -> nn.Module:
    """Invariant readout: pool over H, then over the grid."""
    return nn.Sequential(GroupPool(group_reduction), GlobalPool(space_reduction))


class GroupCNN(Blueprint):
    """p4 / p4m CNN for ``[B, C, N, N]`` images (default: spherical MNIST's 60 × 60 projection).

    Lifting 5×5 then group 3×3 layers, batch norm shared over H, max pooling
    2, 2, 3 (60 → 30 → 15 → 5), max over H, mean over space, linear head.
    The logits are exactly invariant to the 4 (p4) or 8 (p4m) rotations /
    reflections of the image about its centre.
    """

    def __init__(
        self,
        group: PlaneGroup = "p4",
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 60,
        channels: Sequence[int] = (8, 16, 16),
        kernel_sizes: Sequence[int] = (5, 3, 3),
        pool_sizes: Sequence[int] = (2, 2, 3),
        norm: bool = True,
        residual: bool = False,
        space_reduction: Reduction = "mean",
    ) -> None:
        check_option("group", group, PlaneGroup)
        total_pool = int(np.prod(pool_sizes))
        if image_size % total_pool:
            raise ValueError(f"image_size {image_size} must be divisible by the product of pool_sizes ({total_pool})")
        self.image_size = image_size
        h = make_group(group)
        blocks = group_blocks(h, in_channels, channels, kernel_sizes, pool_sizes, norm=norm, residual=residual)
        readout = group_readout("max", space_reduction)
        super().__init__(blocks, readout, nn.Linear(channels[-1], num_classes))


class RCEquivariantCNN1d(Blueprint):
    """Reverse-complement invariant 1-D CNN for one-hot sequences ``[B, 4, length]`` (ACGT order).

    The group Z ⋊ Z₂ reverses the sequence and swaps A↔T, C↔G. Readout: max
    over both strands and over positions (a motif detector), linear head.
    With one block it has exactly the parameters of ``CNN1d`` of the same
    width: each filter is used on both strands.
    """

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 2,
        channels: Sequence[int] = (16,),
        kernel_sizes: Sequence[int] = (9,),
        pool_sizes: Sequence[int] | None = None,
        channel_permutation: Sequence[int] | None = None,
        norm: bool = False,
    ) -> None:
        if channel_permutation is None:
            if in_channels != 4:
                raise ValueError(f"give the complement channel_permutation for {in_channels} input channels")
            channel_permutation = DNA_COMPLEMENT
        pool_sizes = pool_sizes if pool_sizes is not None else (1,) * len(channels)
        # Element 0 is the identity, element 1 the reversal (make_group puts the identity first).
        perm = [list(range(in_channels)), list(channel_permutation)]
        blocks = group_blocks(make_group("rc"), in_channels, channels, kernel_sizes, pool_sizes, perm, norm)
        super().__init__(blocks, group_readout("max", "max"), nn.Linear(channels[-1], num_classes))


class CNN1d(Blueprint):
    """Plain 1-D CNN baseline: conv (same size) → ReLU → [max pool], global max, linear head."""

    def __init__(
        self,
        in_channels: int = 4,
        num_classes: int = 2,
        channels: Sequence[int] = (16,),
        kernel_sizes: Sequence[int] = (9,),
        pool_sizes: Sequence[int] | None = None,
        norm: bool = False,
    ) -> None:
        pool_sizes = pool_sizes if pool_sizes is not None else (1,) * len(channels)
        _check_stages(channels, kernel_sizes, pool_sizes)
        blocks, previous = [], in_channels
        for c, k, p in zip(channels, kernel_sizes, pool_sizes):
            blocks.append(
                Block(
                    nn.Conv1d(previous, c, k, padding=k // 2),
                    nonlinearity=nn.ReLU(),
                    norm=nn.BatchNorm1d(c) if norm else None,
                    pool=nn.MaxPool1d(p) if p > 1 else None,
                )
            )
            previous = c
        super().__init__(blocks, GlobalPool("max"), nn.Linear(channels[-1], num_classes))
        self.config = dict(in_channels=in_channels, num_classes=num_classes, channels=tuple(channels),
                           kernel_sizes=tuple(kernel_sizes), pool_sizes=tuple(pool_sizes), norm=norm)


def cnn1d_matching_parameters(
    target: nn.Module,
    in_channels: int = 4,
    num_classes: int = 2,
    channels: Sequence[int] = (16,),
    kernel_sizes: Sequence[int] = (9,),
    pool_sizes: Sequence[int] | None = None,
    norm: bool = False,
) -> CNN1d:
    """A ``CNN1d`` whose parameter count is as close as possible to ``target``'s.

    The first width is kept (a lifting layer has the parameters of a plain
    conv); later widths are scaled by one common factor. With one block the
    match is exact.
    """
    goal = count_parameters(target)
    best, best_gap = None, None
    for factor in np.arange(1.0, 4.0, 0.01):
        widths = [channels[0]] + [max(1, round(c * factor)) for c in channels[1:]]
        model = CNN1d(in_channels, num_classes, widths, kernel_sizes, pool_sizes, norm)
        gap = abs(count_parameters(model) - goal)
        if best_gap is None or gap < best_gap:
            best, best_gap = model, gap
        if len(channels) == 1 or gap == 0:
            break
    return best


class OhCNN3d(Blueprint):
    """Cube-symmetric 3-D CNN for volumes ``[B, C, N, N, N]``, O (24 rotations) or Oh (48, with reflections).

    Default: lifting 5³ → group 1³ (mixing the |H| orientations), batch norm
    shared over H, max over H and over space (a shape detector). The logits
    are exactly invariant to the 24 / 48 symmetries of the cube grid about
    its centre.
    """

    def __init__(
        self,
        group: CubeGroup = "Oh",
        in_channels: int = 1,
        num_classes: int = 2,
        channels: Sequence[int] = (6, 6),
        kernel_sizes: Sequence[int] = (5, 1),
        pool_sizes: Sequence[int] = (1, 1),
        norm: bool = True,
        space_reduction: Reduction = "max",
    ) -> None:
        check_option("group", group, CubeGroup)
        blocks = group_blocks(make_group(group), in_channels, channels, kernel_sizes, pool_sizes, norm=norm)
        readout = group_readout("max", space_reduction)
        super().__init__(blocks, readout, nn.Linear(channels[-1], num_classes))
