"""The Legendre stage of the SHT: order-m ring Fourier coefficients ↔ real SH coefficients.

Analysis contracts X[m, ring, batch] (Σ_k f e^{−imφ_k} per ring) with the
weighted table λ_ℓm(θ_r) w_r; synthesis expands coefficients back to
W[m, ring, batch]. Both use the equatorial symmetry λ_ℓm(π − θ) =
(−1)^{ℓ+m} λ_ℓm(θ): ring r and its mirror R−1−r are folded into their sum
(even ℓ+m) and difference (odd ℓ+m), so only northern rings are stored and
each block of orders m costs two half-size matmuls.

The two directions are written as mutually adjoint kernels (``contract`` and
``expand``) behind autograd Functions, so each one's backward is the other with
the same table transposed: no autograd graph of slices and gathers, double
backward for free. Each matmul writes into one preallocated buffer. The
batch and the real/imaginary parts stay interleaved as the FFT returns them:
every elementwise step runs over contiguous memory, and the single reordering
between block rows and coefficients is one gather with a cached index.
(Moving two-element chunks, as de-interleaving does, ran 3–10× slower per
element in torch's CPU kernels. Splitting the gather or the m-blocks over
Python threads gains nothing once torch's OpenMP threads spin-wait between
ops, as libgomp lets them: see :mod:`sphcnn.spectral._fft`.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._tables import TableModule
from ._workspace import Workspace, scratch
from .grids import S2Grid
from .legendre import legendre_block

# Orders m are processed in blocks sharing one matmul: fewer, larger calls vs. zero padding (rows ℓ < m).
# At least 32 orders per block: on 2 threads small calls cost more in thread wake-ups than in flops
# (L = 128 float32, forward + inverse: 16 blocks 12–14 ms, 4 blocks 8–10 ms; 1 thread ≈ 7 ms either way).
M_BLOCKS = 16
MIN_M_BLOCK = 32


@dataclass(frozen=True)
class RingPlan:
    """Ring geometry and the row layout of the block outputs of one grid (float64, numpy).

    Rows of the block outputs, in order: per m-block, even then odd parity,
    (m, d) row-major with degree ℓ = m + d; each row holds two parts, the
    cosine (m ≥ 0) and sine (m < 0) coefficients. Rows with ℓ ≥ L are padding.
    """

    L: int
    n_rings: int
    n_north: int  # rings 0 … n_north − 1 have θ ≤ π/2 (pole and equator included)
    pair_start: int  # northern rings pair_start + k, k < n_pairs, have the mirror ring …
    n_pairs: int
    south_start: int  # … south_start + n_pairs − 1 − k; other northern rings have none
    unpaired: tuple[int, ...]  # northern rings without a mirror: a pole, or the equator (its own mirror)
    theta_north: np.ndarray
    weight_north: np.ndarray  # quadrature weight per point of each northern ring
    m_blocks: tuple[tuple[int, int], ...]
    row_offsets: tuple[tuple[int, int], ...]  # (even, odd) first row of each block
    n_rows: int
    gather: np.ndarray  # coefficient ℓ²+ℓ+m → index 2·row + part
    scatter: np.ndarray  # 2·row + part → coefficient index (L² for padding)

    @staticmethod
    def build(grid: S2Grid, L: int) -> RingPlan:
        theta = np.asarray(grid.ring_theta, dtype=np.float64)
        R = theta.size
        north = np.flatnonzero(theta <= math.pi / 2 + 1e-12)
        n_north = north.size
        mirror = [np.flatnonzero(np.abs(theta - (math.pi - theta[r])) < 1e-10) for r in north]
        paired = np.array([r for r, mir in zip(north, mirror) if mir.size and mir[0] != r], dtype=np.int64)
        south = np.array([mir[0] for r, mir in zip(north, mirror) if mir.size and mir[0] != r], dtype=np.int64)
        # the fast path slices: northern rings 0 … n_north−1, paired ones contiguous, their mirrors in reverse
        pair_start, n_pairs = (int(paired[0]), paired.size) if paired.size else (0, 0)
        layout_ok = (np.array_equal(north, np.arange(n_north)) and np.all(np.diff(paired) == 1)
                     and np.all(np.diff(south) == -1)
                     and sorted(north.tolist() + south.tolist()) == list(range(R)))
        if not layout_ok:
            raise ValueError(f"{grid.kind} grid: rings must be sorted by colatitude and symmetric about the equator")
        if grid.kind == "healpix":
            weights = np.full(R, 4 * math.pi / grid.shape[0])
        else:
            weights = grid.weights[:, 0].numpy()

        block = max(MIN_M_BLOCK, -(-L // M_BLOCKS))
        m_blocks = tuple((m0, min(m0 + block, L)) for m0 in range(0, L, block))
        offsets, row_of, pos = [], {}, 0
        for m0, m1 in m_blocks:
            starts = []
            for parity in (0, 1):
                starts.append(pos)
                for m in range(m0, m1):
                    for d in range(parity, L - m0, 2):
                        if m + d < L:
                            row_of[(m, m + d)] = pos
                        pos += 1
            offsets.append(tuple(starts))
        gather = np.zeros(L * L, dtype=np.int64)
        scatter = np.full(2 * pos, L * L, dtype=np.int64)
        for (m, ell), row in row_of.items():
            gather[ell * ell + ell + m] = 2 * row
            scatter[2 * row] = ell * ell + ell + m
            if m > 0:
                gather[ell * ell + ell - m] = 2 * row + 1
                scatter[2 * row + 1] = ell * ell + ell - m
        return RingPlan(L=L, n_rings=R, n_north=n_north, pair_start=pair_start, n_pairs=n_pairs,
                        south_start=int(south[-1]) if n_pairs else R,
                        unpaired=tuple(r for r in range(n_north) if not pair_start <= r < pair_start + n_pairs),
                        theta_north=theta[:n_north],
                        weight_north=weights[:n_north], m_blocks=m_blocks, row_offsets=tuple(offsets),
                        n_rows=pos, gather=gather, scatter=scatter)

    def table_bytes(self, itemsize: int) -> int:
        return sum((m1 - m0) * (self.L - m0) * self.n_north for m0, m1 in self.m_blocks) * itemsize

    def block_tables(self, m0: int, m1: int, forward: bool) -> tuple[np.ndarray, np.ndarray]:
        """(even, odd) parity tables of one m-block, float64 ``[m1−m0, n_d, n_north]`` (synthesis: transposed)."""
        lam = legendre_block(self.L, self.theta_north, m0, m1)
        lam = lam * np.where(np.arange(m0, m1) == 0, 1.0, math.sqrt(2))[:, None, None]
        if forward:
            lam = lam * self.weight_north[None, None, :]
            return lam[:, 0::2], lam[:, 1::2]
        # synthesis contracts over degrees: store [m, ring, d] so its matmul reads a contiguous table
        return tuple(np.ascontiguousarray(t.transpose(0, 2, 1)) for t in (lam[:, 0::2], lam[:, 1::2]))


class RingLegendre(TableModule):
    """Legendre contraction of one direction (``forward``: analysis) with its adjoint, for autograd."""

    def __init__(self, grid: S2Grid, L: int, forward: bool, dtype: torch.dtype, max_table_bytes: int) -> None:
        super().__init__()
        self.plan = RingPlan.build(grid, L)
        self.is_forward = forward
        self.stored = self.plan.table_bytes(torch.finfo(dtype).bits // 8) <= max_table_bytes
        self._index_cache: dict[tuple[str, int, torch.device], torch.Tensor] = {}
        self.workspace = Workspace()
        south = torch.arange(self.plan.south_start + self.plan.n_pairs - 1, self.plan.south_start - 1, -1)
        self.register_buffer("south", south, persistent=False)  # mirror ring of each paired northern ring
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        # m < 0 coefficients pair with −Im X (X = Σ f e^{−imφ}): one sign per coefficient
        sign = np.where(np.concatenate([np.arange(-ell, ell + 1) for ell in range(self.plan.L)]) < 0, -1.0, 1.0)
        self.register_buffer("sign", torch.from_numpy(sign).to(dtype=dtype, device=device),
                             persistent=False)
        for i, (m0, m1) in enumerate(self.plan.m_blocks):
            even = odd = None
            if self.stored:
                even, odd = (torch.from_numpy(t).to(dtype=dtype, device=device)
                             for t in self.plan.block_tables(m0, m1, self.is_forward))
            self.register_buffer(f"even_{i}", even, persistent=False)
            self.register_buffer(f"odd_{i}", odd, persistent=False)

    def _tables(self, i: int, rings_to_rows: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Block i's (even, odd) tables as the map rings → rows (``[mb, n_d, n_north]``) or its transpose."""
        if self.stored:
            tables = getattr(self, f"even_{i}"), getattr(self, f"odd_{i}")
        else:
            tables = tuple(torch.from_numpy(t).to(dtype=self.table_dtype, device=self.sign.device)
                           for t in self.plan.block_tables(*self.plan.m_blocks[i], self.is_forward))
        if rings_to_rows != self.is_forward:
            return tuple(t.transpose(1, 2) for t in tables)
        return tables

    def _flat_index(self, kind: str, B: int, device: torch.device) -> torch.Tensor:
        """Flat gather index between coefficients and block rows ``[n_rows, B, part]``, cached per batch size.

        Rows keep the batch and the (cos, sin) part interleaved as the FFT returns them, so no
        step moves two-element chunks; the one reordering is this gather. Coefficients are read
        and written coefficient-major (``[L², B]``, each coefficient's batch contiguous): at L = 512
        a batch-major gather took 1.6× as long (scattered reads), and torch's transposing copy
        as long again, so the forward returns the ``[B, L²]`` view of a coefficient-major tensor.
        kind: "rows→coeffs", "coeffs→rows" (coefficient-major input), "batch-major coeffs→rows".
        """
        key = (kind, B, device)
        if key not in self._index_cache:
            p, LL, b = self.plan, self.plan.L * self.plan.L, torch.arange(B)
            if kind == "rows→coeffs":  # c[k, b] ← rows[row_k, b, part_k]
                gather = torch.from_numpy(p.gather)
                part = gather % 2
                index = (B * (gather - part) + part)[:, None] + 2 * b[None, :]
            else:  # rows[row, b, part] ← c[k, b] (k = L² reads zeros)
                scatter = torch.from_numpy(p.scatter).view(p.n_rows, 1, 2)
                index = scatter * B + b.view(1, B, 1) if kind == "coeffs→rows" else scatter + (LL + 1) * b.view(1, B, 1)
            if len(self._index_cache) >= 8:
                self._index_cache.pop(next(iter(self._index_cache)))
            self._index_cache[key] = index.reshape(-1).to(device)
        return self._index_cache[key]

    def contract(self, X: torch.Tensor) -> torch.Tensor:
        """Complex ``X [L, rings, B]`` → real coefficients ``[B, L²]`` (analysis, or synthesis's adjoint).

        The result is the transposed view of a contiguous ``[L², B]`` tensor (see :meth:`_flat_index`).
        """
        p, B = self.plan, X.shape[-1]
        h, hn, p0 = p.n_pairs, p.n_north, p.pair_start
        Xr = torch.view_as_real(X)  # [L, R, B, 2]
        rows = self.workspace.empty("contract rows", (p.n_rows, 2 * B), Xr)

        # fold each ring with its mirror: (north + south, north − south)
        even, odd = self.workspace.empty("contract fold", (2, p.L, hn, B, 2), Xr).unbind(0)
        north, south = Xr[:, p0:p0 + h], odd[:, p0:p0 + h]
        torch.index_select(Xr, 1, self.south, out=south)  # the mirror rings, in place of a flipped copy
        torch.add(north, south, out=even[:, p0:p0 + h])
        torch.sub(north, south, out=south)
        for r in p.unpaired:
            even[:, r] = Xr[:, r]
            odd[:, r] = Xr[:, r]
        for i, ((m0, m1), offsets) in enumerate(zip(p.m_blocks, p.row_offsets)):
            mb = m1 - m0
            for table, inp, at in zip(self._tables(i, rings_to_rows=True), (even, odd), offsets):
                n_d = table.shape[1]
                torch.bmm(table, inp[m0:m1].view(mb, hn, 2 * B), out=rows[at: at + mb * n_d].view(mb, n_d, 2 * B))
        c = torch.index_select(rows.view(-1), 0, self._flat_index("rows→coeffs", B, X.device))
        return c.view(p.L * p.L, B).mul_(self.sign[:, None]).T

    def expand(self, c: torch.Tensor, scratch_output: bool = False) -> torch.Tensor:
        """Real coefficients ``c [B, L²]`` → complex ``W [L, rings, B]`` (synthesis, or analysis's adjoint); W is
        a workspace buffer, overwritten by the next call, with ``scratch_output``."""
        p, B = self.plan, c.shape[0]
        h, hn, p0, LL = p.n_pairs, p.n_north, p.pair_start, p.L * p.L
        if c.T.is_contiguous():  # coefficient-major, as the forward returns them
            padded = self.workspace.empty("expand coefficients", (LL + 1, B), c)
            torch.mul(c.T, self.sign[:, None], out=padded[:LL])
            padded[LL] = 0
            kind = "coeffs→rows"
        else:
            padded = self.workspace.empty("expand coefficients", (B, LL + 1), c)
            torch.mul(c, self.sign, out=padded[:, :LL])
            padded[:, LL] = 0
            kind = "batch-major coeffs→rows"
        rows = self.workspace.empty("expand rows", (p.n_rows, 2 * B), c)
        torch.index_select(padded.view(-1), 0, self._flat_index(kind, B, c.device), out=rows.view(-1))
        W = scratch(self.workspace if scratch_output else None, "expand output", (p.L, p.n_rings, B, 2), c)

        even, odd = self.workspace.empty("expand fold", (2, p.L, hn, B, 2), c).unbind(0)
        for i, ((m0, m1), offsets) in enumerate(zip(p.m_blocks, p.row_offsets)):
            mb = m1 - m0
            for table, out, at in zip(self._tables(i, rings_to_rows=False), (even, odd), offsets):
                n_d = table.shape[2]
                torch.bmm(table, rows[at: at + mb * n_d].view(mb, n_d, 2 * B), out=out[m0:m1].view(mb, hn, 2 * B))
        torch.add(even, odd, out=W[:, :hn])  # north: λ_even + λ_odd; its mirror: λ_even − λ_odd
        W.index_copy_(1, self.south, even.sub_(odd)[:, p0:p0 + h])
        return torch.view_as_complex(W)

    def analysis(self, X: torch.Tensor) -> torch.Tensor:
        return _LegendreMap.apply(X, self, False)

    def synthesis(self, c: torch.Tensor, scratch_output: bool = False) -> torch.Tensor:
        return _LegendreMap.apply(c, self, True, scratch_output)


class _LegendreMap(torch.autograd.Function):
    """``stage.contract`` or ``stage.expand``; the backward of each is the other."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, stage: RingLegendre, expand: bool,  # noqa: ANN001
                scratch_output: bool = False) -> torch.Tensor:
        ctx.stage, ctx.expand = stage, expand
        return stage.expand(x, scratch_output) if expand else stage.contract(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return _LegendreMap.apply(grad, ctx.stage, not ctx.expand), None, None, None
