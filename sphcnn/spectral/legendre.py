"""Normalized associated Legendre functions by the standard three-term recursion.

λ_ℓm(θ) = N_ℓm P_ℓ^m(cos θ) without the Condon–Shortley phase, normalized so
that Y_ℓm = λ_ℓm (m = 0), √2 λ_ℓm cos mφ (m > 0), √2 λ_ℓ|m| sin |m|φ (m < 0)
are the real orthonormal spherical harmonics of DESIGN.md.

Method (the "modified forward column" recursion used by SHTOOLS/libsharp):

    λ_mm      = √((2m+1)/(4π)·Π_{k≤m} (2k−1)/(2k)) · sin^m θ   (evaluated in log space)
    λ_{m+1,m} = √(2m+3) cos θ λ_mm
    λ_ℓm      = a_ℓm (cos θ λ_{ℓ−1,m} − b_ℓm λ_{ℓ−2,m})

The recursion in ℓ at fixed m is forward-stable. Its only limit is the
floating-point range of the seed λ_mm ∝ sin^m θ: seeds that underflow to 0
(float64: below ~1e-308) are correct as long as λ_ℓm stays negligible for
ℓ < L, which holds when min_m (m/L)^m ≳ 1e-300, i.e. L ≲ 1800 in float64.
Tests check L up to 1024 against an independent (scipy/mpmath-free) route:
orthonormality by exact quadrature. Always computed in float64.
"""

from __future__ import annotations

import math

import numpy as np


def legendre_block(L: int, theta: np.ndarray, m_start: int, m_stop: int) -> np.ndarray:
    """λ_{m+d, m}(θ) for m ∈ [m_start, m_stop), d ∈ [0, L − m_start), float64.

    Returns an array of shape ``[m_stop − m_start, L − m_start, len(theta)]``;
    entries with m + d ≥ L are zero, so the block is a padded ragged table
    whose row d of slice m holds degree ℓ = m + d.
    """
    theta = np.asarray(theta, dtype=np.float64).reshape(-1)
    if not 0 <= m_start < m_stop <= L:
        raise ValueError(f"need 0 <= m_start < m_stop <= L, got m_start={m_start}, m_stop={m_stop}, L={L}")
    ms = np.arange(m_start, m_stop)
    x = np.cos(theta)[None, :]
    sin_theta = np.sin(theta)
    # log λ_mm = ½ log((2m+1)/(4π)) + ½ Σ_{k=1}^m log((2k−1)/(2k)) + m log sin θ
    k = np.arange(1, m_stop)
    log_prod = np.concatenate(([0.0], np.cumsum(0.5 * np.log((2 * k - 1) / (2 * k)))))
    log_norm = 0.5 * np.log((2 * ms + 1) / (4 * math.pi)) + log_prod[ms]
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = −inf at the poles; 0·(−inf) masked
        m_log_sin = np.where(ms[:, None] == 0, 0.0, ms[:, None] * np.log(sin_theta)[None, :])
    seed = np.exp(log_norm[:, None] + m_log_sin)

    n_d = L - m_start
    out = np.zeros((len(ms), n_d, theta.size))
    prev2 = np.zeros_like(seed)
    prev1 = seed
    mf = ms[:, None].astype(np.float64)
    for d in range(n_d):
        valid = (ms + d) < L
        if not valid.any():
            break
        if d == 0:
            cur = seed
        else:
            ell = mf + d
            a = np.sqrt((4 * ell * ell - 1) / (ell * ell - mf * mf))
            b = np.sqrt(((ell - 1) ** 2 - mf * mf) / (4 * (ell - 1) ** 2 - 1)) if d > 1 else 0.0
            cur = a * (x * prev1 - b * prev2)
            prev2 = prev1
            prev1 = cur
        out[:, d, :] = np.where(valid[:, None], cur, 0.0)
    return out
