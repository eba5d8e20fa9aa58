"""Real DFTs along the rings of an S² grid, in the split layout of the Legendre stage ("slabs").

The slabs of real ring samples x_j, j < n, are FFTPACK's halfcomplex order shifted by one::

    H[1] = Σ_j x_j,   H[2m] = Σ_j x_j cos(2πjm/n),   H[2m + 1] = Σ_j x_j sin(2πjm/n)   (1 ≤ m, 2m + 1 ≤ n)

with slab 0 unused. Viewed per order as ``[L, 2, rings, batch]``, order m's cosine and sine sums are
the whole planes (m, 0) and (m, 1), never interleaved as complex numbers are, except m = 0, whose
only (cosine) plane is (0, 1). The Legendre stage multiplies each plane as one matrix and moves
whole batch rows; interleaved parts would make it move single elements (a 262,144-element gather
of 0.4–2 ms per call at L = 128, batch 16).

The synthesis is the real inverse (c2r) of the same layout::

    x_j = H[1] + 2 Σ_{m ≥ 1} (H[2m] cos(2πjm/n) + H[2m + 1] sin(2πjm/n)),

so it is the adjoint of the analysis up to the factor 2 on m ≥ 1 (the caller scales by ½).

Rings are selected by a ``slice`` (step ±1): the Legendre stage reads the southern rings in
mirrored order. The numpy backends (ducc0, scipy's pocketfft binding) read and write them through
strided views, with the ring axis transposed to the batch-innermost layout, and write straight into
the caller's buffer; torch's (the only one off the CPU) goes through its complex FFT and copies.
Backend choice: as :mod:`sphcnn.spectral._fft` (``"auto"`` times each, per direction and size).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ._fft import FFTBackend, _ducc, _faster, probe_count
from ._options import check_option

try:  # scipy's pocketfft binding has the FFTPACK-order real transform with ``out``; scipy.fft has not
    from scipy.fft._pocketfft.pypocketfft import r2r_fftpack as _scipy_r2r
except ImportError:  # pragma: no cover - other scipy layouts: torch and ducc0 only
    _scipy_r2r = None


def ring_backends() -> tuple[str, ...]:
    """The CPU backends of the ring transforms installed here, in the order the ``"auto"`` probe times them."""
    return ("torch",) + numpy_ring_backends()


def numpy_ring_backends() -> tuple[str, ...]:
    """The ring backends here that are numpy calls, the only ones the Legendre stage's twin thread runs."""
    return (("scipy",) if _scipy_r2r is not None else ()) + (("ducc0",) if _ducc is not None else ())


def _r2r(backend: str):  # noqa: ANN202
    if backend == "ducc0" and _ducc is not None:
        return _ducc.r2r_fftpack
    if backend == "scipy" and _scipy_r2r is not None:
        return _scipy_r2r
    raise ValueError(f"ring FFT backend {backend!r} is not available here (available: {list(ring_backends())})")


def ring_index(rings: slice, device: torch.device | None = None) -> torch.Tensor:
    """The ring numbers of ``rings`` (a slice with step ±1) as an index tensor."""
    return torch.arange(rings.start, rings.stop, rings.step, device=device)


def _select_rings(x: torch.Tensor, rings: slice) -> torch.Tensor:
    """``x[:, rings]`` for torch, which has no negative strides (a copy when the step is −1)."""
    if rings.step == 1:
        return x[:, rings]
    return x.index_select(1, ring_index(rings, x.device))


def spectrum_to_slabs(X: torch.Tensor, out: torch.Tensor) -> None:
    """Slabs 1 … 2L − 1 of ``out [≥ 2L, R, B]`` from the complex spectra ``X [L, R, B]`` (X_m = Σ x e^{−imφ})."""
    L = X.shape[0]
    Xr = torch.view_as_real(X)
    out[1].copy_(Xr[0, ..., 0])
    if L > 1:
        pairs = out[2:2 * L].unflatten(0, (L - 1, 2))
        pairs.copy_(Xr[1:].movedim(-1, 1))
        pairs[:, 1].neg_()  # the sine sums are −Im X


def slabs_to_spectrum(H: torch.Tensor, L: int) -> torch.Tensor:
    """Complex ``Y [L, R, B]`` with Y_0 = H[1], Y_m = H[2m] − i H[2m + 1]: x = Re Σ_m w_m Y_m e^{imφ} (w = 1, 2, 2, …)."""
    Y = H.new_empty((L, *H.shape[1:]), dtype=H.dtype.to_complex())
    Yr = torch.view_as_real(Y)
    Yr[0, ..., 0] = H[1]
    Yr[0, ..., 1] = 0
    if L > 1:
        Yr[1:].copy_(H[2:2 * L].unflatten(0, (L - 1, 2)).movedim(1, -1))
        Yr[1:, ..., 1].neg_()
    return Y


def rings_to_slabs(x: torch.Tensor, rings: slice, out: torch.Tensor, backend: str, threads: int | None = None) -> None:
    """Slabs ``out[1:] [n, count, B]`` of the rings ``x[:, rings]`` of real ``x [B, R, n]``; ``out[0]`` untouched.
    ``threads``: of a numpy backend (default torch's intra-op count)."""
    n = x.shape[-1]
    if backend == "torch":
        spectrum = torch.fft.rfft(_select_rings(x, rings)).permute(2, 1, 0)  # [n//2 + 1, count, B]
        L = (n + 1) // 2  # the orders with both a cosine and a sine slab, and m = 0
        spectrum_to_slabs(spectrum[:L], out)
        if n % 2 == 0:  # the Nyquist order has a cosine slab only
            out[n].copy_(spectrum[n // 2].real)
        return
    xn = x.detach().numpy()[:, rings].transpose(2, 1, 0)
    _r2r(backend)(xn, axes=(0,), real2hermitian=True, forward=False, inorm=0, out=out[1:].numpy(),
                  nthreads=threads or torch.get_num_threads())


def slabs_to_rings(H: torch.Tensor, L: int, rings: slice, out: torch.Tensor, backend: str,
                   threads: int | None = None) -> None:
    """Write the rings ``out[:, rings]`` of ``out [B, R, n]`` from the slabs ``H [n + 1, count, B]`` of orders
    m < L (c2r, see the module docstring); H is scratch: its slabs ≥ 2L are zeroed here. ``threads``: of a numpy
    backend (default torch's intra-op count)."""
    n = out.shape[-1]
    if backend == "torch":
        rows = torch.fft.irfft(slabs_to_spectrum(H, L).permute(2, 1, 0), n=n, norm="forward")
        if rings.step == 1:
            out[:, rings] = rows
        else:
            out.index_copy_(1, ring_index(rings, out.device), rows)
        return
    slabs = H.detach().numpy()
    slabs[2 * L:] = 0
    target = out.numpy()[:, rings].transpose(2, 1, 0)
    _r2r(backend)(slabs[1:], axes=(0,), real2hermitian=False, forward=True, inorm=0, out=target,
                  nthreads=threads or torch.get_num_threads())


@lru_cache(maxsize=None)
def _fastest_rings(n: int, count: int, batch: int, dtype: torch.dtype, threads: int, inverse: bool,
                   backends: tuple[str, ...]) -> str:
    """The backend of ``backends`` for one direction, for ``batch`` maps (a :func:`probe_count`) of ``count`` rings
    of length n, timed on the Legendre stage's north/south split (two calls, the second on mirrored rings)."""
    x = torch.randn(batch, 2 * count, n, dtype=dtype)
    H = torch.randn(n + 1, count, batch, dtype=dtype)
    label = f"{'inverse ' if inverse else ''}ring slabs n={n}, {batch}x{2 * count} rings, {dtype}, {threads} threads"
    halves = (slice(0, count, 1), slice(2 * count - 1, count - 1, -1))
    if not inverse:
        return _faster(label, lambda b: [rings_to_slabs(x, half, H, b, threads) for half in halves], backends)
    L = (n + 1) // 2
    return _faster(label, lambda b: [slabs_to_rings(H, L, half, x, b, threads) for half in halves], backends)


def ring_backend(option: FFTBackend, like: torch.Tensor, n: int, count: int, batch: int, inverse: bool,
                 on_twin: bool = False) -> str:
    """The backend for ``option`` (``"auto"``: the fastest, probed once per size) on ``like``'s device;
    ``on_twin``: of the numpy backends, each call on one thread (the halves of the Legendre stage's twin)."""
    check_option("fft_backend", option, FFTBackend)
    if on_twin and option == "torch":
        raise ValueError("the twin thread runs numpy ring backends only, not 'torch'")
    if like.device.type != "cpu" or option == "torch":
        return "torch"
    if option != "auto":
        _r2r(option)  # a clear error for a backend that is not installed
        return option
    threads, backends = (1, numpy_ring_backends()) if on_twin else (torch.get_num_threads(), ring_backends())
    return _fastest_rings(n, count, probe_count(batch, count * n), like.dtype, threads, inverse, backends)
