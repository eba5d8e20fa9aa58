"""The Legendre stage of the SHT: ring slabs of orders m ↔ real SH coefficients.

Analysis contracts the cosine and sine sums of each order m over rings (the slabs of
:mod:`sphcnn.spectral._ring_fft`) with the weighted table λ_ℓm(θ_r) w_r; synthesis
expands coefficients back to slabs. Both use the equatorial symmetry λ_ℓm(π − θ) =
(−1)^{ℓ+m} λ_ℓm(θ): the ring FFT writes the northern rings and, separately, their
mirrors in the same order, so the fold into sums (even ℓ + m) and differences (odd) is
two elementwise ops (which also move the cosine/sine part inside the ring axis); only
northern rings are stored and each block of orders m costs half-size matmuls.

The cosine and sine planes of an order are separate ``[rings, batch]`` planes, so every
matmul writes rows of whole batches and the one reordering between block rows and
coefficients ``ℓ² + ℓ + m`` moves rows of ``batch`` values with an L²-entry index
(a gather of single interleaved elements, as complex spectra need, took 3–10× as long).
The two directions (``contract`` and ``expand``) are mutually adjoint with the same
table; :mod:`sphcnn.spectral.sht` makes each whole transform's backward the other one.

The orders m are independent from the rings to the coefficients, so the stage runs in two
halves, each a set of m-blocks of equal work (:attr:`RingPlan.halves`) that it folds,
multiplies and scatters (analysis), or gathers, multiplies and unfolds (synthesis), one
block at a time, in per-half scratch that stays in cache. The halves own disjoint rows of
the slabs and of the coefficients, so nothing is left to do serially after them. On more
than one thread and above a work threshold (:func:`use_twin`) they run side by side, one
on the caller and one on a second thread (:mod:`sphcnn.spectral._twin`), in numpy, each
matmul in row chunks that OpenBLAS multiplies on the calling thread; the stage's directions
are then phases (:meth:`RingLegendre.contract_phase`, :meth:`RingLegendre.expand_phases`)
that :mod:`sphcnn.spectral.sht` runs with the ring FFTs' in one hand-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from types import ModuleType

import numpy as np
import torch

from ._fft import _faster
from ._tables import TableModule
from ._twin import TWIN, Phase
from ._workspace import Workspace, fresh
from .grids import S2Grid
from .legendre import legendre_block

# Orders m are processed in blocks sharing one matmul: fewer, larger calls vs. zero padding (rows ℓ < m).
# At least 32 orders per block: on 2 threads small calls cost more in thread wake-ups than in flops
# (L = 128 float32, forward + inverse: 16 blocks 12–14 ms, 4 blocks 8–10 ms; 1 thread ≈ 7 ms either way).
# With the twin's halves too: GL L = 128 float64, 16 maps, round trips with blocks of 16 orders 13.7–16.3 ms against
# 11.9–15.2 ms with 32 (3 alternating process pairs), though 16 pad 12 % fewer rows.
M_BLOCKS = 16
MIN_M_BLOCK = 32


@dataclass(frozen=True)
class Region:
    """Rows ``[start, start + 2·(m1 − m0)·n_d)`` of the block outputs: orders m0 … m1 − 1, degrees ℓ = m + d for
    d ≡ parity (mod 2), d < L − m0; the cosine (part 0) and sine (part 1) rows of (m, d) are
    ``start + 2·((m − m0)·n_d + d // 2) + part``."""

    block: int
    parity: int
    m0: int
    m1: int
    n_d: int
    start: int

    @property
    def n_rows(self) -> int:
        return 2 * (self.m1 - self.m0) * self.n_d

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + self.n_rows)


@dataclass(frozen=True)
class RingPlan:
    """Ring geometry and the row layout of the block outputs of one grid (float64, numpy)."""

    grid_key: tuple  # the grid's identity (S2Grid.key): with L and the direction, the key of the shared tables
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
    halves: tuple[tuple[int, ...], tuple[int, ...]]  # the m-blocks of each half of the stage, of equal work
    regions: tuple[Region, ...]  # block by block, each block's even then odd parity
    n_rows: int
    scatter: np.ndarray  # row → coefficient index; padding rows (ℓ ≥ L, the unused sine plane of m = 0) → L² + half

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
                pos += regions[-1].n_rows
        halves = _balanced_halves([(m1 - m0) * (L - m0) for m0, m1 in m_blocks])
        scatter = np.empty(pos, dtype=np.int64)
        for r in regions:
            scatter[r.rows] = L * L + (r.block in halves[1])
            for m in range(r.m0, r.m1):
                ells = np.arange(m + r.parity, L, 2)
                rows = r.start + 2 * ((m - r.m0) * r.n_d + (ells - m) // 2)
                for part in (0, 1) if m > 0 else (1,):  # m = 0: one cosine plane, in the place of a sine plane
                    scatter[rows + part] = ells * ells + ells + (-m if part == 1 and m > 0 else m)
        return RingPlan(grid_key=grid.key, L=L, n_rings=R, n_north=n_north, pair_start=pair_start, n_pairs=n_pairs,
                        south_start=int(south[-1]) if n_pairs else R,
                        unpaired=tuple(r for r in range(n_north) if not pair_start <= r < pair_start + n_pairs),
                        theta_north=theta[:n_north], weight_north=weights[:n_north], m_blocks=m_blocks,
                        halves=halves, regions=tuple(regions), n_rows=pos, scatter=scatter)

    @cached_property
    def max_block(self) -> int:
        return max(m1 - m0 for m0, m1 in self.m_blocks)

    @cached_property
    def max_region_rows(self) -> int:
        return max(r.n_rows for r in self.regions)

    def block_regions(self, block: int) -> tuple[Region, Region]:
        """The (even, odd) regions of an m-block."""
        return self.regions[2 * block], self.regions[2 * block + 1]

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


def _balanced_halves(work: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Item indices split in two sets of about equal total ``work``, each in increasing order (largest first to the
    lighter set)."""
    sets: tuple[list[int], list[int]] = ([], [])
    totals = [0, 0]
    for i in sorted(range(len(work)), key=lambda i: -work[i]):
        lighter = int(totals[1] < totals[0])
        sets[lighter].append(i)
        totals[lighter] += work[i]
    return tuple(sorted(sets[0])), tuple(sorted(sets[1]))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _torch_bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    torch.bmm(a, b, out=out)


def _numpy_bmm(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.matmul(a, b, out=out)


def _numpy_bmm_of_tensors(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    _numpy_bmm(_np(a), _np(b), _np(out))


def _torch_take(src: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> None:
    torch.index_select(src, 0, index, out=out)


def _numpy_take(src: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    # "clip" writes into out directly; the default "raise" gathers into a temporary first (2 MB, page-faulted on
    # every call: GL L = 128, float64, 16 maps, 4.9 ms instead of 0.4 ms); the indices are in range by construction
    np.take(src, index, axis=0, out=out, mode="clip")


def _torch_put(src: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> None:
    out.index_copy_(0, index, src)


def _numpy_put(src: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
    # rows as single items: put copies each with one memcpy (GL L = 128, float64, 16 maps: 0.09 ms against 0.28 ms
    # for out[index] = src, whose iterator moves single elements)
    np.put(_as_items(out), index, _as_items(src), mode="clip")


def _numpy_put_of_tensors(src: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> None:
    _numpy_put(_np(src), _np(index), _np(out))  # torch's index_copy_: 0.18 against 0.07 ms (10,240 rows of 16)


def _as_items(rows: np.ndarray) -> np.ndarray:
    """A C-contiguous ``[n, k]`` array as n opaque items of k values."""
    return rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).reshape(-1)


@dataclass(frozen=True)
class _Backend:
    """How the stage runs: on torch tensors or on numpy views of them (``array``), with ``xp``'s ``add``,
    ``subtract`` and ``multiply``, row gathers ``take``, row scatters ``put`` and matmuls ``bmm``; and
    whether its two halves (each a set of m-blocks, from its rings to its coefficients and back) run on two
    threads (:data:`TWIN`) or in order here."""

    xp: ModuleType
    array: Callable[[torch.Tensor], torch.Tensor | np.ndarray]
    take: Callable
    put: Callable
    bmm: Callable
    twin: bool = False

    def phases(self, *phases: Phase) -> None:
        """Each phase's two halves in turn: on the twin and here (:meth:`Twin.run`), or both here."""
        if self.twin:
            TWIN.run(*phases)
        else:
            for phase in phases:
                phase((0, 1))

    def row_chunks(self, n: int, k: int, cols: int) -> list[slice]:
        """Row ranges of ``[n, k] @ [k, cols]``: on the twin, few enough rows for OpenBLAS to multiply each on the
        calling thread; else all rows at once."""
        if not self.twin:
            return [slice(0, n)] if n else []
        step = max(1, _OPENBLAS_SINGLE_THREAD_MNK // max(1, k * cols))
        return [slice(start, min(n, start + step)) for start in range(0, n, step)]


# On the CPU, by the matmul backend the probe picks: torch's glue with numpy's row scatter (GL L = 128, float32,
# 16 maps, one thread, with torch's matmuls: forward 5.6 against 6.3 ms with torch's index_copy_), or the twin
_BACKENDS = {
    "torch": _Backend(torch, lambda t: t, _torch_take, _numpy_put_of_tensors, _torch_bmm),
    "numpy": _Backend(torch, lambda t: t, _torch_take, _numpy_put_of_tensors, _numpy_bmm_of_tensors),
    "twin": _Backend(np, _np, _numpy_take, _numpy_put, _numpy_bmm, twin=True),  # all numpy: the twin's only calls
}
_OFF_CPU = _Backend(torch, lambda t: t, _torch_take, _torch_put, _torch_bmm)
_BMM = {"torch": _torch_bmm, "numpy": _numpy_bmm_of_tensors}  # the Legendre matmul backends, in probe order

# The scratch buffers of every S² transform (this stage's planes and rows, the ring stage's slabs), per thread: they
# never outlive a call, so a forward and an inverse transform share one set, a smaller working set (GL L = 128,
# float64, 16 maps: 13 MB for both directions instead of 24 MB; L = 1024: peak 6.28 GB instead of 6.86 GB).
SCRATCH = Workspace()

# OpenBLAS runs a gemm on the calling thread up to M·N·K = 65536 · GEMM_MULTITHREAD_THRESHOLD (4 by default)
_OPENBLAS_SINGLE_THREAD_MNK = 4 * 65536
# Below this much matmul work per transform (multiply-adds, float32 counted half) two threads gained less than their
# hand-off (0.1–0.2 ms) costs: round trips on two threads with the twin against the probe's backend, GL float64,
# alternating in one process: L = 64, 16 maps (3.1 M) 9.1 against 8.5 ms; L = 128, 4 maps (5.2 M) 4.9 against 5.3 ms;
# 8 maps 6.7 against 6.8 ms; 16 maps 13.2 against 15.6 ms (float32 7.9 against 8.3 ms); L = 256, 1 map (9.4 M) 13.4
# against 19.3 ms
_MIN_TWIN_WORK = 4_000_000
# the smallest chunks measured (GL L = 512, 16 maps: 32 rows); L = 1024 would take 16-row chunks, not measured, so
# it keeps the probe's backend
_MIN_TWIN_ROWS = 32


def use_twin(shape: tuple[int, int, int, int], macs: int, itemsize: int, threads: int) -> bool:
    """Whether the stage runs its halves on two threads, all in numpy (:mod:`sphcnn.spectral._twin`), for matmuls
    ``[mb, n, k] @ [mb, k, cols]`` (the largest) and ``macs`` multiply-adds per transform.

    Only where the work pays for the hand-offs, and where chunks of at least :data:`_MIN_TWIN_ROWS` rows of each
    matmul stay below OpenBLAS's threading threshold, so that each runs on its calling thread (the twin splits
    larger ones into such chunks, :meth:`_Backend.row_chunks`). There the twin replaces torch's glue, whose OpenMP
    workers spin for milliseconds after each op on the core that numpy's next matmul or ducc0's FFT needs. GL
    L = 128, float64, 16 maps, two threads: forward / inverse 5.1 / 6.4 ms against 7.7 / 7.6 ms (medians of 4
    alternating process pairs; docs/bench_sht.md).
    """
    _, n, k, cols = shape
    return (threads > 1 and max(n, k) * cols * _MIN_TWIN_ROWS <= _OPENBLAS_SINGLE_THREAD_MNK
            and macs * itemsize // 8 >= _MIN_TWIN_WORK)


@lru_cache(maxsize=None)
def _fastest_bmm(shape: tuple[int, int, int, int], dtype: torch.dtype, threads: int) -> str:
    """torch's ``bmm`` or numpy's ``matmul`` for ``[mb, n, k] @ [mb, k, cols]``, whichever is faster here (timed
    once per shape, dtype and thread count, like the FFT backends; both directions use the analysis' shape).

    On the AMD EPYC of our benchmarks torch's (MKL's) float64 kernels ran at a third to a half of numpy's
    (OpenBLAS's) speed on these small matrices (78 µs against 167–211 µs for [32, 64, 64] @ [32, 64, 16] on
    two threads; a whole GL L = 128 float64 round trip, 16 maps, 8 % faster), its float32 ones on par. numpy's
    matmul runs on OpenBLAS's pool (started by numpy's import, sized by ``OPENBLAS_NUM_THREADS``), not ours.

    Above OpenBLAS's threading threshold numpy is not timed: its pool's threads then work beside torch's
    OpenMP team, each spinning on the other's cores after its work, and the probe, timing one matmul, sees
    neither that cost to the stages around it nor its steady state. (GL L = 512 float64, 16 maps, two threads:
    the probe picked numpy in 6 of 7 processes, minima 2.5–3.8 against 3.7–7.7 ms, but whole transforms ran
    120–144 / 151–162 ms forward / inverse with numpy against 106–110 / 122–132 ms with torch, 3 of 3
    alternating pairs; L = 256: on par.) Below the threshold OpenBLAS runs on the calling thread, no pool wakes.
    """
    mb, n, k, cols = shape
    if threads > 1 and n * k * cols > _OPENBLAS_SINGLE_THREAD_MNK:
        return "torch"
    a, b, out = torch.randn(mb, n, k, dtype=dtype), torch.randn(mb, k, cols, dtype=dtype), torch.empty(mb, n, cols, dtype=dtype)
    return _faster(f"Legendre matmul {list(shape)}, {dtype}, {threads} threads", lambda name: _BMM[name](a, b, out),
                   tuple(_BMM))


class RingLegendre(TableModule):
    """Legendre contraction of one direction (``forward``: analysis tables) and its adjoint, with one table."""

    def __init__(self, plan: RingPlan, forward: bool, dtype: torch.dtype, max_table_bytes: int) -> None:
        super().__init__()
        self.plan = plan
        self.is_forward = forward
        self.stored = self.plan.table_bytes(torch.finfo(dtype).bits // 8) <= max_table_bytes
        self.register_buffer("scatter", torch.from_numpy(plan.scatter), persistent=False)
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        # the ring synthesis counts orders m > 0 twice (c2r), so expand halves their coefficients
        m = np.concatenate([np.arange(-ell, ell + 1) for ell in range(self.plan.L)])
        self.register_buffer("expand_scale", torch.from_numpy(np.where(m == 0, 1.0, 0.5)).to(dtype=dtype, device=device),
                             persistent=False)
        if self.stored:  # else _tables computes each block when it is needed
            p, forward = self.plan, self.is_forward
            names = [f"{parity}_{i}" for i in range(len(p.m_blocks)) for parity in ("even", "odd")]
            self.register_shared(("S2 Legendre", p.grid_key, p.L, forward), names,
                                 lambda: [t for m0, m1 in p.m_blocks for t in p.block_tables(m0, m1, forward)], dtype,
                                 device)

    def _tables(self, i: int, rings_to_rows: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Block i's (even, odd) tables as the map rings → rows (``[mb, n_d, n_north]``) or its transpose."""
        if self.stored:
            tables = getattr(self, f"even_{i}"), getattr(self, f"odd_{i}")
        else:
            tables = tuple(torch.from_numpy(t).to(dtype=self.table_dtype, device=self.scatter.device)
                           for t in self.plan.block_tables(*self.plan.m_blocks[i], self.is_forward))
        if rings_to_rows != self.is_forward:
            return tuple(t.transpose(1, 2) for t in tables)
        return tables

    def backend(self, like: torch.Tensor, B: int) -> _Backend:
        """The two threads of :func:`use_twin` where they pay, else the matmuls the probe found faster for the first
        region's shape (the largest) with torch's glue; torch off the CPU."""
        if like.device.type != "cpu":
            return _OFF_CPU
        p, threads = self.plan, torch.get_num_threads()
        first = p.regions[0]
        shape = (first.m1 - first.m0, first.n_d, p.n_north, 2 * B)
        macs = p.n_rows * p.n_north * B  # rows of B-column pairs (cosine, sine) against n_north rings
        if self.stored and use_twin(shape, macs, like.dtype.itemsize, threads):
            return _BACKENDS["twin"]
        return _BACKENDS[_fastest_bmm(shape, like.dtype, threads)]

    def _region_tables(self, rings_to_rows: bool, blocks: tuple[int, ...], run: _Backend):  # noqa: ANN202
        """The (even, odd) regions of these m-blocks with their tables as ``run`` arrays, one block's tables alive at a
        time (above ``max_table_bytes`` they are computed here, block by block; stored ones are viewed once)."""
        if self.stored:
            arrays = self._shared.derived((rings_to_rows, run.xp.__name__), lambda: [
                tuple(run.array(t) for t in self._tables(i, rings_to_rows)) for i in range(len(self.plan.m_blocks))])
        for block in blocks:
            tables = arrays[block] if self.stored else tuple(run.array(t) for t in self._tables(block, rings_to_rows))
            for r in self.plan.block_regions(block):
                yield r, tables[r.parity]

    def _scatter(self, run: _Backend) -> torch.Tensor | np.ndarray:
        """The row → coefficient index for ``run``: the plan's own array for numpy's calls (no view per call)."""
        return self.plan.scatter if run.xp is np else self.scatter

    def _scratch(self, name: str, like: torch.Tensor, run: _Backend, *shape: int):  # noqa: ANN202
        """Two per-call buffers ``shape`` (one per half) of this thread's workspace, as ``run`` arrays."""
        flat = run.array(SCRATCH.empty(name, (2, math.prod(shape)), like))
        return [flat[h].reshape(shape) for h in (0, 1)]

    def _views(self, H: torch.Tensor, run: _Backend, forward: bool, keep: bool):  # noqa: ANN202
        """The ``run`` arrays of a call on the slabs ``H``: its planes of orders m as ``[m, part, ring, batch]``
        (analysis) or ``[m, ring, part, batch]`` (synthesis), northern and mirrored, the per-half scratch and
        (synthesis) the coefficient-major copy. ``keep``: ``H`` is this thread's slab buffer, so the workspace
        keeps them for the next call on it."""
        p, B = self.plan, H.shape[-1]
        hn, L = p.n_north, p.L

        def build():  # noqa: ANN202
            slabs = run.array(H)[:, :2 * L].reshape(2, L, 2, hn, B)
            if not forward:
                slabs = slabs.swapaxes(2, 3)
            # [(parity,) m, ring, part, batch]
            planes = (p.max_block, hn, 2, B) if forward else (2, p.max_block, hn, 2, B)
            return (slabs[0], slabs[1], self._scratch("legendre planes", H, run, *planes),
                    self._scratch("legendre rows", H, run, p.max_region_rows, B),
                    None if forward else run.array(SCRATCH.empty("coefficients", (L * L + len(p.halves), B), H)))

        if not keep:
            return build()
        return SCRATCH.views(("S2 Legendre", forward, p.grid_key, L, H.data_ptr(), B, H.dtype, run), H, build)

    def contract(self, H: torch.Tensor) -> torch.Tensor:
        """Ring slabs ``H [2, ≥ 2L, n_north, B]`` (northern rings, then their mirrors; zero for unpaired rings)
        → coefficients ``[B, L²]`` (analysis, or synthesis's adjoint up to the factor ``expand_scale``): the
        transposed view of a contiguous ``[L², B]`` tensor."""
        run = self.backend(H, H.shape[-1])
        coefficients, phase = self.contract_phase(H, run, keep_views=False)
        run.phases(phase)
        return coefficients

    def contract_phase(self, H: torch.Tensor, run: _Backend, keep_views: bool = True) -> tuple[torch.Tensor, Phase]:
        """:meth:`contract` as the coefficients it returns and the phase that writes them, once ``H`` is written
        (``keep_views``: ``H`` is this thread's slab buffer, see :meth:`_views`)."""
        p, B = self.plan, H.shape[-1]
        hn, L = p.n_north, p.L
        # each half folds one block's parity at a time (ring ± mirror, as [m, ring, part, batch]: one matmul per
        # block takes both parts as columns and writes each (m, ℓ, part) as a row of B values) and scatters its rows
        # to their coefficients: the halves own disjoint orders m, and a padding row each (rows L² and L² + 1).
        # The fold iterates in the slabs' order, writing the transposed view: 41 against 75 µs per block (float32;
        # float64 65 against 127 µs) for the same sums iterated in the fold's order
        north, south, folds, rows, _ = self._views(H, run, forward=True, keep=keep_views)
        out = fresh((L * L + len(p.halves), B), H)
        coefficients, scatter = run.array(out), self._scatter(run)

        def contract_blocks(halves: tuple[int, ...]) -> None:
            for h in halves:
                for r, table in self._region_tables(True, p.halves[h], run):
                    mb, n = r.m1 - r.m0, r.n_rows
                    fold = folds[h][:mb]
                    (run.xp.add if r.parity == 0 else run.xp.subtract)(north[r.m0:r.m1], south[r.m0:r.m1],
                                                                       out=fold.swapaxes(1, 2))
                    b, product = fold.reshape(mb, hn, 2 * B), rows[h][:n].reshape(mb, r.n_d, 2 * B)
                    for chunk in run.row_chunks(r.n_d, hn, 2 * B):
                        run.bmm(table[:, chunk], b, product[:, chunk])
                    run.put(rows[h][:n], scatter[r.rows], coefficients)

        return out[:L * L].T, contract_blocks

    def expand(self, c: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Coefficients ``c [B, L²]`` → ring slabs ``out [2, ≥ 2L, n_north, B]`` (slabs < 2L written), to be read
        by the c2r ring synthesis; the adjoint of :meth:`contract` up to ``expand_scale``."""
        run = self.backend(c, c.shape[0])
        run.phases(*self.expand_phases(c, out, run, keep_views=False))
        return out

    def expand_phases(self, c: torch.Tensor, out: torch.Tensor, run: _Backend,
                      keep_views: bool = True) -> tuple[Phase, Phase]:
        """:meth:`expand` as two phases: the scaled coefficient-major copy of ``c``, then the slabs from it
        (``keep_views``: ``out`` is this thread's slab buffer, see :meth:`_views`)."""
        p, B = self.plan, c.shape[0]
        hn, LL = p.n_north, p.L * p.L
        north, south, planes, rows, padded = self._views(out, run, forward=False, keep=keep_views)
        # coefficient-major [L² + 2, B], scaled, with zero rows for padding: a row gather then reads whole batches
        # (for batch-major input the halves write it transposed, each a range of coefficients: cheaper than any
        # gather across rows)
        padded[LL:] = 0
        c, scale = run.array(c), run.array(self.expand_scale)[:, None]
        ranges = (slice(0, LL // 2), slice(LL // 2, LL))

        def scale_halves(halves: tuple[int, ...]) -> None:
            for h in halves:  # in c's order, writing the transposed view: 0.16 against 0.32 ms the other way round
                run.xp.multiply(c[:, ranges[h]], scale[ranges[h]].T, out=padded[ranges[h]].T)

        scatter = self._scatter(run)

        def expand_blocks(halves: tuple[int, ...]) -> None:
            for h in halves:
                for block in p.halves[h]:
                    m0, m1 = p.m_blocks[block]
                    for r, table in self._region_tables(False, (block,), run):
                        mb, n = m1 - m0, r.n_rows
                        run.take(padded, scatter[r.rows], rows[h][:n])
                        b = rows[h][:n].reshape(mb, r.n_d, 2 * B)
                        planes_out = planes[h][r.parity, :mb].reshape(mb, hn, 2 * B)
                        for chunk in run.row_chunks(hn, r.n_d, 2 * B):
                            run.bmm(table[:, chunk], b, planes_out[:, chunk])
                    even, odd = planes[h][:, :m1 - m0]
                    run.xp.add(even, odd, out=north[m0:m1])  # north: λ_even + λ_odd; its mirror: λ_even − λ_odd
                    run.xp.subtract(even, odd, out=south[m0:m1])

        return scale_halves, expand_blocks
