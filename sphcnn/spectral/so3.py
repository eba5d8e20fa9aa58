"""Fourier transforms on SO(3) in the real Wigner-D basis, and spectral correlations.

Normalization (dR: Haar measure of total mass 1):

    F^ℓ = ∫ f(R) D^ℓ(R) dR            (forward, one (2ℓ+1)×(2ℓ+1) block per degree)
    f(R) = Σ_ℓ (2ℓ+1) Σ_mn F^ℓ_mn D^ℓ_mn(R)   (inverse)
    ∫ f² dR = Σ_ℓ (2ℓ+1) ‖F^ℓ‖²_F      (Parseval)

D^ℓ is the real Wigner matrix of :func:`sphcnn.spectral.wigner_D` (row m,
column n), so ``so3_ifft`` of a single block reproduces D at the grid points.
Coefficients are stored flat, block after block (row-major), length
Σ(2ℓ+1)² = L(4L²−1)/3.

Algorithm: with the complex Wigner functions D_c(α,β,γ)_mn = e^{−imα} d_mn(β)
e^{−inγ}, ∫ f D_c dR is a 2-D FFT over (α, γ) followed, per degree, by a
weighted sum over β with the small-d table; the real-basis blocks follow by
the unitary change of basis D = Ū D_c Uᵀ of :mod:`sphcnn.spectral.wigner`.
The small-d table holds, per direction, rows (ℓ, m, n ≥ 0) × n_β numbers, with
~40 % zero padding from the FFT-ordered blocks (see :class:`_SO3Plan`): at L = 128,
2.3·10⁶ rows, 1.2 GB (GL) or 2.4 GB (SOFT) in float32 per direction. It is computed
once per (grid, L, dtype) by exact diagonalization (no recursion in ℓ), in
non-persistent buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import _so3_single as single
from ._cache import cached_module
from ._fft import fft2_backend, half_spectrum_weight, irfft2, rfft2
from ._options import check_transform_args
from ._so3_basis import coefficient_indices, complex_basis_terms, real_basis_weights
from ._tables import TableModule
from ._workspace import Workspace, batch_ranges, scratch
from .grids import SO3Grid
from .wigner import small_d_complex


# Runs of |m| per sign: fewer calls vs. less zero padding. Up to L = 16 a call costs more than the padding
# it saves (L = 16, batch 1 / 16, µs per contraction: 8 runs 324 / 310, 2 runs 185 / 274; L = 10, batch 640:
# 2,479 / 2,582 µs, about equal; L = 32: 2 runs 19 % slower at batch 16).
_BLOCKS_PER_SIGN, _SMALL_L, _SMALL_L_BLOCKS_PER_SIGN = 8, 16, 2
_FEW_COLUMNS = 4  # contractions with at most this many columns (batch ≤ 2) run transposed: see _block_bmm


def num_so3_coeffs(L: int) -> int:
    """Σ_{ℓ<L} (2ℓ+1)² = L(4L²−1)/3."""
    return L * (4 * L * L - 1) // 3


def so3_bandlimit(n_coeffs: int) -> int:
    """The L with L(4L²−1)/3 = n_coeffs, or a clear error."""
    L = 0
    while num_so3_coeffs(L) < n_coeffs:
        L += 1
    if num_so3_coeffs(L) != n_coeffs:
        raise ValueError(
            f"SO(3) coefficients must have a trailing length L(4L²−1)/3 (1, 10, 35, 84, …), got {n_coeffs}"
        )
    return L


@dataclass(frozen=True)
class _SO3Plan:
    """Index bookkeeping of the SO(3) transform for one (grid, L); numpy.

    The β-contraction runs over "rows" (ℓ, m, n) with n ≥ 0 (real input: the n < 0
    half follows by conjugation). Pairs (m, n) are ordered as the 2-D FFT lays them
    out (m ascending, then n), and blocked by contiguous runs of m of one sign, so
    each block's spectrum is one rectangle of FFT bins: moving data between the FFT
    and the contraction is a strided copy, never a gather. A block with
    |m| ≥ k0 holds rows ℓ = k0 … L−1 for each of its pairs (rows with
    ℓ < max(|m|, n) are padding: zero table entries, ~40 % of the table at L ≥ 32).
    """

    L: int
    blocks: tuple[tuple[int, int, int], ...]  # (first pair, last pair + 1, k0)
    pair_m: np.ndarray
    pair_n: np.ndarray
    pair_row0: np.ndarray  # row of (ℓ = k0, m, n) for each pair
    pair_k0: np.ndarray
    n_rows: int

    @staticmethod
    def build(L: int, one_block: bool = False) -> "_SO3Plan":
        """Blocks of runs of |m| (see ``_BLOCKS_PER_SIGN``), or ``one_block`` holding every pair with all ℓ < L."""
        width = max(1, L // (_BLOCKS_PER_SIGN if L > _SMALL_L else _SMALL_L_BLOCKS_PER_SIGN))
        ms = np.arange(-(L - 1), L)
        key = np.where(ms < 0, -1 - (-ms - 1) // width, ms // width)  # runs of |m| of one sign
        pm = np.repeat(ms, L)
        pn = np.tile(np.arange(L), ms.size)
        blocks, pk0 = [], np.zeros(pm.size, dtype=np.int64)
        for k in np.unique(key) if not one_block else ():
            run = ms[key == k]
            k0 = int(np.abs(run).min())
            p0, p1 = (int(run[0]) + L - 1) * L, (int(run[-1]) + L) * L
            blocks.append((p0, p1, k0))
            pk0[p0:p1] = k0
        if one_block:
            blocks.append((0, pm.size, 0))
        rows_per_pair = L - pk0
        row0 = np.concatenate(([0], np.cumsum(rows_per_pair)[:-1]))
        return _SO3Plan(L=L, blocks=tuple(blocks), pair_m=pm, pair_n=pn,
                        pair_row0=row0, pair_k0=pk0, n_rows=int(rows_per_pair.sum()))

    def row(self, ell: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Row index of (ℓ, m, n ≥ 0)."""
        p = (m + self.L - 1) * self.L + n
        return self.pair_row0[p] + ell - self.pair_k0[p]

    def tables(self, grid: SO3Grid, forward: bool, dtype: np.dtype = np.float64) -> list[np.ndarray]:
        """Per block: ``[pairs, L − k0, n_β]`` of d^ℓ_mn(β)·(β weight) (forward), or
        ``[pairs, n_β, L − k0]`` of (2ℓ+1)·d^ℓ_mn(β) (inverse). Computed in float64 and rounded
        once into ``dtype`` arrays, so no float64 copy of the whole table is ever held."""
        beta, w = grid.beta_nodes, grid.beta_weights
        n_ag = grid.shape[1]
        shape = (lambda p, r: (p, r, beta.size)) if forward else (lambda p, r: (p, beta.size, r))
        out = [np.zeros(shape(p1 - p0, self.L - k0), dtype=dtype) for p0, p1, k0 in self.blocks]
        for ell in range(self.L):
            d = small_d_complex(ell, beta)  # [β, m, n]
            d = d * (w / (2 * n_ag * n_ag))[:, None, None] if forward else d * (2 * ell + 1)
            for (p0, p1, k0), table in zip(self.blocks, out):
                m, n = self.pair_m[p0:p1], self.pair_n[p0:p1]
                ok = np.maximum(np.abs(m), n) <= ell
                if ell >= k0 and ok.any():
                    values = d[:, m[ok] + ell, n[ok] + ell]  # [β, pairs]
                    if forward:
                        table[np.flatnonzero(ok), ell - k0, :] = values.T
                    else:
                        table[np.flatnonzero(ok), :, ell - k0] = values.T
        return out

    def real_basis_map(self) -> tuple[np.ndarray, np.ndarray]:
        """F^ℓ_ij = Σ_{t, p} w[t, p]·part_p(row_t): real block F = Ū G Uᵀ from rows G(ℓ, m, n ≥ 0).

        Returns the rows ``[N, 2]``, (ℓ, i, |j|) and (ℓ, −i, |j|), and the weights
        ``[N, 2 (row), 2 (re, im)]`` of :func:`~._so3_basis.real_basis_weights`.
        """
        ell, i, j = coefficient_indices(self.L)
        rows = np.stack((self.row(ell, i, np.abs(j)), self.row(ell, -i, np.abs(j))), axis=1)
        return rows, real_basis_weights(i, j)

    def complex_basis_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows H(ℓ, m, n ≥ 0) = (U^† F U)_mn = Σ_t c_t F[src_t], complex c (zero on padding rows)."""
        p = np.repeat(np.arange(self.pair_m.size), self.L - self.pair_k0)
        ell = self.pair_k0[p] + (np.arange(self.n_rows) - self.pair_row0[p])
        m, n = self.pair_m[p], self.pair_n[p]
        valid = ell >= np.maximum(np.abs(m), n)
        ell_safe = np.where(valid, ell, np.maximum(np.abs(m), n))
        src, coef = [], []
        for i, j, c in complex_basis_terms(m, n):
            src.append(ell_safe * (4 * ell_safe**2 - 1) // 3 + (i + ell_safe) * (2 * ell_safe + 1) + (j + ell_safe))
            coef.append(np.where(valid, c, 0))
        src = np.minimum(np.stack(src), num_so3_coeffs(self.L) - 1)
        coef = np.stack(coef)
        return src, coef.real, coef.imag


class _SO3Transform(TableModule):
    def __init__(self, grid: SO3Grid, L: int | None, dtype: torch.dtype, forward: bool) -> None:
        super().__init__()
        L = check_transform_args(grid, SO3Grid, L, dtype)
        self.grid, self.L, self.is_forward = grid, L, forward
        self.plan = _SO3Plan.build(L)
        self.workspace = Workspace()
        basis = self.plan.real_basis_map() if forward else self.plan.complex_basis_map()
        self.register_buffer("basis_src", torch.from_numpy(basis[0].reshape(-1)), persistent=False)
        self._basis = basis[1:]
        self.single_signal = 1 < L <= single.MAX_L  # one signal: one block and a sparse change of basis
        if self.single_signal:
            self.single_plan = _SO3Plan.build(L, one_block=True)
            P, N = self.single_plan.pair_m.size, num_so3_coeffs(L)
            if forward:
                coo, n_out, n_in = single.real_rows_to_coefficients(*self.single_plan.real_basis_map()), N, 2 * P * L
            else:
                coo, n_out, n_in = single.coefficients_to_conjugate_rows(*self.single_plan.complex_basis_map()), 2 * P * L, N
            rows, cols, values = coo
            self._single_maps = (single.ell_format(rows, cols, values, n_out),
                                 single.ell_format(cols, rows, values, n_in))  # the map and its transpose
            for name, (index, _) in zip(("single_index", "single_index_t"), self._single_maps):
                self.register_buffer(name, torch.from_numpy(index), persistent=False)
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        np_dtype = np.float32 if dtype == torch.float32 else np.float64

        def build() -> list[np.ndarray]:
            tables = list(self.plan.tables(self.grid, self.is_forward, np_dtype))
            if self.single_signal:  # stored transposed: one signal's contraction runs transposed (few columns)
                one_block = self.single_plan.tables(self.grid, self.is_forward, np_dtype)[0]
                tables.append(np.ascontiguousarray(one_block.transpose(0, 2, 1)))
            return tables

        names = [f"table_{i}" for i in range(len(self.plan.blocks))] + ["single_table_t"] * self.single_signal
        self.register_shared(("SO3 Wigner", self.grid.key, self.L, self.is_forward), names, build, dtype, device)
        if self.is_forward:
            self.register_buffer("basis_weight", torch.from_numpy(self._basis[0]).unsqueeze(2).to(dtype=dtype, device=device),
                                 persistent=False)  # [N, 2, 1, 2]
        else:
            for name, value in zip(("basis_a", "basis_b"), self._basis):
                value = value if name == "basis_a" else -value  # rows conjugated for the inverse FFT
                self.register_buffer(name, torch.from_numpy(value).unsqueeze(-1).to(dtype=dtype, device=device),
                                     persistent=False)
        if self.single_signal:
            for name, (_, weight) in zip(("single_weight", "single_weight_t"), self._single_maps):
                self.register_buffer(name, torch.from_numpy(weight).to(dtype=dtype, device=device), persistent=False)
        # L = 1 needs only F⁰ = ∫ f dR: a weighted sum beats the FFT path (invariant readouts)
        self.register_buffer("haar_weights", self.grid.weights.reshape(-1).to(dtype=dtype, device=device),
                             persistent=False)

    def _intermediate_workspace(self, x: torch.Tensor) -> Workspace | None:
        """The workspace for results passed between the steps of one call, when autograd is not recording
        them (they could otherwise be saved for the backward and overwritten by the next call)."""
        return None if torch.is_grad_enabled() and x.requires_grad else self.workspace

    def release_workspace(self) -> None:
        """Free the scratch buffers (≥ 1 MB each) this thread's calls keep for the next call."""
        self.workspace.clear()

    def _change_of_basis(self, x: torch.Tensor) -> torch.Tensor:
        return single.SparseMap.apply(x, self.single_index, self.single_weight, self.single_index_t, self.single_weight_t)

    def _single_contraction(self, x: torch.Tensor) -> torch.Tensor:
        """One signal's β-contraction: all pairs as one block, ``x`` and the result with (re, im) columns."""
        return _BlockContraction.apply(x.reshape(-1, 2), (self.single_table_t.transpose(1, 2),), False)

    def _tables(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"table_{i}") for i in range(len(self.plan.blocks)))

    def extra_repr(self) -> str:
        return f"L={self.L}, grid=SO3Grid(L={self.grid.L}, kind={self.grid.kind!r}), dtype={self.table_dtype}"


def _out(workspace: Workspace | None, name: str, shape: tuple[int, ...], like: torch.Tensor) -> dict:
    """``out=`` keyword arguments: a workspace buffer when one is given (autograd not recording), else none."""
    return {} if workspace is None else {"out": workspace.empty(name, shape, like)}


def _block_bmm(x: torch.Tensor, tables: tuple[torch.Tensor, ...], transpose: bool,
               workspace: Workspace | None = None) -> torch.Tensor:
    """Rows ``x [Σ_i p_i·k_i, C]`` (block i: ``[p_i, k_i, C]``) → ``[Σ_i p_i·r_i, C]`` with block i = T_i x_i
    for ``T_i [p_i, r_i, k_i]`` (or T_iᵀ), each matmul written into one output buffer.

    Few columns (a batch of one or two signals) run transposed, x_iᵀ T_iᵀ: MKL's per-matrix cost
    of a product with 2 columns is ~3× that of one with 2 rows (L = 16, 496 pairs: 155 vs 95 µs).
    """
    C = x.shape[-1]
    cols, rows = (1, 2) if transpose else (2, 1)
    out = scratch(workspace, "contraction", (sum(t.shape[0] * t.shape[rows] for t in tables), C), x)
    at_in = at_out = 0
    for t in tables:
        p, n_in, n_out = t.shape[0], t.shape[cols], t.shape[rows]
        xi, oi = x[at_in: at_in + p * n_in].view(p, n_in, C), out[at_out: at_out + p * n_out].view(p, n_out, C)
        if C <= _FEW_COLUMNS:
            oi.copy_(torch.bmm(xi.transpose(1, 2), t if transpose else t.transpose(1, 2)).transpose(1, 2))
        else:
            torch.bmm(t.transpose(1, 2) if transpose else t, xi, out=oi)
        at_in, at_out = at_in + p * n_in, at_out + p * n_out
    return out


class _BlockContraction(torch.autograd.Function):
    """The β-contraction :func:`_block_bmm`; its backward is the same with the tables transposed.

    One preallocated output instead of per-block results joined by ``cat`` (whose backward
    would split and join again); the tables are constants.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, tables: tuple[torch.Tensor, ...], transpose: bool,  # noqa: ANN001
                workspace: Workspace | None = None) -> torch.Tensor:
        ctx.tables, ctx.transpose = tables, transpose
        return _block_bmm(x, tables, transpose, workspace)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return _BlockContraction.apply(grad.contiguous(), ctx.tables, not ctx.transpose), None, None, None


class SO3FFT(_SO3Transform):
    """Forward SO(3) transform: ``[..., *grid.shape]`` → ``[..., L(4L²−1)/3]`` (real Wigner basis).

    ``L`` (≤ grid.L, default grid.L) truncates the output: coarsening by lowering the bandlimit.
    """

    def __init__(self, grid: SO3Grid, L: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(grid, L, dtype, forward=True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        self.grid.check(f, "f")
        self._check_dtype(f, "f")
        batch = f.shape[:-3]
        B = math.prod(batch)
        f = f.reshape(B, *self.grid.shape)
        if B == 0:  # the FFT libraries reject empty arrays: the zero map keeps the result in the autograd graph
            n, K = math.prod(self.grid.shape), num_so3_coeffs(self.L)
            return (f.reshape(0, n) @ f.new_zeros(n, K)).reshape(*batch, K)
        if self.L == 1:
            return (f.reshape(B, -1) @ self.haar_weights).reshape(*batch, 1)
        # Σ_{α,γ} f e^{−imα} e^{−inγ} for n ≥ 0, pair-major: [(m, n), β, 2B]
        ws = self._intermediate_workspace(f)
        pairs = _GridToPairs.apply(f, self.L, self.workspace, ws is not None)
        if B == 1 and self.single_signal:
            rows = self._single_contraction(pairs)  # [(pair, ℓ), 2]
            return self._change_of_basis(rows.view(-1)).reshape(*batch, -1)
        return self.from_pairs(pairs).T.reshape(*batch, -1)

    def from_pairs(self, pairs: torch.Tensor) -> torch.Tensor:
        """The forward's second half for B signals: their unnormalized 2-D spectra in the pair-major layout
        ``[2L−1 (m = −L+1 … L−1), L (n ≥ 0), β, B, 2]`` → coefficients ``[L(4L²−1)/3, B]`` (coefficient-major).
        With :meth:`InverseSO3FFT.to_pairs` it lets a pointwise map run between the FFTs in batch chunks
        (:func:`sphcnn.spectral._grid_relu.relu_between`)."""
        B = pairs.shape[3]
        ws = self._intermediate_workspace(pairs)
        rows = _BlockContraction.apply(pairs.view(-1, 2 * B), self._tables(), False, ws).view(-1, 2 * B)
        # two rows per coefficient, gathered whole (index_select of contiguous rows is fast)
        n_src = self.basis_src.numel()
        picked = torch.index_select(rows, 0, self.basis_src, **_out(ws, "picked", (n_src, 2 * B), rows)).view(-1, 2, B, 2)
        # [N, 2 rows, 1, 2 parts] weights; multiply-adds in place beat a strided reduction, and unbind
        # (not indexing) keeps the backward to one stacked gradient instead of one zero-filled copy per term
        terms = [t for row in picked.permute(1, 3, 0, 2).unbind(0) for t in row.unbind(0)]  # (row, part)
        w = self.basis_weight
        out = terms[0] * w[:, 0, :, 0]  # [N, B]
        for t, (row, part) in zip(terms[1:], ((0, 1), (1, 0), (1, 1))):
            out = out.addcmul_(t, w[:, row, :, part])
        return out


# torch's CPU FFT allocates its result: in batch chunks of at most this many bytes it stays small enough
# for the allocator to reuse and for the copy into pairs to read from cache (the s2cnn network on 2 threads,
# three alternating profiles: this stage's r2c 15–18 vs 19–30 ms per step, fewer page faults)
_TORCH_SPECTRUM_CHUNK_BYTES = 1 << 22


def _grid_to_pairs(f: torch.Tensor, L: int, workspace: Workspace | None = None, scratch_output: bool = False,
                   scale: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Samples ``[B, β, n, n]`` → unnormalized 2-D spectrum, pair-major ``[2L−1 (m = −L+1 … L−1), L (n), β, B, 2]``,
    times ``scale[n]`` if given (the full 2-D spectrum, consumed here, in ``workspace``; with ``scratch_output``
    the result too, overwritten by the next call; or into ``out``, a view of that shape with unit last stride)."""
    B, n_beta, n_alpha, _ = f.shape
    if out is None:
        out = scratch(workspace if scratch_output else None, "pairs", (2 * L - 1, L, n_beta, B, 2), f)
    bins = torch.view_as_complex(out)  # copying whole complex numbers: ~20 % faster than (…, 2) pairs
    backend = fft2_backend(f, n_alpha)
    scale = None if scale is None else scale.view(-1, 1, 1)  # over n in [m, n, β, B]
    chunked = backend == "torch" and f.device.type == "cpu"
    spectrum_bytes = bins.element_size() * n_beta * n_alpha * (n_alpha // 2 + 1)
    for b0, b1 in batch_ranges(B, spectrum_bytes, _TORCH_SPECTRUM_CHUNK_BYTES if chunked else None):
        spec = rfft2(f[b0:b1], backend, workspace)
        for rows, m_rows in ((bins[: L - 1], slice(n_alpha - L + 1, None)), (bins[L - 1:], slice(None, L))):
            _copy_scaled(spec[:, :, m_rows, :L].permute(2, 3, 1, 0), rows[..., b0:b1], scale)
    return out


def _pairs_to_grid(pairs: torch.Tensor, n: int, workspace: Workspace | None = None,
                   scale: torch.Tensor | None = None) -> torch.Tensor:
    """The adjoint layout of :func:`_grid_to_pairs` (pairs times ``scale[n]`` if given), then
    f = Re Σ_{m, n ≥ 0} c_n S_mn e^{i(mα + nγ)} (c_0 = 1, c_n = 2: an unnormalized inverse real FFT; bins of
    orders ≥ L are zero)."""
    L, n_beta, B = pairs.shape[1], pairs.shape[2], pairs.shape[3]
    bins = torch.view_as_complex(pairs if _complex_viewable(pairs) else pairs.contiguous())
    spec = scratch(workspace, "spectrum", (B, n_beta, n, n // 2 + 1), bins)
    spec[:, :, L:n - L + 1].zero_()  # orders |m| ≥ L
    spec[..., L:].zero_()  # orders n ≥ L
    for rows, m_rows in ((bins[: L - 1], slice(n - L + 1, None)), (bins[L - 1:], slice(None, L))):
        _copy_scaled(rows.permute(3, 2, 0, 1), spec[:, :, m_rows, :L], scale)  # scale over n, the last dim
    return irfft2(spec, n, fft2_backend(spec, n, inverse=True))


def _complex_viewable(t: torch.Tensor) -> bool:
    """Whether ``torch.view_as_complex`` takes ``t`` as it is (a batch slice of the pair layout does)."""
    return t.stride(-1) == 1 and t.storage_offset() % 2 == 0 and all(st % 2 == 0 for st in t.stride()[:-1])


def _copy_scaled(src: torch.Tensor, dst: torch.Tensor, scale: torch.Tensor | None) -> None:
    """dst ← src (· scale): the scaling rides on the copy between layouts instead of a pass of its own over a
    fresh tensor (the s2cnn network's backward scaled its 20 MB pair spectra that way, twice per step)."""
    if scale is None:
        dst.copy_(src)
    else:
        torch.mul(src, scale, out=dst)


class _GridToPairs(torch.autograd.Function):
    """Samples ``[B, β, n_α, n_γ]`` → unnormalized 2-D spectrum, pair-major ``[2L−1, L, β, B, 2]``, times
    ``scale[n]`` if given.

    Hand-written adjoints: autograd's own would go through a full complex FFT of the
    zero-padded spectrum and allocate a full-size gradient per slice.
    """

    @staticmethod
    def forward(ctx, f: torch.Tensor, L: int, workspace: Workspace | None = None,  # noqa: ANN001
                scratch_output: bool = False, scale: torch.Tensor | None = None) -> torch.Tensor:
        ctx.n_gamma, ctx.workspace, ctx.scale = f.shape[-1], workspace, scale
        return _grid_to_pairs(f, L, workspace, scratch_output, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        w = half_spectrum_weight(grad.shape[1], ctx.n_gamma, grad)  # irfft counts n > 0 twice
        scale = w if ctx.scale is None else w * ctx.scale
        return _PairsToGrid.apply(grad, ctx.n_gamma, ctx.workspace, scale), None, None, None, None


class _PairsToGrid(torch.autograd.Function):
    """Pairs (times ``scale[n]`` if given) → samples by :func:`_pairs_to_grid`; the adjoint of
    :class:`_GridToPairs` up to c_n."""

    @staticmethod
    def forward(ctx, pairs: torch.Tensor, n_gamma: int, workspace: Workspace | None = None,  # noqa: ANN001
                scale: torch.Tensor | None = None) -> torch.Tensor:
        ctx.L, ctx.n_gamma, ctx.workspace, ctx.scale = pairs.shape[1], n_gamma, workspace, scale
        return _pairs_to_grid(pairs, n_gamma, workspace, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        inverse_w = 1 / half_spectrum_weight(ctx.L, ctx.n_gamma, grad)
        scale = inverse_w if ctx.scale is None else inverse_w * ctx.scale
        return _GridToPairs.apply(grad, ctx.L, ctx.workspace, False, scale), None, None, None


class InverseSO3FFT(_SO3Transform):
    """Inverse SO(3) transform: ``[..., L(4L²−1)/3]`` → ``[..., *grid.shape]``; L ≤ grid.L zero-pads."""

    def __init__(self, grid: SO3Grid, L: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(grid, L, dtype, forward=False)

    def forward(self, F: torch.Tensor) -> torch.Tensor:
        L = self.L
        if not isinstance(F, torch.Tensor) or F.dim() < 1 or F.shape[-1] != num_so3_coeffs(L):
            shape = tuple(F.shape) if isinstance(F, torch.Tensor) else type(F).__name__
            raise ValueError(f"SO(3) coefficients must have shape [..., L(4L²−1)/3] = [..., {num_so3_coeffs(L)}] "
                             f"for L={L}, got {shape}")
        self._check_dtype(F, "F")
        batch = F.shape[:-1]
        Ft = F.reshape(-1, F.shape[-1]).T  # [coeffs, B]
        B, (n_beta, n_ag, _) = Ft.shape[1], self.grid.shape
        if B == 0:
            return (Ft.T @ F.new_zeros(F.shape[-1], math.prod(self.grid.shape))).reshape(*batch, *self.grid.shape)
        if B == 1 and self.single_signal:
            rows = self._change_of_basis(F.reshape(-1))  # [(pair, ℓ, part)]
            pairs = self._single_contraction(rows)  # [(pair, β), 2]
            f = _PairsToGrid.apply(pairs.view(2 * L - 1, L, n_beta, 1, 2), n_ag, self.workspace)
            return f.reshape(*batch, *self.grid.shape)
        f = _PairsToGrid.apply(self.to_pairs(Ft), n_ag, self.workspace)
        return f.reshape(*batch, *self.grid.shape)

    def to_pairs(self, Ft: torch.Tensor) -> torch.Tensor:
        """The inverse's first half for B signals: coefficients ``[L(4L²−1)/3, B]`` → the conjugate 2-D spectra
        in the pair-major layout of :meth:`SO3FFT.from_pairs`, which :func:`_pairs_to_grid` turns into samples."""
        ws = self._intermediate_workspace(Ft)
        B, n_beta = Ft.shape[1], self.grid.shape[0]
        rows = self._conjugate_rows(Ft, ws)
        # f = Σ H e^{−imα−inγ} = Re Σ H̄ e^{+i…}: an inverse real FFT of H̄ summed over β (n ≥ 0 half)
        pairs = _BlockContraction.apply(rows.view(-1, 2 * B), self._tables(), False, ws)  # [(pair, β), 2B]
        return pairs.view(2 * self.L - 1, self.L, n_beta, B, 2)

    def _conjugate_rows(self, Ft: torch.Tensor, ws: Workspace | None) -> torch.Tensor:
        """conj H = Σ_t coef_t F[src_t]: coefficients ``[coeffs, B]`` → rows ``[(pair, ℓ), B, 2]`` of the
        complex basis (its gathers and partial sums are freed on return)."""
        B = Ft.shape[1]
        Fc = Ft.contiguous() if ws is None else ws.empty("coefficients", tuple(Ft.shape), Ft).copy_(Ft)
        n_src = self.basis_src.numel()
        gathered = torch.index_select(Fc, 0, self.basis_src, **_out(ws, "gathered", (n_src, B), Ft))
        gathered = gathered.view(4, -1, B).unbind(0)  # 4 × [rows, B]
        parts = []
        for name, coef in (("real", self.basis_a), ("imag", self.basis_b)):
            acc = torch.mul(gathered[0], coef[0], **_out(ws, name, (n_src // 4, B), Ft))
            for t in range(1, 4):
                acc = acc.addcmul_(gathered[t], coef[t])
            parts.append(acc)
        return torch.stack(parts, dim=-1, **_out(ws, "rows", (n_src // 4, B, 2), Ft))


def so3_fft(f: torch.Tensor, grid: SO3Grid, L: int | None = None) -> torch.Tensor:
    """SO(3) coefficients of samples ``f [..., *grid.shape]`` (see module docstring for the normalization)."""
    grid.check(f, "f")
    return cached_module(SO3FFT, grid, f.dtype, f.device, L=L)(f)


def so3_ifft(F: torch.Tensor, grid: SO3Grid) -> torch.Tensor:
    """Samples on ``grid`` of the function with SO(3) coefficients ``F [..., L(4L²−1)/3]``, L ≤ grid.L."""
    if not isinstance(F, torch.Tensor) or not F.is_floating_point():
        raise TypeError("SO(3) coefficients must be a float32 or float64 tensor")
    L = so3_bandlimit(F.shape[-1])
    if L > grid.L:
        raise ValueError(f"coefficients of bandlimit L={L} do not fit an SO3Grid of L={grid.L}")
    return cached_module(InverseSO3FFT, grid, F.dtype, F.device, L=L)(F)


def _blocks(x: torch.Tensor, L: int, size) -> list[torch.Tensor]:  # noqa: ANN001
    out, off = [], 0
    for ell in range(L):
        n = size(ell)
        out.append(x[..., off: off + n])
        off += n
    return out


def s2_correlation(f_hat: torch.Tensor, psi_hat: torch.Tensor) -> torch.Tensor:
    """SO(3) coefficients of [ψ ⋆ f](R) = ∫_{S²} f(x) ψ(R⁻¹x) dx, from real SH coefficients ``[..., L²]``.

    Per degree: F^ℓ = f̂_ℓ ψ̂_ℓᵀ / (2ℓ+1). Leading dims broadcast.
    """
    L = int(round(f_hat.shape[-1] ** 0.5))
    if L * L != f_hat.shape[-1] or f_hat.shape[-1] != psi_hat.shape[-1]:
        raise ValueError(f"f_hat and psi_hat must both have trailing length L², got {f_hat.shape[-1]} and "
                         f"{psi_hat.shape[-1]}")
    fb = _blocks(f_hat, L, lambda ell: 2 * ell + 1)
    pb = _blocks(psi_hat, L, lambda ell: 2 * ell + 1)
    return torch.cat([(a.unsqueeze(-1) * b.unsqueeze(-2) / (2 * ell + 1)).flatten(-2)
                      for ell, (a, b) in enumerate(zip(fb, pb))], dim=-1)


def so3_correlation(F_hat: torch.Tensor, Psi_hat: torch.Tensor) -> torch.Tensor:
    """SO(3) coefficients of [ψ ⋆ f](R) = ∫ f(Q) ψ(R⁻¹Q) dQ: per degree G^ℓ = F^ℓ Ψ^ℓᵀ."""
    if F_hat.shape[-1] != Psi_hat.shape[-1]:
        raise ValueError(f"F_hat and Psi_hat must have the same trailing length, got {F_hat.shape[-1]} and "
                         f"{Psi_hat.shape[-1]}")
    L = so3_bandlimit(F_hat.shape[-1])
    fb = _blocks(F_hat, L, lambda ell: (2 * ell + 1) ** 2)
    pb = _blocks(Psi_hat, L, lambda ell: (2 * ell + 1) ** 2)
    out = []
    for ell, (a, b) in enumerate(zip(fb, pb)):
        n = 2 * ell + 1
        out.append((a.unflatten(-1, (n, n)) @ b.unflatten(-1, (n, n)).transpose(-1, -2)).flatten(-2))
    return torch.cat(out, dim=-1)
