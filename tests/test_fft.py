"""The 2-D FFT backends of the SO(3) transforms, the backend probe, and the no-thread rule."""

import subprocess
import sys

import pytest
import torch

from sphcnn.spectral import _fft, _workspace
from sphcnn.spectral._fft import cpu_backends

BACKENDS = cpu_backends()


def test_missing_ducc0_leaves_torch_and_scipy(monkeypatch):
    monkeypatch.setattr(_fft, "_ducc", None)
    assert _fft.cpu_backends() == ("torch", "scipy")


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("binding", [True, False])
def test_2d_backends_agree(n, binding, gen, monkeypatch):
    if not binding:
        monkeypatch.setattr(_fft, "_c2r", None)  # scipy without the pocketfft binding
    x = torch.randn(3, 2, n, n, generator=gen, dtype=torch.float64)
    spectra = {b: _fft.rfft2(x, b) for b in BACKENDS}
    for backend in BACKENDS:
        assert torch.allclose(spectra[backend], torch.fft.rfft2(x), atol=1e-12)
        out = _fft.irfft2(spectra["torch"].clone(), n, backend)  # the spectrum is scratch
        assert torch.allclose(out, x * n * n, atol=1e-10)  # unnormalized inverse ("forward" norm)


def test_2d_forward_spectrum_lives_in_the_workspace_except_torchs(gen, monkeypatch):
    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)  # keep even this small spectrum
    x = torch.randn(3, 2, 8, 8, generator=gen, dtype=torch.float64)
    workspace = _workspace.Workspace()
    for backend in BACKENDS:
        first, second = _fft.rfft2(x, backend, workspace), _fft.rfft2(2 * x, backend, workspace)
        assert torch.allclose(second, 2 * torch.fft.rfft2(x), atol=1e-12)
        # torch's out= would copy its fresh result, so torch's spectra are its own
        assert (first.data_ptr() == second.data_ptr()) == (backend != "torch")


_START_NO_THREAD = r"""
import os, numpy as np, scipy.fft, torch
from sphcnn.spectral import S2Grid, SHT, InverseSHT, SO3Grid, SO3FFT, InverseSO3FFT, _fft, _ring_fft
from sphcnn.spectral import so3

torch.set_num_threads(2)
threads = lambda: len(os.listdir("/proc/self/task"))
# start the pools that may rightly start: torch's OpenMP team (this thread's), scipy's and ducc0's
torch.ones(1 << 22).mul_(2)
scipy.fft.rfft(np.ones((64, 1024)), workers=2)
if _fft._ducc is not None:
    _fft._ducc.r2c(np.ones((64, 1024)), axes=(1,), nthreads=2)
before = threads()


def transforms():
    grid = S2Grid(16, "gl")
    x = torch.randn(4, *grid.shape, dtype=torch.float64, requires_grad=True)
    InverseSHT(grid, dtype=torch.float64)(SHT(grid, dtype=torch.float64)(x)).square().sum().backward()
    grid = SO3Grid(6, "gl")
    f = torch.randn(4, *grid.shape, dtype=torch.float64, requires_grad=True)
    InverseSO3FFT(grid, dtype=torch.float64)(SO3FFT(grid, dtype=torch.float64)(f)).square().sum().backward()


transforms()  # "auto": the probes time every backend
for backend in _fft.cpu_backends():
    _ring_fft._fastest_rings = lambda *probe, backend=backend: backend
    so3.fft2_backend = lambda x, n, inverse=False, backend=backend: backend
    transforms()
print(threads() - before)
grid = S2Grid(128, "gl")  # large enough for the Legendre stage's twin: its only thread, running no torch kernel
x = torch.randn(16, *grid.shape, dtype=torch.float64, requires_grad=True)
InverseSHT(grid, dtype=torch.float64)(SHT(grid, dtype=torch.float64)(x)).square().sum().backward()
print(threads() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_transforms_start_no_thread():
    """The transforms start no thread of their own but the S² Legendre stage's twin (see :mod:`sphcnn.spectral._fft`):
    a torch op on such a thread would start a second OpenMP team and slow every later parallel torch op."""
    result = subprocess.run([sys.executable, "-c", _START_NO_THREAD], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["0", "1"], result.stdout


def test_probe_batches_are_powers_of_two_within_the_sample_cap():
    assert [_fft.probe_count(c, 100) for c in (1, 2, 3, 5, 16, 17)] == [1, 2, 4, 8, 16, 32]
    cap = _fft._PROBE_ELEMENTS
    assert _fft.probe_count(10**9, 1000) == cap // 1000  # large calls: the cap, in whole items
    assert _fft.probe_count(7, 2 * cap) == 1  # items above the cap: still one


def test_each_direction_is_probed_on_its_own(monkeypatch):
    """Forward and inverse may pick different backends (MKL's 2-D forward and ducc0's inverse won on 2 cores)."""
    asked = []
    monkeypatch.setattr(_fft, "_fastest_2d", lambda n, planes, dtype, threads, inverse: asked.append(inverse)
                        or ("scipy" if inverse else "torch"))
    x = torch.randn(3, 5, 8, 8)
    assert _fft.fft2_backend(x, 8) == "torch" and _fft.fft2_backend(x, 8, inverse=True) == "scipy"
    assert asked == [False, True]


def test_the_2d_inverse_probe_leaves_out_torch():
    """torch's CPU inverse over two axes makes full-size temporaries the probe barely sees (see _fastest_2d)."""
    assert _fft._fastest_2d(8, 4, torch.float64, torch.get_num_threads(), True) in ("scipy", "ducc0")
    assert _fft._fastest_2d(8, 4, torch.float64, torch.get_num_threads(), False) in _fft.cpu_backends()
