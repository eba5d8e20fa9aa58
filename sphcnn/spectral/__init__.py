"""Spectral core: grids, recursions, S² and SO(3) transforms, rotations.

Pure math: imports nothing from ``sphcnn.nn``, ``models``, ``data`` or ``training``.
"""

from .grids import S2Grid
from .rotation import (
    angles_to_points,
    euler_to_matrix,
    matrix_to_euler,
    points_to_angles,
    quaternion_to_matrix,
    random_rotation,
    rot_y,
    rot_z,
    rotate_points,
)

__all__ = [
    "S2Grid",
    "angles_to_points",
    "euler_to_matrix",
    "matrix_to_euler",
    "points_to_angles",
    "quaternion_to_matrix",
    "random_rotation",
    "rot_y",
    "rot_z",
    "rotate_points",
]
