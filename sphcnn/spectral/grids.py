"""Sampling grids on S² with their quadrature weights.

Every grid lists its points as colatitude θ ∈ [0, π] (from +z) and longitude
φ ∈ [0, 2π) (from +x), in float64. ``weights`` integrate over the sphere:
Σ w f ≈ ∫ f dΩ, exactly for band-limited products on the exact grids.

* ``"dh"``: Driscoll–Healy, 2L × 2L, θ_j = πj/(2L) (north pole included,
  south pole not), φ_k = πk/L. Exact for degree < 2L−1 in θ products.
* ``"gl"``: Gauss–Legendre, L × (2L−1): cos θ_j are the Gauss–Legendre
  nodes (θ increasing), φ_k = 2πk/(2L−1). Exact for products of two
  band-L functions.
* ``"healpix"``: HEALPix ring order, shape (12·nside²,), equal-area weights
  4π/npix. Not an exact quadrature; transforms refine iteratively. Supported
  bandlimits: L ≤ 3·nside (healpy's default lmax = 3·nside − 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from ._options import check_bandlimit, check_option

S2GridKind = Literal["dh", "gl", "healpix"]


def dh_colatitude_weights(L: int) -> np.ndarray:
    """Driscoll–Healy weights in θ for θ_j = πj/(2L), integrating ∫₀^π g(θ) sin θ dθ."""
    n = 2 * L
    theta = np.pi * np.arange(n) / n
    k = np.arange(L)
    s = np.sin(np.outer(theta, 2 * k + 1)) / (2 * k + 1)
    return (4.0 / n) * np.sin(theta) * s.sum(axis=1)


def gauss_legendre_colatitudes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes as colatitudes θ (increasing) and weights for ∫₀^π g(θ) sin θ dθ.

    numpy's ``leggauss`` weights lose ~1e-11 relative accuracy near the poles
    at n ≳ 256; Newton steps in θ (not x = cos θ, which loses digits near ±1)
    with w = 2 / (dP_n/dθ)² restore full float64 accuracy.
    """
    x0, _ = np.polynomial.legendre.leggauss(n)
    theta = np.arccos(x0)[::-1].copy()
    for _ in range(3):
        x = np.cos(theta)
        p_prev, p = np.ones_like(x), x.copy()
        for k in range(2, n + 1):
            p_prev, p = p, ((2 * k - 1) * x * p - (k - 1) * p_prev) / k
        if n == 1:
            p_prev, p = np.ones_like(x), x
        dp_dtheta = -n * (p_prev - x * p) / np.sin(theta)
        theta = theta + p / dp_dtheta  # Newton on P_n(cos θ): dθ = −P / (dP/dθ)
    return theta, 2.0 / dp_dtheta**2


@dataclass(frozen=True, eq=False)
class HealpixRings:
    """Ring structure of a HEALPix map: contiguous pixel ranges of equal θ."""

    theta: np.ndarray  # (n_rings,)
    start: np.ndarray  # first pixel of each ring
    count: np.ndarray  # pixels in each ring
    phi0: np.ndarray  # longitude of the first pixel of each ring


@dataclass(frozen=True, eq=False)
class S2Grid:
    """A sampling grid of S² for bandlimit ``L`` (degrees 0 … L−1).

    >>> S2Grid(8).shape, S2Grid(8, "gl").shape, S2Grid(8, "healpix", nside=4).shape
    ((16, 16), (8, 15), (192,))
    """

    L: int
    kind: S2GridKind = "dh"
    nside: int | None = None
    theta: torch.Tensor = field(init=False, repr=False)
    phi: torch.Tensor = field(init=False, repr=False)
    weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_bandlimit(self.L)
        check_option("grid kind", self.kind, S2GridKind)
        if self.kind == "healpix":
            if self.nside is None or isinstance(self.nside, bool) or not isinstance(self.nside, int):
                raise ValueError(f"healpix grid needs an integer nside (a power of 2), got {self.nside!r}")
            if self.nside < 1 or self.nside & (self.nside - 1):
                raise ValueError(f"nside must be a power of 2, got {self.nside}")
            if self.L > 3 * self.nside:
                raise ValueError(
                    f"healpix nside={self.nside} supports bandlimits L <= 3*nside = {3 * self.nside}, got L={self.L}"
                )
        elif self.nside is not None:
            raise ValueError(f"nside is only meaningful for kind='healpix', got nside={self.nside} for {self.kind!r}")
        theta, phi, weights = _grid_arrays(self.L, self.kind, self.nside)
        object.__setattr__(self, "theta", torch.from_numpy(theta))
        object.__setattr__(self, "phi", torch.from_numpy(phi))
        object.__setattr__(self, "weights", torch.from_numpy(weights))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.theta.shape)

    @property
    def key(self) -> tuple:
        """Hashable identity, used to cache precomputed tables."""
        return (self.L, self.kind, self.nside)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S2Grid) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def ring_theta(self) -> np.ndarray:
        """Colatitudes of the iso-latitude rows (rings) of the grid, float64."""
        if self.kind == "healpix":
            return self.rings().theta
        return self.theta[:, 0].numpy()

    def rings(self) -> HealpixRings:
        if self.kind != "healpix":
            raise ValueError("rings() describes HEALPix grids only")
        return _healpix_rings(self.nside)

    def points(self) -> torch.Tensor:
        """Unit vectors of the grid points, float64, shape ``[*shape, 3]``."""
        from .rotation import angles_to_points

        return angles_to_points(self.theta, self.phi)

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise a clear error unless ``x`` is a float tensor of shape ``[..., *self.shape]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not (x.is_floating_point() and x.dtype in (torch.float32, torch.float64)):
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        n = len(self.shape)
        if x.dim() < n or tuple(x.shape[-n:]) != self.shape:
            raise ValueError(
                f"{name} must have trailing grid shape {self.shape} ({self.kind}, L={self.L}), got {tuple(x.shape)}"
            )


@lru_cache(maxsize=None)
def _healpix_rings(nside: int) -> HealpixRings:
    import healpy as hp

    npix = 12 * nside * nside
    theta, phi = hp.pix2ang(nside, np.arange(npix))
    starts = np.flatnonzero(np.r_[True, np.diff(theta) != 0])
    counts = np.diff(np.r_[starts, npix])
    return HealpixRings(theta=theta[starts], start=starts, count=counts, phi0=phi[starts])


@lru_cache(maxsize=None)
def _grid_arrays(L: int, kind: str, nside: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if kind == "healpix":
        import healpy as hp

        npix = 12 * nside * nside
        theta, phi = hp.pix2ang(nside, np.arange(npix))
        weights = np.full(npix, 4 * np.pi / npix)
        return theta, phi, weights
    if kind == "dh":
        n_theta = n_phi = 2 * L
        theta1 = np.pi * np.arange(n_theta) / n_theta
        w_theta = dh_colatitude_weights(L)
    else:
        n_theta, n_phi = L, 2 * L - 1
        theta1, w_theta = gauss_legendre_colatitudes(L)
    phi1 = 2 * np.pi * np.arange(n_phi) / n_phi
    theta, phi = np.meshgrid(theta1, phi1, indexing="ij")
    weights = np.repeat((w_theta * (2 * math.pi / n_phi))[:, None], n_phi, axis=1)
    return theta.copy(), phi.copy(), weights


SO3GridKind = Literal["soft", "gl"]


def soft_colatitude_weights(L: int) -> np.ndarray:
    """Weights for β_j = π(2j+1)/(4L), j < 2L, integrating ∫₀^π g(β) sin β dβ (Kostelec–Rockmore)."""
    n = 2 * L
    beta = np.pi * (2 * np.arange(n) + 1) / (2 * n)
    k = np.arange(L)
    s = np.sin(np.outer(beta, 2 * k + 1)) / (2 * k + 1)
    return (4.0 / n) * np.sin(beta) * s.sum(axis=1)


@dataclass(frozen=True, eq=False)
class SO3Grid:
    """A sampling grid of SO(3) for bandlimit ``L``, axes ordered (β, α, γ) (as s2cnn).

    Points are R = R_z(α) R_y(β) R_z(γ). ``weights`` integrate against the
    normalized Haar measure (Σ w = 1): Σ w f ≈ ∫ f dR, exact on both kinds for
    products of two band-L functions.

    * ``"soft"``: 2L × 2L × 2L, β_j = π(2j+1)/(4L), α_k = γ_k = πk/L.
    * ``"gl"``: L × (2L−1) × (2L−1), cos β_j Gauss–Legendre nodes, α_k = γ_k = 2πk/(2L−1).
    """

    L: int
    kind: SO3GridKind = "soft"
    alpha: torch.Tensor = field(init=False, repr=False)
    beta: torch.Tensor = field(init=False, repr=False)
    gamma: torch.Tensor = field(init=False, repr=False)
    weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_bandlimit(self.L)
        check_option("SO(3) grid kind", self.kind, SO3GridKind)
        beta1, w_beta, n_ag = _so3_axes(self.L, self.kind)
        ag = 2 * np.pi * np.arange(n_ag) / n_ag
        beta, alpha, gamma = np.meshgrid(beta1, ag, ag, indexing="ij")
        weights = np.broadcast_to((w_beta / (2 * n_ag * n_ag))[:, None, None], beta.shape)
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("weights", weights)):
            object.__setattr__(self, name, torch.from_numpy(np.array(value)))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.beta.shape)

    @property
    def beta_nodes(self) -> np.ndarray:
        return self.beta[:, 0, 0].numpy()

    @property
    def beta_weights(self) -> np.ndarray:
        """Weights in β alone, Σ = 2 (= ∫₀^π sin β dβ)."""
        return _so3_axes(self.L, self.kind)[1]

    @property
    def key(self) -> tuple:
        return (self.L, self.kind)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SO3Grid) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def matrices(self) -> torch.Tensor:
        """Rotation matrices of the grid points, float64 ``[*shape, 3, 3]``."""
        from .rotation import euler_to_matrix

        return euler_to_matrix(self.alpha, self.beta, self.gamma)

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
        if x.dim() < 3 or tuple(x.shape[-3:]) != self.shape:
            raise ValueError(
                f"{name} must have trailing SO(3) grid shape {self.shape} ({self.kind}, L={self.L}), got {tuple(x.shape)}"
            )


@lru_cache(maxsize=None)
def _so3_axes(L: int, kind: str) -> tuple[np.ndarray, np.ndarray, int]:
    if kind == "soft":
        n = 2 * L
        return np.pi * (2 * np.arange(n) + 1) / (2 * n), soft_colatitude_weights(L), n
    beta, w = gauss_legendre_colatitudes(L)
    return beta, w, 2 * L - 1
