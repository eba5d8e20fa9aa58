"""One signal at small L: one β-contraction over all (m, n) pairs and a sparse change of basis.

For a single signal the SO(3) transforms are bound by the number of torch calls, not by
arithmetic (L = 16: ~500 pairs of 16 × 16 products). This path runs the β-contraction
as one block in which every pair holds all degrees ℓ < L (zero rows where ℓ < max(|m|, n)),
so one ``bmm``, and the change between the complex rows G(ℓ, m, n ≥ 0) and the real
coefficients as one sparse map in ELL form (a gather, a product, a sum): every term of
F = Ū G Uᵀ reads one part (re or im) of one row, so a coefficient reads two numbers and
a row part at most four. Each sparse map's adjoint is its transpose, stored beside it,
so backward and double backward cost the same. The table grows as L³·n_β (L = 16, Gauss–
Legendre: 0.5 MB float32), and its zero rows cost flops: forward / inverse ms of one signal,
one thread, blocked path → this one (measured in one process, see docs/bench_so3.md): L = 20 GL
float32 0.74 / 0.94 → 0.37 / 0.41; L = 24 SOFT float64 1.51 / 2.13 → 1.42 / 1.55; L = 32 SOFT
float64 3.65 / 4.91 → 4.60 / 6.20 (slower), hence :data:`MAX_L` = 24.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_L = 24


def ell_format(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The sparse matrix Σ values·e_rows e_colsᵀ as ``index, weight [R, n_rows]`` (R: most entries in a row;
    padding reads column 0 with weight 0). Explicit zeros are dropped."""
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.argsort(rows, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    count = np.bincount(rows, minlength=n_rows)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(count) - count, count)  # position within its row
    R = max(1, int(count.max(initial=0)))
    index, weight = np.zeros((R, n_rows), dtype=np.int64), np.zeros((R, n_rows))
    index[slot, rows], weight[slot, rows] = cols, values
    return index, weight


def real_rows_to_coefficients(rows: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (coefficient, row·2 + part, value) of F[c] = Σ_{s, p} weight[c, s, p]·part_p(G[rows[c, s]])
    (:meth:`~.so3._SO3Plan.real_basis_map`)."""
    c = np.broadcast_to(np.arange(rows.shape[0])[:, None, None], weight.shape)
    source = 2 * rows[:, :, None] + np.arange(2)[None, None, :]
    return c.reshape(-1), source.reshape(-1), weight.reshape(-1)


def coefficients_to_conjugate_rows(src: np.ndarray, coef_re: np.ndarray, coef_im: np.ndarray
                                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO (row·2 + part, coefficient, value) of conj G[row] = Σ_t conj(c_t)·F[src_t]
    (:meth:`~.so3._SO3Plan.complex_basis_map`; conjugated for the inverse FFT)."""
    row = np.broadcast_to(np.arange(src.shape[1])[None, :], src.shape)
    targets = np.concatenate((2 * row, 2 * row + 1), axis=None)
    return targets, np.concatenate((src, src), axis=None), np.concatenate((coef_re, -coef_im), axis=None)


class SparseMap(torch.autograd.Function):
    """``y[i] = Σ_r weight[r, i]·x[index[r, i]]`` for 1-D ``x``; the backward is the transposed map."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor,  # noqa: ANN001
                index_t: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
        ctx.tables = (index_t, weight_t, index, weight)
        terms = torch.index_select(x, 0, index.view(-1)).view(index.shape)
        return terms.mul_(weight).sum(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return SparseMap.apply(grad.contiguous(), *ctx.tables), None, None, None, None
