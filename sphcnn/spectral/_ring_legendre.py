"""The Legendre stage of the SHT: ring slabs of orders m ↔ real SH coefficients, and the equatorial fold.

Analysis contracts the cosine and sine sums of each order m over rings (the slabs of
:mod:`sphcnn.spectral._ring_fft`) with the weighted table λ_ℓm(θ_r) w_r; synthesis
expands coefficients back to slabs. Both use the equatorial symmetry λ_ℓm(π − θ) =
(−1)^{ℓ+m} λ_ℓm(θ): before the ring FFT, :func:`fold_rings` turns each northern ring
and its mirror into their sum (the even parity ℓ + m sees only it) and difference (odd),
so only northern rings are stored and every block of orders m costs half-size matmuls;
:func:`unfold_rings`, its adjoint, undoes it after the synthesis FFT. Folding the samples
(contiguous rows, the mirror read through a negative-stride view) rather than the
spectra lets the FFT write straight into the matmuls' input, with no transposing pass.

The cosine and sine planes of an order are separate ``[rings, batch]`` planes, so one
matmul per block and parity (the two planes of an order share the table: a broadcast
batch) writes rows of whole batches, and the one reordering between block rows and
coefficients ``ℓ² + ℓ + m`` moves rows of ``batch`` values with an L²-entry index
(a gather of single interleaved elements, as complex spectra need, took 3–10× as long).
The two directions (``contract`` and ``expand``) are mutually adjoint with the same
table; :mod:`sphcnn.spectral.sht` makes each whole transform's backward the other one.

Engines: the matmuls, gathers and folds of a call run either all in numpy (OpenBLAS, one
thread for these small matrices) or all in torch (MKL and torch's OpenMP pool). A numpy
pipeline wakes no OpenMP team, whose threads would spin for milliseconds after each
parallel op and take the second core from the FFT's own threads (see
:mod:`sphcnn.spectral._fft`); torch's kernels are multithreaded. Which wins depends on
the size, dtype and machine, so :mod:`sphcnn.spectral.sht` times whole transforms with
each, once per size. Off the CPU: torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ._tables import TableModule
from ._workspace import Workspace, fresh
from .grids import S2Grid
from .legendre import legendre_block

# Orders m are processed in blocks sharing one matmul: fewer, larger calls vs. zero padding (rows ℓ < m).
# At least 32 orders per block: on 2 threads small calls cost more in thread wake-ups than in flops
# (L = 128 float32, forward + inverse: 16 blocks 12–14 ms, 4 blocks 8–10 ms; 1 thread ≈ 7 ms either way).
M_BLOCKS = 16
MIN_M_BLOCK = 32


@dataclass(frozen=True)
class Region:
    """Rows ``[start, start + 2·(m1 − m0)·n_d)`` of the block outputs: orders m0 … m1 − 1, degrees ℓ = m + d for
    d ≡ parity (mod 2), d < L − m0; the cosine (part 0) and sine (part 1) rows of (m, d) are
    ``start + (2·(m − m0) + part)·n_d + d // 2``."""

    block: int
    parity: int
    m0: int
    m1: int
    n_d: int
    start: int

@dataclass(frozen=True)
class RingPlan:
    """Ring geometry and the row layout of the block outputs of one grid (float64, numpy)."""

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
    regions: tuple[Region, ...]
    n_rows: int
    gather: np.ndarray  # coefficient ℓ²+ℓ+m → its row
    scatter: np.ndarray  # row → coefficient index (L² for padding: ℓ ≥ L, and the unused sine plane of m = 0)

    @property
    def north(self) -> slice:
        return slice(0, self.n_north, 1)

    @property
    def south(self) -> slice:
        """The mirrors of the paired northern rings, in their order."""
        return slice(self.south_start + self.n_pairs - 1, self.south_start - 1, -1)

    @staticmethod
    def build(grid: S2Grid, L: int) -> RingPlan:
        theta = np.asarray(grid.ring_theta, dtype=np.float64)
        R = theta.size
        north = np.flatnonzero(theta <= math.pi / 2 + 1e-12)
        n_north = north.size
        mirror = [np.flatnonzero(np.abs(theta - (math.pi - theta[r])) < 1e-10) for r in north]
        paired = np.array([r for r, mir in zip(north, mirror) if mir.size and mir[0] != r], dtype=np.int64)
        south = np.array([mir[0] for r, mir in zip(north, mirror) if mir.size and mir[0] != r], dtype=np.int64)
        # the ring FFT reads slices: northern rings 0 … n_north−1, paired ones contiguous, their mirrors in reverse
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
        regions, pos = [], 0
        for i, (m0, m1) in enumerate(m_blocks):
            for parity in (0, 1):
                n_d = len(range(parity, L - m0, 2))
                regions.append(Region(i, parity, m0, m1, n_d, pos))
                pos += 2 * (m1 - m0) * n_d
        gather = np.zeros(L * L, dtype=np.int64)
        scatter = np.full(pos, L * L, dtype=np.int64)
        for r in regions:
            for m in range(r.m0, r.m1):
                ells = np.arange(m + r.parity, L, 2)
                for part in (0, 1) if m > 0 else (1,):  # m = 0: one cosine plane, in the place of a sine plane
                    rows = r.start + (2 * (m - r.m0) + part) * r.n_d + (ells - m) // 2
                    coeffs = ells * ells + ells + (-m if part == 1 and m > 0 else m)
                    gather[coeffs] = rows
                    scatter[rows] = coeffs
        return RingPlan(L=L, n_rings=R, n_north=n_north, pair_start=pair_start, n_pairs=n_pairs,
                        south_start=int(south[-1]) if n_pairs else R,
                        unpaired=tuple(r for r in range(n_north) if not pair_start <= r < pair_start + n_pairs),
                        theta_north=theta[:n_north], weight_north=weights[:n_north], m_blocks=m_blocks,
                        regions=tuple(regions), n_rows=pos, gather=gather, scatter=scatter)

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


Engine = Literal["numpy", "torch"]

# The scratch buffers of every S² transform (this stage's rows, the ring stage's folds and slabs), per thread: they
# never outlive a call, so a forward and an inverse transform share one set, and their working set stays smaller.
SCRATCH = Workspace()


def fold_rings(plan: RingPlan, x: torch.Tensor, out: torch.Tensor, engine: Engine) -> None:
    """``out [2, B, n_north, n]``: the sums x_r + x_r' and differences x_r − x_r' of the northern rings r of
    ``x [B, R, n]`` and their mirrors r' (both x_r where r has none: a pole, or the equator)."""
    a, b = plan.pair_start, plan.pair_start + plan.n_pairs
    if engine == "numpy":
        xn, on = x.detach().numpy(), out.numpy()
        north, south = xn[:, a:b], xn[:, plan.south]
        np.add(north, south, out=on[0, :, a:b])
        np.subtract(north, south, out=on[1, :, a:b])
    else:
        north, south = x[:, a:b], x[:, plan.south_start:plan.south_start + plan.n_pairs].flip(1)
        torch.add(north, south, out=out[0, :, a:b])
        torch.sub(north, south, out=out[1, :, a:b])
    for r in plan.unpaired:
        out[:, :, r] = x[:, r]


def unfold_rings(plan: RingPlan, F: torch.Tensor, out: torch.Tensor, engine: Engine) -> None:
    """The adjoint of :func:`fold_rings`: the rings ``out [B, R, n]`` from ``F [2, B, n_north, n]`` (ring r: even +
    odd, its mirror: even − odd)."""
    a, b = plan.pair_start, plan.pair_start + plan.n_pairs
    if engine == "numpy":
        Fn, on = F.numpy(), out.numpy()
        np.add(Fn[0, :, a:b], Fn[1, :, a:b], out=on[:, a:b])
        np.subtract(Fn[0, :, a:b], Fn[1, :, a:b], out=on[:, plan.south])
    else:
        torch.add(F[0, :, a:b], F[1, :, a:b], out=out[:, a:b])
        out[:, plan.south_start:plan.south_start + plan.n_pairs] = (F[0, :, a:b] - F[1, :, a:b]).flip(1)
    for r in plan.unpaired:
        torch.add(F[0, :, r], F[1, :, r], out=out[:, r])


def _numpy_matmul(table: torch.Tensor, planes: torch.Tensor, out: torch.Tensor) -> None:
    np.matmul(table.numpy()[:, None], planes.numpy(), out=out.numpy())


def _torch_matmul(table: torch.Tensor, planes: torch.Tensor, out: torch.Tensor) -> None:
    torch.matmul(table.unsqueeze(1), planes, out=out)


def _numpy_rows(source: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    np.take(source.numpy(), index.numpy(), axis=0, out=out.numpy(), mode="clip")  # "raise" would buffer ``out``
    return out


def _torch_rows(source: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.index_select(source, 0, index, out=out)


_MATMUL = {"torch": _torch_matmul, "numpy": _numpy_matmul}  # ``table [mb, n, k] @ planes [mb, 2, k, B]``, by engine
_ROWS = {"torch": _torch_rows, "numpy": _numpy_rows}


class RingLegendre(TableModule):
    """Legendre contraction of one direction (``forward``: analysis tables) and its adjoint, with one table."""

    def __init__(self, plan: RingPlan, forward: bool, dtype: torch.dtype, max_table_bytes: int) -> None:
        super().__init__()
        self.plan = plan
        self.is_forward = forward
        self.stored = self.plan.table_bytes(torch.finfo(dtype).bits // 8) <= max_table_bytes
        self.register_buffer("gather", torch.from_numpy(plan.gather), persistent=False)
        self.register_buffer("scatter", torch.from_numpy(plan.scatter), persistent=False)
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        # the ring synthesis counts orders m > 0 twice (c2r), so expand halves their coefficients; row_scale is the
        # same per block row, zero at padding
        m = np.concatenate([np.arange(-ell, ell + 1) for ell in range(self.plan.L)])
        scale = np.where(m == 0, 1.0, 0.5)
        row_scale = np.append(scale, 0.0)[self.plan.scatter]
        for name, values in (("expand_scale", scale), ("row_scale", row_scale)):
            self.register_buffer(name, torch.from_numpy(values).to(dtype=dtype, device=device), persistent=False)
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
            tables = tuple(torch.from_numpy(t).to(dtype=self.table_dtype, device=self.gather.device)
                           for t in self.plan.block_tables(*self.plan.m_blocks[i], self.is_forward))
        if rings_to_rows != self.is_forward:
            return tuple(t.transpose(1, 2) for t in tables)
        return tables

    def _region_tables(self, rings_to_rows: bool):  # noqa: ANN202
        """Each region with its table, one block's tables alive at a time (above ``max_table_bytes`` they are
        computed here, block by block)."""
        block, tables = None, None
        for r in self.plan.regions:
            if r.block != block:
                block, tables = r.block, self._tables(r.block, rings_to_rows)
            yield r, tables[r.parity]

    def contract(self, H: torch.Tensor, engine: Engine) -> torch.Tensor:
        """Parity slabs ``H [2, ≥ 2L, n_north, B]`` (of the ring sums, then of the differences: :func:`fold_rings`)
        → coefficients ``[B, L²]`` (analysis, or synthesis's adjoint up to the factor ``expand_scale``): the
        transposed view of a contiguous ``[L², B]`` tensor."""
        p, B = self.plan, H.shape[-1]
        rows = SCRATCH.empty("legendre rows", (p.n_rows, B), H)
        matmul = _MATMUL[engine]
        for r, table in self._region_tables(rings_to_rows=True):
            mb = r.m1 - r.m0
            matmul(table, H[r.parity, 2 * r.m0:2 * r.m1].view(mb, 2, p.n_north, B),
                   rows[r.start: r.start + 2 * mb * r.n_d].view(mb, 2, r.n_d, B))
        return _ROWS[engine](rows, self.gather, fresh((p.L * p.L, B), rows)).T

    def expand(self, c: torch.Tensor, out: torch.Tensor, engine: Engine) -> torch.Tensor:
        """Coefficients ``c [B, L²]`` → parity slabs ``out [2, ≥ 2L, n_north, B]`` (slabs < 2L written), to be read
        by the c2r ring synthesis; the adjoint of :meth:`contract` up to ``expand_scale``."""
        p, B = self.plan, c.shape[0]
        rows = self._coefficient_rows(c, engine)
        matmul = _MATMUL[engine]
        for r, table in self._region_tables(rings_to_rows=False):
            mb = r.m1 - r.m0
            matmul(table, rows[r.start: r.start + 2 * mb * r.n_d].view(mb, 2, r.n_d, B),
                   out[r.parity, 2 * r.m0:2 * r.m1].view(mb, 2, p.n_north, B))
        return out

    def _coefficient_rows(self, c: torch.Tensor, engine: Engine) -> torch.Tensor:
        """``c [B, L²]`` times ``expand_scale`` as block rows ``[n_rows, B]`` (zero at padding), in a workspace buffer.

        numpy gathers each map's row into a batch-major buffer (returned transposed; the matmuls read it so) and
        scales it in place by ``row_scale``, which zeroes the padding (its rows gather the last coefficient: a
        non-finite one makes the whole synthesis non-finite anyway): two contiguous passes, 0.3 ms against 0.5 ms
        for a transposing multiply and a row gather (L = 128, float64, 16 maps). torch, whose gathers along rows
        are slow on the CPU, scales c transposed next to a zero row and gathers whole rows."""
        p, B, LL = self.plan, c.shape[0], self.plan.L ** 2
        if engine == "numpy":
            rows = SCRATCH.empty("legendre rows", (B, p.n_rows), c).numpy()
            np.take(c.detach().numpy(), self.scatter.numpy(), axis=1, out=rows, mode="clip")
            np.multiply(rows, self.row_scale.numpy(), out=rows)
            return torch.from_numpy(rows).T
        padded = SCRATCH.empty("coefficients", (LL + 1, B), c)
        torch.mul(c.T, self.expand_scale[:, None], out=padded[:LL])
        padded[LL] = 0
        return torch.index_select(padded, 0, self.scatter, out=SCRATCH.empty("legendre rows", (p.n_rows, B), c))
