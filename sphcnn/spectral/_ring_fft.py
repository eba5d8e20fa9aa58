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

The rings come folded by the equatorial symmetry (:mod:`sphcnn.spectral._ring_legendre`): one
array per parity, ``[parity, batch, ring, sample]``. The numpy backends (ducc0, scipy's pocketfft
binding) read it as it is and write the slabs ``[parity, slab, ring, batch]`` (batch innermost, as
the Legendre matmuls read them) straight into the caller's buffer through a transposed view, and
the reverse; torch's (the only one off the CPU) goes through its complex FFT and copies.
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
    return ("torch",) + (("scipy",) if _scipy_r2r is not None else ()) + (("ducc0",) if _ducc is not None else ())


def _r2r(backend: str):  # noqa: ANN202
    if backend == "ducc0" and _ducc is not None:
        return _ducc.r2r_fftpack
    if backend == "scipy" and _scipy_r2r is not None:
        return _scipy_r2r
    raise ValueError(f"ring FFT backend {backend!r} is not available here (available: {list(ring_backends())})")


def spectrum_to_slabs(X: torch.Tensor, out: torch.Tensor) -> None:
    """Slabs 1 … 2L − 1 of ``out [..., ≥ 2L, R, B]`` from the complex spectra ``X [..., L, R, B]`` (X_m = Σ x e^{−imφ})."""
    L = X.shape[-3]
    Xr = torch.view_as_real(X)
    out[..., 1, :, :].copy_(Xr[..., 0, :, :, 0])
    if L > 1:
        pairs = out[..., 2:2 * L, :, :].unflatten(-3, (L - 1, 2))
        pairs.copy_(Xr[..., 1:, :, :, :].movedim(-1, -3))
        pairs[..., 1, :, :].neg_()  # the sine sums are −Im X


def slabs_to_spectrum(H: torch.Tensor, L: int) -> torch.Tensor:
    """Complex ``Y [..., L, R, B]`` with Y_0 = H[1], Y_m = H[2m] − i H[2m + 1] from ``H [..., ≥ 2L, R, B]``:
    x = Re Σ_m w_m Y_m e^{imφ} (w = 1, 2, 2, …)."""
    Y = H.new_empty((*H.shape[:-3], L, *H.shape[-2:]), dtype=H.dtype.to_complex())
    Yr = torch.view_as_real(Y)
    Yr[..., 0, :, :, 0] = H[..., 1, :, :]
    Yr[..., 0, :, :, 1] = 0
    if L > 1:
        Yr[..., 1:, :, :, :].copy_(H[..., 2:2 * L, :, :].unflatten(-3, (L - 1, 2)).movedim(-3, -1))
        Yr[..., 1:, :, :, 1].neg_()
    return Y


def rings_to_slabs(x: torch.Tensor, out: torch.Tensor, backend: str) -> None:
    """Slabs ``out[:, 1:n + 1] [P, n, C, B]`` of the real rings ``x [P, B, C, n]``; other slabs untouched."""
    n = x.shape[-1]
    if backend == "torch":
        spectrum = torch.fft.rfft(x).permute(0, 3, 2, 1)  # [P, n//2 + 1, C, B]
        L = (n + 1) // 2  # the orders with both a cosine and a sine slab, and m = 0
        spectrum_to_slabs(spectrum[:, :L], out)
        if n % 2 == 0:  # the Nyquist order has a cosine slab only
            out[:, n].copy_(spectrum[:, n // 2].real)
        return
    _r2r(backend)(x.detach().numpy(), axes=(3,), real2hermitian=True, forward=False, inorm=0,
                  out=out[:, 1:n + 1].numpy().transpose(0, 3, 2, 1), nthreads=torch.get_num_threads())


def slabs_to_rings(H: torch.Tensor, L: int, out: torch.Tensor, backend: str) -> None:
    """The rings ``out [P, B, C, n]`` from the slabs ``H [P, ≥ n + 1, C, B]`` of orders m < L (c2r, see the module
    docstring); H is scratch: its slabs ≥ 2L are zeroed here."""
    n = out.shape[-1]
    if backend == "torch":
        out.copy_(torch.fft.irfft(slabs_to_spectrum(H, L).permute(0, 3, 2, 1), n=n, norm="forward"))
        return
    H[:, 2 * L:] = 0
    _r2r(backend)(H[:, 1:n + 1].numpy(), axes=(1,), real2hermitian=False, forward=True, inorm=0,
                  out=out.numpy().transpose(0, 3, 2, 1), nthreads=torch.get_num_threads())


@lru_cache(maxsize=None)
def _fastest_rings(n: int, count: int, batch: int, dtype: torch.dtype, threads: int, inverse: bool) -> str:
    """The backend of one direction for ``batch`` maps (a :func:`probe_count`) of ``count`` rings of length n per
    parity, timed on both parities in the Legendre stage's layout."""
    x = torch.randn(2, batch, count, n, dtype=dtype)
    H = torch.randn(2, n + 1, count, batch, dtype=dtype)
    label = f"{'inverse ' if inverse else ''}ring slabs n={n}, {batch}x2x{count} rings, {dtype}, {threads} threads"
    if not inverse:
        return _faster(label, lambda b: rings_to_slabs(x, H, b), ring_backends())
    return _faster(label, lambda b: slabs_to_rings(H, (n + 1) // 2, x, b), ring_backends())


def ring_backend(option: FFTBackend, like: torch.Tensor, n: int, count: int, batch: int, inverse: bool) -> str:
    """The backend for ``option`` (``"auto"``: the fastest, probed once per size) on ``like``'s device."""
    check_option("fft_backend", option, FFTBackend)
    if like.device.type != "cpu" or option == "torch":
        return "torch"
    if option != "auto":
        _r2r(option)  # a clear error for a backend that is not installed
        return option
    return _fastest_rings(n, count, probe_count(batch, count * n), like.dtype, torch.get_num_threads(), inverse)
