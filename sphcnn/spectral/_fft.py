"""CPU FFT backends, the ``"auto"`` probe that picks among them, and the 2-D real FFTs of the SO(3) transforms.

The S² ring transforms (:mod:`sphcnn.spectral._ring_fft`) use the same backends and probe.

On the CPU up to three backends are available: torch's (MKL, threaded by
torch itself), scipy's pocketfft and, when installed, ducc0 (pocketfft's
successor; both with ``nthreads``). Their speed differs by up to 4× depending
on the length: MKL is fast for short and power-of-two rings, the pocketfft
family for lengths with large prime factors such as the Gauss–Legendre 2L − 1
(511 = 7·73: 57 vs 19 ms for 4,096 float64 rings), and ducc0's SIMD kernels are
1.5–2.5× faster than scipy's for odd lengths (31-point 2-D float64 planes: 1.2
vs 2.8 ms for 256). ``"auto"`` times each, like FFTW's planner, once per
(direction, length, dtype, threads, batch rounded up to a power of two) on a
probe batch of that size (at most 4M samples: the ranking changes with the size,
as MKL's fixed cost per call weighs less on large batches, and with the
direction: on two threads MKL's 2-D forward and ducc0's inverse won at the s2cnn
network's 20 × 20 planes; MKL's 2-D inverse is never picked on the CPU, see
:func:`_fastest_2d`) and keeps the fastest; the choice is cached in memory
and logged. The probe times what the caller gets: for the rings, the slabs
in the layout of the Legendre stage (torch's need copies). Results agree to
rounding (tested). Other devices use torch.

Threads: the transforms start none of their own but one, the S² Legendre stage's
twin (:mod:`sphcnn.spectral._twin`), which runs numpy calls only. Parallel work runs
in torch's OpenMP pool (torch ops, MKL) and in the FFT libraries' ``nthreads``, both
sized by ``torch.get_num_threads()``. After every parallel region libgomp's threads
spin-wait for milliseconds (its default), taking their cores from any other
pool: ducc0 on two threads right after a torch op ran as fast as on one (the
network's 12,800-plane 20 × 20 inverse: 10.2 ms, vs 5.4–6.1 ms after 20 ms idle
or under ``OMP_WAIT_POLICY=passive``), and batch chunks on Python threads ran
slower than no split (SO(3) inverse FFT stage of the s2cnn network, 2 cores:
41 ms split, 18.5 ms not). A torch op on
a thread of our own is worse still: it starts a second OpenMP team, libgomp then
counts more threads than cores and sleeps between regions for the rest of the
process, so every small parallel torch op pays a wake-up, the user's included
(1.4–1.6× slower; e3nn's network step 8 % slower after our transforms had run).
The probe therefore times each backend just after a parallel torch op, as the
transforms meet it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
import scipy.fft
import torch

from ._workspace import Workspace, scratch

log = logging.getLogger(__name__)

try:  # scipy's pocketfft binding: r2c and c2r write into given (strided) outputs; scipy.fft's have no ``out``
    from scipy.fft._pocketfft.pypocketfft import c2r as _c2r, r2c as _r2c
except ImportError:  # pragma: no cover - other scipy layouts fall back to rfftn / irfftn + a copy
    _c2r = _r2c = None
if _c2r is not None and "out" not in (_c2r.__doc__ or ""):  # pragma: no cover - a binding without ``out``
    _c2r = _r2c = None

try:  # optional: the faster pocketfft successor (a dependency of the package, but not required to import it)
    import ducc0.fft as _ducc
except ImportError:  # pragma: no cover - installs without ducc0 use torch and scipy
    _ducc = None

FFTBackend = Literal["auto", "torch", "scipy", "ducc0"]
_PROBE_ELEMENTS = 1 << 22


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def half_spectrum_weight(L: int, n: int, like: torch.Tensor) -> torch.Tensor:
    """Factors turning W into the half spectrum Y with irfft(Y, norm="forward") = Re Σ W_m e^{imφ}."""
    w = like.new_full((L,), 0.5, dtype=_real_dtype(like.dtype))
    w[0] = 1
    if n % 2 == 0 and L == n // 2 + 1:
        w[-1] = 1  # the Nyquist term appears once
    return w


def cpu_backends() -> tuple[str, ...]:
    """The CPU backends installed here, in the order the ``"auto"`` probe times them."""
    return ("torch", "scipy") + (("ducc0",) if _ducc is not None else ())


def _numpy_r2c(a: np.ndarray, axes: tuple[int, ...], backend: str, threads: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """Unnormalized forward real FFT over ``axes`` (read in any strides) by scipy or ducc0, into ``out`` if given."""
    if backend == "ducc0":
        return _ducc.r2c(a, axes=axes, out=out, nthreads=threads)
    if _r2c is not None:
        return _r2c(a, axes=list(axes), forward=True, inorm=0, out=out, nthreads=threads)
    spectrum = scipy.fft.rfftn(a, axes=axes, workers=threads)
    if out is None:
        return spectrum
    out[...] = spectrum
    return out


def _numpy_c2r_into(a: np.ndarray, axes: tuple[int, ...], out: np.ndarray, backend: str, threads: int) -> None:
    """Unnormalized inverse of :func:`_numpy_r2c` written into ``out`` (any strides); may overwrite ``a``."""
    n = out.shape[axes[-1]]
    if backend == "ducc0":
        _ducc.c2r(a, axes=axes, lastsize=n, forward=False, inorm=0, out=out, nthreads=threads,
                  allow_overwriting_input=True)
    elif _c2r is not None:
        _c2r(a, axes=list(axes), lastsize=n, forward=False, inorm=0, out=out, nthreads=threads)
    else:  # scipy without the pocketfft binding: irfftn allocates, then a copy
        out[...] = scipy.fft.irfftn(a, s=[out.shape[ax] for ax in axes], axes=axes, norm="forward", workers=threads)


def _faster(label: str, run: Callable[[str], object], backends: tuple[str, ...] | None = None) -> str:
    """The CPU backend (of ``backends``, default all) for which ``run(backend)`` takes least time: best of 5,
    backends taking turns so that a burst of load on this (shared) machine hits them alike."""
    timings = dict.fromkeys(backends or cpu_backends(), float("inf"))
    for _ in range(5):
        for backend in timings:
            _after_parallel_torch_op()
            start = time.perf_counter()
            run(backend)
            timings[backend] = min(timings[backend], time.perf_counter() - start)
    choice = min(timings, key=timings.get)
    log.debug("%s: %s (%s)", label, choice, ", ".join(f"{b} {1e3 * t:.2f} ms" for b, t in timings.items()))
    return choice


def _after_parallel_torch_op() -> None:
    """Leave torch's OpenMP threads as a transform finds them: just after a parallel op, spin-waiting for
    the next one (libgomp's default, for milliseconds), and so taking cores from any other thread pool."""
    torch.ones(1 << 17).mul_(2)


def probe_count(count: int, item_elements: int) -> int:
    """How many items (rings of a map, planes) a probe transforms for a call on ``count`` of them: the next
    power of two, so that a few probes serve every batch size, but no more than ``_PROBE_ELEMENTS`` in all."""
    return max(1, min(1 << max(0, count - 1).bit_length(), _PROBE_ELEMENTS // item_elements))


@lru_cache(maxsize=None)
def _fastest_2d(n: int, planes: int, dtype: torch.dtype, threads: int, inverse: bool) -> str:
    """The backend of one direction of the 2-D FFT of ``planes`` (a :func:`probe_count`) n × n planes."""
    x = torch.randn(planes, n, n, dtype=dtype)
    label = f"{'inverse ' if inverse else ''}2-D FFT {planes} planes {n}x{n}, {dtype}, {threads} threads"
    if not inverse:
        workspace = Workspace()
        return _faster(label, lambda b: rfft2(x, b, workspace))
    spectrum = torch.fft.rfft2(x)
    # Not torch's: its CPU inverse over two axes makes full-size temporaries (a c2c result and a copy of it) that a
    # quiet probe barely sees and a training step pays in cache misses and page faults. In the s2cnn network on
    # 2 threads it beat ducc0's in the probe in 2 of 5 processes, yet in six alternating A/Bs of whole steps it was
    # 5–25 % slower (then also copying its result into ``out``); without that copy, six more A/Bs: medians 135 vs
    # 132 ms on average, with 15,000–38,000 page faults per step against ducc0's 9,000–16,000.
    numpy_backends = tuple(b for b in cpu_backends() if b != "torch")
    return _faster(label, _refilled(spectrum, lambda spec, b: irfft2(spec, n, b)), numpy_backends)


def _refilled(spectrum: torch.Tensor, inverse: Callable[[torch.Tensor, str], object]) -> Callable[[str], object]:
    """A probe run of ``inverse(spectrum, backend)`` on a copy of ``spectrum`` refilled before each run: the
    inverse transforms may overwrite their input."""
    work = torch.empty_like(spectrum)
    return lambda backend: inverse(work.copy_(spectrum), backend)


def rfft2(x: torch.Tensor, backend: str, workspace: Workspace | None = None) -> torch.Tensor:
    """Unnormalized 2-D real FFT over the last two dims (numpy backends on ``torch.get_num_threads()`` threads).

    The numpy backends write into ``workspace`` when given (overwritten by the next call); torch's result is
    always fresh: its ``out=`` is a copy of a fresh result (20 MB and 1.3 ms per call at the s2cnn network's
    SO(3) grid on two threads), so handing it a buffer would only add that copy.
    """
    if backend == "torch":
        return torch.fft.rfft2(x)
    *lead, n, n_last = x.shape
    out = scratch(workspace, "spectrum", (*lead, n, n_last // 2 + 1), x, x.dtype.to_complex())
    _numpy_r2c(x.detach().numpy(), (x.dim() - 2, x.dim() - 1), backend, torch.get_num_threads(), out.numpy())
    return out


def irfft2(spec: torch.Tensor, n: int, backend: str) -> torch.Tensor:
    """Unnormalized inverse of :func:`rfft2` (norm "forward"): fresh real ``[..., n, n]`` planes from the half
    spectra ``spec [..., n, n//2 + 1]``, which are scratch (the numpy backends may overwrite them)."""
    if backend == "torch":
        return torch.fft.irfft2(spec, s=(n, n), norm="forward")
    out = spec.new_empty(*spec.shape[:-1], n, dtype=_real_dtype(spec.dtype))
    _numpy_c2r_into(spec.detach().numpy(), (spec.dim() - 2, spec.dim() - 1), out.numpy(), backend,
                    torch.get_num_threads())
    return out


def fft2_backend(x: torch.Tensor, n: int, inverse: bool = False) -> str:
    """The faster backend of :func:`rfft2` (or, ``inverse``, :func:`irfft2`) for n × n planes: those of the
    real ``x [..., n, n]``, or of the half spectra ``x [..., n, n//2 + 1]`` (torch off the CPU)."""
    if x.device.type != "cpu":
        return "torch"
    planes = math.prod(x.shape[:-2])
    return _fastest_2d(n, probe_count(planes, n * n), _real_dtype(x.dtype), torch.get_num_threads(), inverse)
