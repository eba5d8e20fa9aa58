"""Spectral core: grids, recursions, S² and SO(3) transforms, rotations.

Pure math: imports nothing from ``sphcnn.nn``, ``models``, ``data`` or ``training``.
"""

from .grids import S2Grid, SO3Grid
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
    "SO3Grid",
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

from .sht import SHT, InverseSHT, isht, sht  # noqa: E402
from .wigner import (  # noqa: E402
    complex_to_real_coeffs,
    degree_index,
    e3nn_to_sh,
    order_index,
    sh_to_e3nn,
    real_sph_harm,
    real_to_complex_coeffs,
    rotate_sh,
    wigner_D,
    wigner_D_block,
)

__all__ += [
    "SHT",
    "InverseSHT",
    "sht",
    "isht",
    "complex_to_real_coeffs",
    "degree_index",
    "e3nn_to_sh",
    "order_index",
    "sh_to_e3nn",
    "real_sph_harm",
    "real_to_complex_coeffs",
    "rotate_sh",
    "wigner_D",
    "wigner_D_block",
]

from .so3 import (  # noqa: E402
    InverseSO3FFT,
    SO3FFT,
    num_so3_coeffs,
    s2_correlation,
    so3_correlation,
    so3_fft,
    so3_ifft,
)

__all__ += ["SO3FFT", "InverseSO3FFT", "num_so3_coeffs", "s2_correlation", "so3_correlation", "so3_fft", "so3_ifft"]
