"""Layers: spherical (S², SO(3)), planar and group-equivariant."""

from .group import (
    GlobalPool,
    GroupBatchNorm,
    GroupConv,
    GroupPool,
    GroupSpatialPool,
    LiftingConv,
    SignedPermutationGroup,
    make_group,
)
from .planar import BasisConv2d, circulant_matrix
from .spherical import (
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
    s2_near_identity_grid,
    so3_near_identity_grid,
)

__all__ = [
    "BasisConv2d", "circulant_matrix",
    "SignedPermutationGroup", "make_group", "LiftingConv", "GroupConv", "GroupPool", "GroupSpatialPool",
    "GroupBatchNorm", "GlobalPool",
    "S2Convolution", "SO3Convolution", "S2ZonalConvolution", "DegreeLinear", "SO3Activation", "S2Activation",
    "NormActivation", "SpectralBatchNorm", "SO3Integrate", "S2Integrate", "Truncate",
    "s2_near_identity_grid", "so3_near_identity_grid",
]
