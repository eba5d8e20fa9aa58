"""Ring DFTs in the slab layout: every CPU backend against direct sums, mirrored rings, c2r synthesis, errors."""

import math

import pytest
import torch

from sphcnn.spectral import _ring_fft
from sphcnn.spectral._ring_fft import ring_backend, ring_backends, rings_to_slabs, slabs_to_rings

BACKENDS = ring_backends()


def cos_sin(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(2πjm/n), sin(2πjm/n) for m ≤ n//2 (rows) and j < n (columns), float64."""
    angle = 2 * math.pi * torch.outer(torch.arange(n // 2 + 1, dtype=torch.float64), torch.arange(n)) / n
    return angle.cos(), angle.sin()


def direct_slabs(x: torch.Tensor) -> torch.Tensor:
    """The slabs by explicit sums (module docstring): [B, R, n] → [n + 1, R, B], slab 0 = 0."""
    n = x.shape[-1]
    cos, sin = cos_sin(n)
    H = torch.zeros(n + 1, x.shape[1], x.shape[0], dtype=torch.float64)
    H[1] = x.sum(-1).T
    for m in range(1, n // 2 + 1):
        H[2 * m] = (x * cos[m]).sum(-1).T
        if 2 * m + 1 <= n:
            H[2 * m + 1] = (x * sin[m]).sum(-1).T
    return H


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [15, 16, 21])
def test_slabs_match_direct_sums_also_on_mirrored_rings(backend, n, gen):
    x = torch.randn(3, 6, n, generator=gen, dtype=torch.float64)
    expected = direct_slabs(x)
    H = torch.full((n + 1, 6, 3), math.nan, dtype=torch.float64)
    rings_to_slabs(x, slice(0, 6, 1), H, backend)
    assert torch.isnan(H[0]).all()  # slab 0 is the caller's
    assert torch.allclose(H[1:], expected[1:], atol=1e-12)
    mirrored = torch.full((n + 1, 3, 3), math.nan, dtype=torch.float64)
    rings_to_slabs(x, slice(5, 2, -1), mirrored, backend)  # rings 5, 4, 3
    assert torch.allclose(mirrored[1:], expected[1:, [5, 4, 3]], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n, L", [(15, 8), (16, 8), (21, 5)])
def test_synthesis_is_the_c2r_of_orders_below_L_written_only_at_the_rings(backend, n, L, gen):
    H = torch.randn(n + 1, 3, 2, generator=gen, dtype=torch.float64)
    cos, sin = cos_sin(n)
    expected = H[1].T[..., None] * torch.ones(n, dtype=torch.float64)
    for m in range(1, L):
        expected = expected + 2 * (H[2 * m].T[..., None] * cos[m] + H[2 * m + 1].T[..., None] * sin[m])
    out = torch.full((2, 7, n), math.nan, dtype=torch.float64)
    slabs_to_rings(H.clone(), L, slice(6, 3, -1), out, backend)  # rings 6, 5, 4
    assert torch.allclose(out[:, [6, 5, 4]], expected, atol=1e-12)
    assert torch.isnan(out[:, :4]).all()  # other rings untouched


def test_backends_agree_in_float32(gen):
    x = torch.randn(4, 6, 31, generator=gen)
    reference = direct_slabs(x.double())
    H = torch.randn(32, 6, 4, generator=gen)
    outputs = []
    for backend in BACKENDS:
        slabs = torch.zeros(32, 6, 4)
        rings_to_slabs(x, slice(0, 6, 1), slabs, backend)
        assert slabs.dtype == torch.float32
        assert torch.allclose(slabs[1:].double(), reference[1:], atol=1e-4)
        out = torch.empty(4, 6, 31)
        slabs_to_rings(H.clone(), 16, slice(0, 6, 1), out, backend)
        outputs.append(out)
    assert all(torch.allclose(out, outputs[0], atol=1e-4) for out in outputs)


def test_bad_options_and_missing_backends(monkeypatch):
    x = torch.zeros(1, 2, 8)
    with pytest.raises(ValueError, match="fft_backend must be one of"):
        ring_backend("mkl", x, 8, 2, 1, False)
    monkeypatch.setattr(_ring_fft, "_ducc", None)
    assert "ducc0" not in ring_backends()
    with pytest.raises(ValueError, match="'ducc0' is not available here"):
        ring_backend("ducc0", x, 8, 2, 1, False)


def test_each_direction_is_probed_on_its_own_with_a_power_of_two_batch(monkeypatch):
    asked = []
    monkeypatch.setattr(_ring_fft, "_fastest_rings", lambda *probe: asked.append(probe) or "torch")
    x = torch.zeros(3, 4, 9)
    assert ring_backend("auto", x, 9, 2, 3, False) == "torch"
    ring_backend("auto", x, 9, 2, 3, True)
    threads, every = torch.get_num_threads(), _ring_fft.ring_backends()
    assert asked == [(9, 2, 4, torch.float32, threads, False, every), (9, 2, 4, torch.float32, threads, True, every)]
    assert ring_backend("scipy" if "scipy" in BACKENDS else "torch", x, 9, 2, 3, False) in BACKENDS  # no probe
    assert len(asked) == 2
    ring_backend("auto", x, 9, 2, 3, False, on_twin=True)  # the twin's halves: numpy backends, one thread each
    assert asked[2] == (9, 2, 4, torch.float32, 1, False, _ring_fft.numpy_ring_backends())
    with pytest.raises(ValueError, match="numpy ring backends only"):
        ring_backend("torch", x, 9, 2, 3, False, on_twin=True)


def test_the_probe_returns_an_installed_backend():
    for inverse in (False, True):
        assert _ring_fft._fastest_rings(15, 3, 2, torch.float64, torch.get_num_threads(), inverse,
                                        _ring_fft.ring_backends()) in BACKENDS
