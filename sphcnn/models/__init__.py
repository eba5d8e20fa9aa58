"""Models assembled by the blueprint (see :mod:`sphcnn.models.blueprint`)."""

from .blueprint import Block, Blueprint, count_parameters

__all__ = ["Block", "Blueprint", "count_parameters"]
