"""Models assembled by the blueprint (see :mod:`sphcnn.models.blueprint`)."""

from .blueprint import Block, Blueprint, count_parameters
from .group import CNN1d, GroupCNN, OhCNN3d, RCEquivariantCNN1d, cnn1d_matching_parameters
from .planar import PlanarCNN, ResidualPlanarCNN
from .spherical import S2CNN, DeepS2CNN

__all__ = [
    "Block",
    "Blueprint",
    "count_parameters",
    "PlanarCNN",
    "ResidualPlanarCNN",
    "GroupCNN",
    "RCEquivariantCNN1d",
    "CNN1d",
    "cnn1d_matching_parameters",
    "OhCNN3d",
    "S2CNN",
    "DeepS2CNN",
]
