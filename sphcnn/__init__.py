"""sphcnn: spherical CNNs in pure PyTorch.

Subpackages: ``spectral`` (S² and SO(3) transforms, rotations), ``nn``
(spherical, planar and group layers), ``models`` (blueprint assembly),
``data`` (spherical MNIST), ``training`` (Lightning module).
"""

__version__ = "0.1.0"
