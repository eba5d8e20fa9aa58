"""Planar CNN baselines for projected spherical images, assembled by the blueprint.

The convolutions are :class:`sphcnn.nn.planar.BasisConv2d`, so either filter
basis can be plugged in; with ``basis="unit_peaks"`` they are ordinary convs.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sphcnn.models.blueprint import Block, Blueprint
from sphcnn.nn.planar import BasisConv2d, FilterBasis


def _conv_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class PlanarCNN(Blueprint):
    """The s2cnn paper's planar baseline on the 60 × 60 array.

    Conv 1→32 (5×5, stride 3), ReLU, Conv 32→64 (5×5, stride 3), ReLU,
    flatten, Linear 1600→10: 68,106 parameters at the defaults.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, image_size: int = 60, basis: FilterBasis = "unit_peaks"
    ) -> None:
        side = _conv_output_size(_conv_output_size(image_size, 5, 3), 5, 3)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for two 5×5 stride-3 convolutions (need >= 17)")
        blocks = [
            Block(BasisConv2d(in_channels, 32, 5, basis=basis, stride=3), nonlinearity=nn.ReLU()),
            Block(BasisConv2d(32, 64, 5, basis=basis, stride=3), nonlinearity=nn.ReLU()),
        ]
        self.image_size = image_size
        super().__init__(blocks, nn.Flatten(), nn.Linear(64 * side * side, num_classes))


class ResidualPlanarCNN(Blueprint):
    """A deeper residual planar CNN with batch norm.

    Stem: 5×5 conv → BN → ReLU → max pool 2. Then one stage per entry of
    ``channels``: ``blocks_per_stage`` residual blocks ``h = x + ReLU(BN(conv3×3(x)))``
    (a 1×1 conv shortcut where the width changes), max pool 2 after every
    stage but the last. Readout: global average; head: linear.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 60,
        channels: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 2,
        basis: FilterBasis = "unit_peaks",
        norm: bool = True,
    ) -> None:
        if len(channels) == 0 or blocks_per_stage < 1:
            raise ValueError(f"need at least one stage and one block per stage, got {channels}, {blocks_per_stage}")
        if image_size < 2 ** len(channels):
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} pooling stages")

        def bn(c: int) -> nn.Module | None:
            return nn.BatchNorm2d(c) if norm else None

        blocks = [
            Block(
                BasisConv2d(in_channels, channels[0], 5, basis=basis, padding=2),
                nonlinearity=nn.ReLU(),
                norm=bn(channels[0]),
                pool=nn.MaxPool2d(2),
            )
        ]
        previous = channels[0]
        for stage, c in enumerate(channels):
            for i in range(blocks_per_stage):
                last = i == blocks_per_stage - 1 and stage < len(channels) - 1
                shortcut = nn.Conv2d(previous, c, 1) if previous != c else None
                blocks.append(
                    Block(
                        BasisConv2d(previous, c, 3, basis=basis, padding=1),
                        nonlinearity=nn.ReLU(),
                        norm=bn(c),
                        pool=nn.MaxPool2d(2) if last else None,
                        shortcut=shortcut,
                        residual=True,
                    )
                )
                previous = c
        self.image_size = image_size
        readout = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(blocks, readout, nn.Linear(previous, num_classes))
