"""One signal at small L: the SO(3) β-contraction and change of basis folded into one matmul per pair.

For a single signal the SO(3) transform is bound by the number of torch calls, not by
arithmetic (L = 16: ~500 (m, n) pairs of 16 × 16 products). The real coefficients
F^ℓ_{±μ,±ν} read only the FFT pairs (±μ, ν), so per pair p = (m, n ≥ 0) one matrix maps
its spectrum [β, re/im] to four slots (ℓ, sign i, sign j) per degree, with the Wigner
small-d table, the quadrature and the real-basis weights multiplied in:

    analysis   F[c] = Y[a_c] + Y[b_c],    Y = M_p · x_p   (a_c, b_c: the slots of c in pairs (i, |j|), (−i, |j|))
    synthesis  x_p = M_p · Z_p,           Z[q] = F[c_q]  (c_q: the coefficient of slot q, or a zero)

Two index gathers and one ``bmm`` instead of ~15 calls. Each direction's adjoint is the
other form with M transposed, so backward and double backward come for free. The tables
grow as 16·L³·n_β (L = 16: 4 MB float32 on the Gauss–Legendre grid), hence only up to
:data:`MAX_L`. Layouts match :func:`~.so3._grid_to_pairs` (pair-major, then β, then re/im).
"""

from __future__ import annotations

import numpy as np
import torch

from ._so3_basis import coefficient_indices, complex_basis_terms, real_basis_weights
from .grids import SO3Grid
from .wigner import small_d_complex

MAX_L = 16


def slot_indices(L: int) -> tuple[np.ndarray, np.ndarray]:
    """``slots [2, N]``: the flat slots (pair·4L + k) of each coefficient in pairs (i, |j|) and (−i, |j|)
    (for i = 0 the second is a slot that is always zero), and ``coefficient_of_slot [P·4L]`` (N: none)."""
    ell, i, j = coefficient_indices(L)
    S, N = 4 * L, ell.size
    k = 4 * ell + 2 * (i < 0) + (j < 0)
    slot_a = ((i + L - 1) * L + np.abs(j)) * S + k
    always_zero = (L - 1) * L * S + 2  # pair (0, 0), slot (ℓ = 0, i < 0): no coefficient has i = −0
    slot_b = np.where(i == 0, always_zero, ((-i + L - 1) * L + np.abs(j)) * S + k)
    coefficient_of_slot = np.full((2 * L - 1) * L * S, N, dtype=np.int64)
    coefficient_of_slot[slot_a] = np.arange(N)
    coefficient_of_slot[slot_b[i != 0]] = np.flatnonzero(i != 0)
    return np.stack((slot_a, slot_b)), coefficient_of_slot


def matrices(L: int, grid: SO3Grid, forward: bool) -> np.ndarray:
    """Per pair: ``[P, 4L, 2n_β]`` (analysis) or ``[P, 2n_β, 4L]`` (synthesis), float64.

    The same sums as the general path: forward tables d·w_β/(2n²) then
    :func:`~._so3_basis.real_basis_weights`; inverse :func:`~._so3_basis.complex_basis_terms`
    (conjugated, for the inverse FFT) then the tables (2ℓ+1)·d.
    """
    beta, n_ag = grid.beta_nodes, grid.shape[1]
    P, S, n_beta = (2 * L - 1) * L, 4 * L, beta.size
    M = np.zeros((P, S, n_beta, 2))
    ell_all, i_all, j_all = coefficient_indices(L)
    for ell in range(L):
        d = small_d_complex(ell, beta)  # [β, m, n]
        if forward:  # F[c] = Σ_{s, part} w[c, s, part]·part(Σ_β d_{m_s,|j|}(β) w_β/(2n²) x(m_s, |j|, β))
            i, j = i_all[ell_all == ell], j_all[ell_all == ell]
            weight = real_basis_weights(i, j)  # [count, 2 (s), 2 (part)]
            k = 4 * ell + 2 * (i < 0) + (j < 0)
            for s, m in enumerate((i, -i)):
                values = d[:, m + ell, np.abs(j) + ell].T * (grid.beta_weights / (2 * n_ag * n_ag))  # [count, β]
                np.add.at(M, ((m + L - 1) * L + np.abs(j), k), values[:, :, None] * weight[:, None, s, :])
        else:  # x(m, n, β) = Σ_ℓ (2ℓ+1) d_mn(β) · conj(Σ_t c_t F[i_t, j_t])
            m = np.repeat(np.arange(-ell, ell + 1), ell + 1)
            n = np.tile(np.arange(ell + 1), 2 * ell + 1)
            values = (2 * ell + 1) * d[:, m + ell, n + ell].T  # [rows, β]
            for i, j, c in complex_basis_terms(m, n):
                k = 4 * ell + 2 * (i < 0) + (j < 0)
                parts = np.stack((c.real, -c.imag), axis=-1)
                np.add.at(M, ((m + L - 1) * L + n, k), values[:, :, None] * parts[:, None, :])
    M = M.reshape(P, S, 2 * n_beta)
    return M if forward else np.ascontiguousarray(M.transpose(0, 2, 1))


def _apply(x: torch.Tensor, M: torch.Tensor, slots: torch.Tensor, coefficient_of_slot: torch.Tensor,
           analysis: bool) -> torch.Tensor:
    """analysis: pairs ``x [P, K]`` → coefficients ``[N]``; synthesis: coefficients ``[N]`` → pairs ``[P, K]``,
    with ``M [P, S, K]`` or ``[P, K, S]``."""
    P = M.shape[0]
    if analysis:
        Y = torch.bmm(x.view(P, 1, -1), M.transpose(1, 2)).view(-1)  # one row per pair: MKL's fast orientation
        return torch.index_select(Y, 0, slots[0]).add_(torch.index_select(Y, 0, slots[1]))
    Z = torch.index_select(torch.cat((x, x.new_zeros(1))), 0, coefficient_of_slot)
    return torch.bmm(Z.view(P, 1, -1), M.transpose(1, 2)).view(P, -1)


class SingleSignalMap(torch.autograd.Function):
    """:func:`_apply`; each direction's backward is the other with ``M`` transposed."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, M: torch.Tensor, slots: torch.Tensor,  # noqa: ANN001
                coefficient_of_slot: torch.Tensor, analysis: bool) -> torch.Tensor:
        ctx.M, ctx.slots, ctx.coefficient_of_slot, ctx.analysis = M, slots, coefficient_of_slot, analysis
        return _apply(x, M, slots, coefficient_of_slot, analysis)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        grad_x = SingleSignalMap.apply(grad.contiguous(), ctx.M.transpose(1, 2), ctx.slots,
                                       ctx.coefficient_of_slot, not ctx.analysis)
        return grad_x, None, None, None, None
