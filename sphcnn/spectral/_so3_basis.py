"""Index and weight bookkeeping between the real SO(3) coefficients F^ℓ_ij and the complex rows G(ℓ, m, n ≥ 0).

The SO(3) transforms contract over β in the complex basis (rows (ℓ, m, n ≥ 0); the n < 0 half
follows from real input) and change to the real Wigner basis F = Ū G Uᵀ with U of
:func:`~.wigner.complex_to_real_block`. Both directions need, per coefficient or row, the four
terms (±, ±) of that product; they are written here once.
"""

from __future__ import annotations

import numpy as np


def coefficient_indices(L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ℓ, i (row), j (column) of every flat SO(3) coefficient (blocks ℓ = 0 … L−1, row-major)."""
    ell = np.concatenate([np.full((2 * e + 1) ** 2, e) for e in range(L)])
    i = np.concatenate([np.repeat(np.arange(-e, e + 1), 2 * e + 1) for e in range(L)])
    j = np.concatenate([np.tile(np.arange(-e, e + 1), 2 * e + 1) for e in range(L)])
    return ell, i, j


def _u_entry(i: np.ndarray, m: np.ndarray) -> np.ndarray:
    """U[i, m] of :func:`complex_to_real_block` for m = ±i (its only nonzero entries), vectorized."""
    mu = np.abs(i)
    sign = np.where(mu % 2 == 0, 1.0, -1.0)
    r = 1 / np.sqrt(2)
    pos = np.where(m == i, sign * r, r).astype(np.complex128)  # row +μ: (−1)^μ/√2 at +μ, 1/√2 at −μ
    neg = np.where(m == i, 1j * r, -1j * sign * r)  # row −μ: i/√2 at −μ, −i(−1)^μ/√2 at +μ
    return np.where(i == 0, 1.0 + 0j, np.where(i > 0, pos, neg))


def real_basis_weights(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """F_ij = Σ_{s, p} w[s, p]·part_p(G(i_s, |j|)) with i_0 = i, i_1 = −i: weights ``[N, 2 (s), 2 (re, im)]``.

    G(ℓ, m, n < 0) = (−1)^{m−n} conj G(ℓ, −m, −n) because f is real, so the four terms
    (m, n) ∈ {±i} × {±j} of (Ū G Uᵀ)_ij read only the rows (i, |j|) and (−i, |j|);
    duplicates at i = 0 or j = 0 get zero weight.
    """
    weight = np.zeros((i.size, 2, 2))
    ar = np.arange(i.size)
    for sm, sn in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        m, n = sm * i, sn * j
        dup = ((sm < 0) & (i == 0)) | ((sn < 0) & (j == 0))
        coef = np.where(dup, 0, np.conj(_u_entry(i, m)) * _u_entry(j, n))
        flip = n < 0
        sign = np.where((m - n) % 2 == 0, 1.0, -1.0)
        slot = np.where(np.where(flip, -m, m) == i, 0, 1)
        np.add.at(weight, (ar, slot, 0), np.where(flip, sign * coef.real, coef.real))
        np.add.at(weight, (ar, slot, 1), np.where(flip, sign * coef.imag, -coef.imag))
    return weight


def complex_basis_terms(m: np.ndarray, n: np.ndarray):  # noqa: ANN201 - a generator of four tuples
    """G(m, n) = (U^† F U)_mn = Σ_t c_t F_{i_t j_t}: yields (i_t, j_t, c_t) for t ∈ {±} × {±}
    (c_t = 0 for the duplicates at m = 0 or n = 0)."""
    for si, sj in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        i, j = si * m, sj * n
        dup = ((si < 0) & (m == 0)) | ((sj < 0) & (n == 0))
        yield i, j, np.where(dup, 0, np.conj(_u_entry(i, m)) * _u_entry(j, n))
