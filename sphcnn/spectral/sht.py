"""Spherical harmonic transforms on S² (real orthonormal basis, flat index ℓ² + ℓ + m).

Forward (analysis) c_ℓm = Σ_x w(x) f(x) Y_ℓm(x); inverse (synthesis)
f(x) = Σ_ℓm c_ℓm Y_ℓm(x). Exact on "dh" and "gl" grids for band-limited
input; on "healpix" the analysis is refined iteratively (``iters``), as
healpy's ``map2alm(iter=…)``.

Two stages, as every fast SHT: a Fourier transform along each ring of equal
colatitude (real FFTs into the cosine/sine "slabs" of :mod:`sphcnn.spectral._ring_fft`
on "dh"/"gl", one complex FFT per ring length on HEALPix), then a contraction
with the Legendre table over rings, one batched matmul per block of orders m
and parity. Each whole transform is one autograd Function whose backward is
the other transform with the same table. The table uses the equatorial symmetry
λ_ℓm(π − θ) = (−1)^{ℓ+m} λ_ℓm(θ): only northern rings are stored and each
block is split by the parity of ℓ + m, halving memory and flops. It lives in
non-persistent buffers (so it follows ``.to(device)`` and stays out of
checkpoints) and is rebuilt in float64 and cast when the dtype changes, so
``.double()`` never inherits float32 round-off. It is built once per (grid, L,
direction, dtype, device) and shared by all modules (``TableModule.register_shared``;
a ``.to(device)`` takes the copy on that device). Above ``max_table_bytes`` the
table is not stored: each block is recomputed on the fly (memory O(L²·rings/blocks)).
Large scratch buffers (≥ 1 MB: L ≳ 128 at batch 16) are kept between calls, per thread and
shared by all S² transforms, to avoid page-faulting fresh memory on every call;
``release_workspace()`` frees them (see :mod:`sphcnn.spectral._workspace`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._cache import cached_module
from ._options import check_transform_args
from ._ring_fft import (numpy_ring_backends, ring_backend, ring_index, rings_to_slabs, slabs_to_rings,
                        slabs_to_spectrum, spectrum_to_slabs)
from ._ring_legendre import SCRATCH, RingLegendre, RingPlan
from ._twin import Phase
from ._tables import TableModule
from ._workspace import fresh
from .grids import S2Grid

DEFAULT_MAX_TABLE_BYTES = 4 * 2**30


class _Longitude(TableModule):
    """Fourier stage along rings: samples ``[B, *grid]`` ↔ ring slabs ``[2, S, n_north, B]``.

    Slabs (see :mod:`sphcnn.spectral._ring_fft`) of the northern rings, then of their mirrors in the
    same order (zero where a northern ring has none), as the Legendre stage folds them. On "dh"/"gl"
    S = n + 1 for rings of n points; on HEALPix S = 2L: rings of equal length are transformed
    together, their pixel indices, phase factors e^{∓imφ₀} and aliasing folds m mod n are buffers.
    """

    def __init__(self, grid: S2Grid, plan: RingPlan, dtype: torch.dtype) -> None:
        super().__init__()
        self.grid, self.plan, self.L = grid, plan, plan.L
        self.n_slabs = 2 * self.L if grid.kind == "healpix" else grid.shape[1] + 1
        self.group_sizes: list[int] = []
        if grid.kind == "healpix":
            rings = grid.rings()
            ring_cat, pix_cat = [], []
            for g, n in enumerate(np.unique(rings.count)):
                idx = np.flatnonzero(rings.count == n)
                pixels = (rings.start[idx][:, None] + np.arange(n)[None, :]).reshape(-1)
                self.group_sizes.append(int(n))
                self.register_buffer(f"pixels_{g}", torch.from_numpy(pixels), persistent=False)
                self.register_buffer(f"rings_{g}", torch.from_numpy(idx), persistent=False)
                self.register_buffer(f"fold_{g}", torch.from_numpy(np.arange(self.L) % n), persistent=False)
                ring_cat.append(idx)
                pix_cat.append(pixels)
            self.register_buffer("ring_inverse", torch.from_numpy(np.argsort(np.concatenate(ring_cat))),
                                 persistent=False)
            self.register_buffer("pixel_inverse", torch.from_numpy(np.argsort(np.concatenate(pix_cat))),
                                 persistent=False)
            self.register_buffer("south", ring_index(plan.south), persistent=False)  # mirrors of the paired rings
        self._build_tables(dtype, torch.device("cpu"))

    def _build_tables(self, dtype: torch.dtype, device: torch.device) -> None:
        self.table_dtype = dtype
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        if self.grid.kind != "healpix":
            return
        rings = self.grid.rings()
        for g, n in enumerate(self.group_sizes):
            phi0 = rings.phi0[rings.count == n]
            phase = torch.from_numpy(np.exp(-1j * np.outer(phi0, np.arange(self.L))))
            self.register_buffer(f"phase_{g}", phase.to(dtype=cdtype, device=device), persistent=False)

    def slabs(self, like: torch.Tensor, B: int) -> torch.Tensor:
        """The slab buffer ``[2, S, n_north, B]`` of this thread (overwritten by the next call)."""
        shape = (2, self.n_slabs, self.plan.n_north, B)
        return SCRATCH.views(("ring slabs", shape, like.dtype), like, lambda: SCRATCH.empty("ring slabs", shape, like))

    def _pairs(self, H: torch.Tensor) -> torch.Tensor:
        return H[1][:, self.plan.pair_start:self.plan.pair_start + self.plan.n_pairs]

    @property
    def splits(self) -> bool:
        """Whether the ring FFTs can run as two halves on the Legendre stage's twin thread (numpy FFTs of the
        northern rings and of their mirrors; HEALPix's go through torch)."""
        return self.grid.kind != "healpix" and bool(numpy_ring_backends())

    def analysis(self, x: torch.Tensor, H: torch.Tensor, on_twin: bool = False) -> Phase:
        """The slabs ``H`` (:meth:`slabs`) of ``x [B, *grid]``, as a phase of two halves: the northern rings and
        their mirrors (``on_twin``: one-thread numpy FFTs, each half on its own thread; needs :attr:`splits`)."""
        p, B = self.plan, x.shape[0]
        if self.grid.kind == "healpix":
            return lambda halves: self._healpix_analysis(x, H)
        backend = ring_backend("auto", x, x.shape[-1], p.n_north, B, inverse=False, on_twin=on_twin)
        threads = 1 if on_twin else None
        slabs = H if backend == "torch" else H.detach().numpy()  # the twin runs no torch op

        def transform(halves: tuple[int, ...]) -> None:
            for h in halves:
                if h == 0:
                    rings_to_slabs(x, p.north, H[0], backend, threads)
                elif p.n_pairs:
                    rings_to_slabs(x, p.south, self._pairs(H), backend, threads)
                slabs[h, 0] = 0  # unused (see _ring_fft); the Legendre stage multiplies it into rows it never reads
                for r in p.unpaired if h == 1 else ():
                    slabs[1, :, r] = 0

        return transform

    def _healpix_analysis(self, x: torch.Tensor, H: torch.Tensor) -> None:
        p = self.plan
        X = self._healpix_spectra(x)  # [L, R, B]
        spectrum_to_slabs(X[:, :p.n_north], H[0])
        if p.n_pairs:
            spectrum_to_slabs(X.index_select(1, self.south), self._pairs(H))
        H[:, 0] = 0
        for r in p.unpaired:
            H[1, :, r] = 0

    def synthesis(self, H: torch.Tensor, out: torch.Tensor, on_twin: bool = False) -> Phase:
        """Samples ``out [B, *grid]`` from slabs ``H`` (scratch) of orders m < L, read as c2r reads them, as a phase
        of two halves: the northern rings and their mirrors (``on_twin`` as in :meth:`analysis`)."""
        p, B, L = self.plan, H.shape[-1], self.L
        if self.grid.kind == "healpix":
            return lambda halves: self._healpix_synthesis(H, out)
        backend = ring_backend("auto", H, self.grid.shape[1], p.n_north, B, inverse=True, on_twin=on_twin)
        threads = 1 if on_twin else None

        def transform(halves: tuple[int, ...]) -> None:
            for h in halves:
                if h == 0:
                    slabs_to_rings(H[0], L, p.north, out, backend, threads)
                elif p.n_pairs:
                    slabs_to_rings(self._pairs(H), L, p.south, out, backend, threads)

        return transform

    def _healpix_synthesis(self, H: torch.Tensor, out: torch.Tensor) -> None:
        p, B, L = self.plan, H.shape[-1], self.L
        weight = H.new_full((L, 1, 1), 2.0)
        weight[0] = 1  # c2r counts m > 0 twice; the complex ring sums below count each once
        W = H.new_empty((L, p.n_rings, B), dtype=H.dtype.to_complex())
        W[:, :p.n_north] = slabs_to_spectrum(H[0], L) * weight
        if p.n_pairs:
            W.index_copy_(1, self.south, slabs_to_spectrum(self._pairs(H), L) * weight)
        self._healpix_samples(W, out)

    def _healpix_spectra(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_k f(θ_r, φ_k) e^{−imφ_k} per ring r of ``x [B, npix]``, complex ``[L, rings, B]``."""
        out = []
        for g, n in enumerate(self.group_sizes):
            ring = x[..., getattr(self, f"pixels_{g}")].unflatten(-1, (-1, n))
            out.append(torch.fft.fft(ring, dim=-1)[..., getattr(self, f"fold_{g}")] * getattr(self, f"phase_{g}"))
        return torch.cat(out, dim=-2)[..., self.ring_inverse, :].permute(2, 1, 0)

    def _healpix_samples(self, w: torch.Tensor, out: torch.Tensor) -> None:
        """``out [B, npix]``: f(θ_r, φ_k) = Re Σ_m W_rm e^{imφ_k} from complex ``w [L, rings, B]``."""
        w = w.permute(2, 1, 0)
        parts = []
        for g, n in enumerate(self.group_sizes):
            rows = w[..., getattr(self, f"rings_{g}"), :] * getattr(self, f"phase_{g}").conj()
            folded = rows.new_zeros(*rows.shape[:-1], n).index_add(-1, getattr(self, f"fold_{g}"), rows)
            parts.append((torch.fft.ifft(folded, dim=-1) * n).real.flatten(-2))
        torch.index_select(torch.cat(parts, dim=-1), -1, self.pixel_inverse, out=out)


class _TransformBase(nn.Module):
    def __init__(self, grid: S2Grid, L: int | None, forward: bool, dtype: torch.dtype,
                 max_table_bytes: int) -> None:
        super().__init__()
        L = check_transform_args(grid, S2Grid, L, dtype)
        self.grid, self.L = grid, L
        plan = RingPlan.build(grid, L)
        self.longitude = _Longitude(grid, plan, dtype)
        self.legendre = RingLegendre(plan, forward, dtype, max_table_bytes)

    def _analyze(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, *grid]`` → ``[B, L²]`` with this module's Legendre table (no autograd)."""
        B = x.shape[0]
        if B == 0:  # the FFT libraries reject empty arrays
            return x.new_zeros(0, self.L * self.L)
        H = self.longitude.slabs(x, B)
        run = self.legendre.backend(x, B)
        coefficients, contract = self.legendre.contract_phase(H, run)
        if run.twin and self.longitude.splits:  # one hand-off: the ring FFTs by hemisphere, then the orders m
            run.phases(self.longitude.analysis(x, H, on_twin=True), contract)
        else:
            self.longitude.analysis(x, H)((0, 1))
            run.phases(contract)
        return coefficients

    def _synthesize(self, c: torch.Tensor) -> torch.Tensor:
        """``[B, L²]`` → ``[B, *grid]`` with this module's Legendre table (no autograd): the adjoint of
        :meth:`_analyze` (``expand_scale`` and the c2r's doubling of m > 0 cancel)."""
        B = c.shape[0]
        if B == 0:
            return c.new_zeros(0, *self.grid.shape)
        H = self.longitude.slabs(c, B)
        run = self.legendre.backend(c, B)
        x = fresh((B, *self.grid.shape), H)
        if run.twin and self.longitude.splits:
            run.phases(*self.legendre.expand_phases(c, H, run), self.longitude.synthesis(H, x, on_twin=True))
        else:
            run.phases(*self.legendre.expand_phases(c, H, run))
            self.longitude.synthesis(H, x)((0, 1))
        return x

    def _transform(self, x: torch.Tensor, synthesis: bool) -> torch.Tensor:
        """:class:`_Transform` where a gradient can flow to ``x``, else the transform alone: the Function's
        bookkeeping costs 40 µs a call, about 1 % of GL L = 128 at 16 maps."""
        if torch.is_grad_enabled() and x.requires_grad:
            return _Transform.apply(x, self, synthesis)
        return self._run(x, synthesis)

    def _run(self, x: torch.Tensor, synthesis: bool) -> torch.Tensor:
        return self._synthesize(x) if synthesis else self._analyze(x)

    def _check_dtype(self, x: torch.Tensor, name: str) -> None:
        if x.dtype != self.legendre.table_dtype:
            raise TypeError(
                f"{name} is {x.dtype} but this transform's tables are {self.legendre.table_dtype}; "
                f"convert the input or the module (module.to({x.dtype}))"
            )

    def release_workspace(self) -> None:
        """Free the scratch buffers (≥ 1 MB each) this thread's S² transforms keep for the next call (all of them
        share one set)."""
        SCRATCH.clear()

    def extra_repr(self) -> str:
        return f"L={self.L}, grid=S2Grid(L={self.grid.L}, kind={self.grid.kind!r}), dtype={self.legendre.table_dtype}"


class _Transform(torch.autograd.Function):
    """``transform._analyze`` or (``synthesis``) ``transform._synthesize``; the backward of each is the other,
    with the same table: no autograd graph of slices and gathers, and double backward for free."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, transform: _TransformBase, synthesis: bool) -> torch.Tensor:  # noqa: ANN001
        ctx.transform, ctx.synthesis = transform, synthesis
        return transform._run(x, synthesis)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        return _Transform.apply(grad, ctx.transform, not ctx.synthesis), None, None


class SHT(_TransformBase):
    """Forward transform ``[..., *grid.shape]`` → ``[..., L²]`` (real orthonormal basis).

    Args:
        grid: the sampling grid.
        L: output bandlimit, ≤ grid.L (default grid.L); a lower L keeps degrees < L
            (exact projection for input band-limited to grid.L).
        dtype: table dtype (float32 or float64); ``.to(dtype)`` rebuilds it in float64 first.
        iters: HEALPix only: Jacobi refinement steps c ← c + A(f − S c) (healpy's ``iter``).
        max_table_bytes: store the Legendre table below this size, else recompute per call.
    """

    def __init__(self, grid: S2Grid, L: int | None = None, dtype: torch.dtype = torch.float32, iters: int = 3,
                 max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES) -> None:
        super().__init__(grid, L, True, dtype, max_table_bytes)
        if not isinstance(iters, int) or iters < 0:
            raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
        self.iters = iters if grid.kind == "healpix" else 0
        self.inverse = InverseSHT(grid, self.L, dtype, max_table_bytes) if self.iters else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.grid.check(x)
        self._check_dtype(x, "x")
        batch = x.shape[: x.dim() - len(self.grid.shape)]
        flat = x.reshape(-1, *self.grid.shape)
        c = self._transform(flat, synthesis=False)
        for _ in range(self.iters):
            c = c + self._transform(flat - self.inverse(c), synthesis=False)
        return c.reshape(*batch, c.shape[-1])


class InverseSHT(_TransformBase):
    """Inverse transform ``[..., L²]`` → ``[..., *grid.shape]``; ``L`` ≤ grid.L (default grid.L)."""

    def __init__(self, grid: S2Grid, L: int | None = None, dtype: torch.dtype = torch.float32,
                 max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES) -> None:
        super().__init__(grid, L, False, dtype, max_table_bytes)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        L = self.L
        if not isinstance(c, torch.Tensor) or c.dim() < 1 or c.shape[-1] != L * L:
            shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
            raise ValueError(f"coefficients must have shape [..., L*L] = [..., {L * L}] for L={L}, got {shape}")
        if not c.is_floating_point():
            raise TypeError(f"coefficients must be float32 or float64, got {c.dtype}")
        self._check_dtype(c, "c")
        batch = c.shape[:-1]
        x = self._transform(c.reshape(-1, L * L), synthesis=True)
        return x.reshape(*batch, *self.grid.shape)


def _coeff_bandlimit(c: torch.Tensor, grid: S2Grid) -> int:
    L = int(round(c.shape[-1] ** 0.5)) if c.dim() else 0
    if c.dim() == 0 or L * L != c.shape[-1] or not 1 <= L <= grid.L:
        raise ValueError(f"coefficients must have shape [..., L*L] with L <= grid.L = {grid.L} "
                         f"(e.g. [..., {grid.L * grid.L}]), got {tuple(c.shape)}")
    return L


def sht(x: torch.Tensor, grid: S2Grid, L: int | None = None) -> torch.Tensor:
    """Real SH coefficients ``[..., L²]`` (L ≤ grid.L, default grid.L) of samples ``x [..., *grid.shape]``.

    Tables are cached in memory per (grid, L, dtype, device).
    """
    grid.check(x)
    return cached_module(SHT, grid, x.dtype, x.device, L=L)(x)


def isht(c: torch.Tensor, grid: S2Grid) -> torch.Tensor:
    """Samples ``[..., *grid.shape]`` of the band-limited function with real SH coefficients ``c [..., L²]``, L ≤ grid.L."""
    if not isinstance(c, torch.Tensor) or not c.is_floating_point():
        raise TypeError("coefficients must be a float32 or float64 tensor")
    return cached_module(InverseSHT, grid, c.dtype, c.device, L=_coeff_bandlimit(c, grid))(c)
