"""Ring DFTs: every CPU backend against a direct DFT, adjointness, gradients, bad input."""

import math

import pytest
import torch

from sphcnn.spectral import _fft
from sphcnn.spectral._fft import cpu_backends, ring_irfft, ring_rfft

BACKENDS = cpu_backends()


def direct_dft(x: torch.Tensor, L: int) -> torch.Tensor:
    """X_m = Σ_k x_k e^{−2πikm/n} by an explicit sum: [B, R, n] → [L, R, B]."""
    n = x.shape[-1]
    k = torch.arange(n, dtype=torch.float64)
    m = torch.arange(L, dtype=torch.float64)
    E = torch.exp(-2j * math.pi * torch.outer(m, k) / n)  # [L, n]
    return torch.einsum("mk,brk->mrb", E, x.to(torch.complex128))


@pytest.mark.parametrize("backend", [*BACKENDS, "auto"])
@pytest.mark.parametrize("n, L", [(15, 8), (16, 9), (16, 5), (21, 7)])
def test_matches_direct_dft_and_inverse(backend, n, L, gen):
    x = torch.randn(3, 4, n, generator=gen, dtype=torch.float64)
    X = ring_rfft(x, L, backend)
    assert X.shape == (L, 4, 3)
    assert torch.allclose(X, direct_dft(x, L), atol=1e-12)
    W = torch.randn(L, 4, 3, generator=gen, dtype=torch.complex128)
    if n % 2 == 0 and L == n // 2 + 1:
        W[-1].imag = 0  # the Nyquist term's imaginary part never reaches the samples
    W[0].imag = 0
    f = ring_irfft(W, n, backend)
    k = torch.arange(n, dtype=torch.float64)
    E = torch.exp(2j * math.pi * torch.outer(torch.arange(L, dtype=torch.float64), k) / n)
    assert torch.allclose(f, torch.einsum("mrb,mk->brk", W, E).real, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_pair_and_gradients(backend, gen):
    n, L = 13, 5
    x = torch.randn(2, 3, n, generator=gen, dtype=torch.float64)
    W = torch.randn(L, 3, 2, generator=gen, dtype=torch.complex128)
    lhs = (torch.view_as_real(ring_rfft(x, L, backend)) * torch.view_as_real(W)).sum()
    rhs = (x * ring_irfft(W, n, backend)).sum()
    assert torch.allclose(lhs, rhs, atol=1e-12)  # real inner products: each is the other's adjoint
    x.requires_grad_(True)
    W.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ring_rfft(t, L, backend), (x,))
    assert torch.autograd.gradcheck(lambda t: ring_irfft(t, n, backend), (W,))
    assert torch.autograd.gradgradcheck(lambda t: ring_rfft(t, L, backend), (x,))


def test_backends_agree_in_float32_and_fallback(gen, monkeypatch):
    x = torch.randn(4, 6, 31, generator=gen)
    a = ring_rfft(x, 16, "torch")
    f_pocketfft = ring_irfft(a, 31, "scipy")
    for backend in BACKENDS:
        b = ring_rfft(x, 16, backend)
        assert b.dtype == torch.complex64
        assert torch.allclose(a, b, atol=1e-4)
        assert torch.allclose(ring_irfft(a, 31, backend), f_pocketfft, atol=1e-4)
    monkeypatch.setattr(_fft, "_c2r", None)  # scipy without the pocketfft binding
    assert torch.allclose(ring_irfft(a, 31, "scipy"), f_pocketfft, atol=1e-5)
    assert torch.allclose(ring_irfft(a, 31, "torch"), f_pocketfft, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="fft_backend must be one of"):
        ring_rfft(torch.zeros(1, 1, 8), 3, "mkl")
    with pytest.raises(ValueError, match="L <= n//2 \\+ 1 = 5"):
        ring_rfft(torch.zeros(1, 1, 8), 6)
    with pytest.raises(ValueError, match="rings \\[B, R, n\\]"):
        ring_rfft(torch.zeros(8), 3)
    with pytest.raises(ValueError, match="W \\[L, R, B\\]"):
        ring_irfft(torch.zeros(6, 1, 1, dtype=torch.complex64), 8)


def test_missing_ducc0_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_fft, "_ducc", None)
    assert _fft.cpu_backends() == ("torch", "scipy")
    with pytest.raises(ValueError, match="needs the ducc0 package"):
        ring_rfft(torch.zeros(1, 1, 8), 3, "ducc0")


@pytest.mark.parametrize("n", [7, 8])
@pytest.mark.parametrize("binding", [True, False])
def test_2d_backends_agree(n, binding, gen, monkeypatch):
    if not binding:
        monkeypatch.setattr(_fft, "_c2r", None)  # scipy without the pocketfft binding
    x = torch.randn(3, 2, n, n, generator=gen, dtype=torch.float64)
    spectra = {b: _fft.rfft2(x, b) for b in BACKENDS}
    for backend in BACKENDS:
        assert torch.allclose(spectra[backend], torch.fft.rfft2(x), atol=1e-12)
        out = torch.empty_like(x)
        _fft.irfft2_into(spectra["torch"].clone(), out, backend)  # the spectrum is scratch
        assert torch.allclose(out, x * n * n, atol=1e-10)  # unnormalized inverse ("forward" norm)


def test_torch_backend_split_over_threads_matches_one_call(gen, monkeypatch):
    x = torch.randn(3, 5, 16, generator=gen, dtype=torch.float64)
    one = ring_rfft(x, 9, "torch")
    threads = torch.get_num_threads()
    monkeypatch.setattr(_fft, "MIN_ELEMENTS_PER_THREAD", 1)  # split even tiny inputs over the rings
    torch.set_num_threads(3)
    try:
        # MKL may pick another algorithm for a smaller batch: equal to rounding, not bitwise
        assert torch.allclose(ring_rfft(x, 9, "torch"), one, rtol=0, atol=1e-13)
        assert torch.allclose(ring_irfft(one, 16, "torch"), ring_irfft(one, 16, "scipy"), atol=1e-12)
    finally:
        torch.set_num_threads(threads)
