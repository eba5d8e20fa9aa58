"""SO(3) transforms and spectral correlations against direct evaluation and quadrature."""

import pytest
import torch

from sphcnn.spectral import (
    S2Grid,
    SO3FFT,
    InverseSO3FFT,
    SO3Grid,
    num_so3_coeffs,
    random_rotation,
    s2_correlation,
    so3_correlation,
    so3_fft,
    so3_ifft,
    wigner_D_block,
)
from sphcnn.spectral._fft import cpu_backends
from sphcnn.spectral.testing import evaluate_sh, evaluate_so3, random_coefficients, relative_error


def random_so3_coefficients(L, *batch, generator=None):
    return torch.randn(*batch, num_so3_coeffs(L), generator=generator, dtype=torch.float64)


def test_coefficient_count():
    assert [num_so3_coeffs(L) for L in range(1, 5)] == [1, 10, 35, 84]


@pytest.mark.parametrize("kind", ["soft", "gl"])
@pytest.mark.parametrize("L", [1, 3, 8])
def test_synthesis_matches_direct_evaluation_and_roundtrip(kind, L, gen):
    grid = SO3Grid(L, kind)
    F = random_so3_coefficients(L, 2, generator=gen)
    f = so3_ifft(F, grid)
    assert f.shape == (2, *grid.shape)
    assert relative_error(f, evaluate_so3(F, grid.matrices())) < 1e-12
    assert relative_error(so3_fft(f, grid), F) < 1e-12


@pytest.mark.parametrize("kind", ["soft", "gl"])
@pytest.mark.parametrize("L", [24, pytest.param(64, marks=pytest.mark.slow)])
def test_roundtrip_at_high_bandlimit(kind, L, gen):
    grid = SO3Grid(L, kind)
    F = random_so3_coefficients(L, generator=gen)
    assert relative_error(so3_fft(so3_ifft(F, grid), grid), F) < 1e-12


@pytest.mark.parametrize("kind", ["soft", "gl"])
def test_single_block_reproduces_wigner_D(kind):
    grid = SO3Grid(5, kind)
    ell, m, n = 3, 1, -2
    F = torch.zeros(num_so3_coeffs(5), dtype=torch.float64)
    F[num_so3_coeffs(ell) + (m + ell) * (2 * ell + 1) + (n + ell)] = 1 / (2 * ell + 1)
    D = wigner_D_block(ell, grid.alpha, grid.beta, grid.gamma)
    assert torch.allclose(so3_ifft(F, grid), D[..., m + ell, n + ell], atol=1e-14)


@pytest.mark.parametrize("kind", ["soft", "gl"])
def test_parseval_and_constant(kind, gen):
    L = 6
    grid = SO3Grid(L, kind)
    F = random_so3_coefficients(L, generator=gen)
    f = so3_ifft(F, grid)
    energy = sum((2 * ell + 1) * (F[num_so3_coeffs(ell): num_so3_coeffs(ell + 1)] ** 2).sum() for ell in range(L))
    assert torch.allclose((grid.weights * f**2).sum(), energy, rtol=1e-12)
    ones = so3_fft(torch.ones(grid.shape, dtype=torch.float64), grid)
    assert abs(ones[0] - 1) < 1e-14 and ones[1:].abs().max() < 1e-13  # ∫ 1 dR = 1


def test_lower_output_bandlimit_and_dtype_and_errors(gen):
    grid = SO3Grid(6)
    F = random_so3_coefficients(6, generator=gen)
    f = so3_ifft(F, grid)
    assert relative_error(so3_fft(f, grid, L=3), F[: num_so3_coeffs(3)]) < 1e-12
    assert relative_error(so3_fft(f, grid, L=1), F[:1]) < 1e-12  # the weighted-sum path
    gl = SO3Grid(6, "gl")
    assert relative_error(so3_fft(so3_ifft(F, gl), gl, L=1), F[:1]) < 1e-12
    assert relative_error(so3_fft(f.float(), grid).double(), F) < 1e-5
    m = SO3FFT(grid, dtype=torch.float32).double()
    assert relative_error(m(f), F) < 1e-12
    with pytest.raises(ValueError, match="trailing SO\\(3\\) grid shape \\(12, 12, 12\\)"):
        so3_fft(torch.zeros(12, 12, 11), grid)
    with pytest.raises(ValueError, match="L\\(4L²−1\\)/3"):
        so3_ifft(torch.zeros(11, dtype=torch.float64), grid)
    with pytest.raises(ValueError, match="SO\\(3\\) grid kind must be one of"):
        SO3Grid(4, "healpix")
    with pytest.raises(ValueError, match="do not fit"):
        so3_ifft(random_so3_coefficients(7), grid)


def test_gradcheck():
    grid = SO3Grid(3, "gl")
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    x = torch.randn(*grid.shape, dtype=torch.float64, requires_grad=True)
    F = torch.randn(num_so3_coeffs(3), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fwd, (x,))
    assert torch.autograd.gradcheck(inv, (F,))
    assert torch.autograd.gradgradcheck(fwd, (x,))  # the FFT adjoints are differentiable themselves
    assert torch.autograd.gradgradcheck(inv, (F,))
    assert torch.autograd.gradcheck(SO3FFT(grid, L=1, dtype=torch.float64), (x,))


@pytest.mark.parametrize("kind", ["soft", "gl"])
def test_s2_correlation_matches_quadrature(kind, gen):
    """[ψ ⋆ f](R) = ∫ f(x) ψ(R⁻¹x) dx by quadrature on an exact S² grid, at random R."""
    L = 6
    f_hat, psi_hat = random_coefficients(L, generator=gen), random_coefficients(L, generator=gen)
    s2 = S2Grid(L, "gl")
    x = s2.points()
    f = evaluate_sh(f_hat, x)
    R = random_rotation(5, generator=gen)
    direct = torch.stack([(s2.weights * f * evaluate_sh(psi_hat, x @ Ri)).sum() for Ri in R])  # R⁻¹x = x @ R
    F = s2_correlation(f_hat, psi_hat)
    assert relative_error(evaluate_so3(F, R), direct) < 1e-10
    # and the grid values through the FFT
    grid = SO3Grid(L, kind)
    on_grid = so3_ifft(F, grid)
    Rg = grid.matrices().reshape(-1, 3, 3)[::37]
    direct_g = torch.stack([(s2.weights * f * evaluate_sh(psi_hat, x @ Ri)).sum() for Ri in Rg])
    assert relative_error(on_grid.reshape(-1)[::37], direct_g) < 1e-10


def test_so3_correlation_matches_quadrature(gen):
    """[ψ ⋆ f](R) = ∫ f(Q) ψ(R⁻¹Q) dQ by quadrature on an exact SO(3) grid, at random R."""
    L = 4
    F, Psi = random_so3_coefficients(L, generator=gen), random_so3_coefficients(L, generator=gen)
    grid = SO3Grid(L, "gl")
    Q = grid.matrices()
    f = evaluate_so3(F, Q)
    R = random_rotation(4, generator=gen)
    direct = torch.stack([(grid.weights * f * evaluate_so3(Psi, Ri.T @ Q)).sum() for Ri in R])
    assert relative_error(evaluate_so3(so3_correlation(F, Psi), R), direct) < 1e-10


def test_correlation_shape_errors():
    with pytest.raises(ValueError, match="trailing length L²"):
        s2_correlation(torch.zeros(9), torch.zeros(16))
    with pytest.raises(ValueError, match="same trailing length"):
        so3_correlation(torch.zeros(10), torch.zeros(35))


def test_three_threads_match_one(gen):
    grid = SO3Grid(4, "gl")
    F = random_so3_coefficients(4, 5, generator=gen)
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    f_one, F_one = inv(F), fwd(inv(F))
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        f_split = inv(F)  # the FFT libraries split the batch: equal to rounding
        assert torch.allclose(f_split, f_one, rtol=0, atol=1e-13)
        assert torch.allclose(fwd(f_split), F_one, rtol=0, atol=1e-13)
        G = F.clone().requires_grad_(True)  # through the autograd Functions
        (fwd(inv(G)) * F).sum().backward()
        assert torch.allclose(G.grad, F, atol=1e-12)  # fwd ∘ inv = identity, so the gradient is F
        with torch.inference_mode():  # as in Lightning's validation
            assert torch.allclose(fwd(inv(F)), F_one, rtol=0, atol=1e-13)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["soft", "gl"])
@pytest.mark.parametrize(("L", "grid_L"), [(2, 2), (5, 7), (24, 24)])
def test_single_signal_path_matches_the_batched_one(kind, L, grid_L, gen):
    """One signal (L ≤ 24) takes the one-block path with a sparse change of basis: same values and gradients
    as in a batch."""
    grid = SO3Grid(grid_L, kind)
    fwd, inv = SO3FFT(grid, L=L, dtype=torch.float64), InverseSO3FFT(grid, L=L, dtype=torch.float64)
    assert fwd.single_signal and inv.single_signal
    F = random_so3_coefficients(L, 2, generator=gen)
    f_batch = inv(F)
    f_one = inv(F[0])
    if L < 8:  # the batched path is checked against direct evaluation at larger L elsewhere
        assert relative_error(f_one, evaluate_so3(F[0], grid.matrices())) < 1e-12
    assert relative_error(f_one, f_batch[0]) < 1e-13
    assert relative_error(fwd(f_one), F[0]) < 1e-12
    assert relative_error(fwd(f_batch)[0], fwd(f_one)) < 1e-13
    weight = torch.randn(num_so3_coeffs(L), generator=gen, dtype=torch.float64)
    grads = []
    for coefficients in (F[:1], F[0]):  # batch of one still takes the single-signal path: compare to batch of 2
        G = coefficients.clone().requires_grad_(True)
        (fwd(inv(G)) * weight).sum().backward()
        grads.append(G.grad.reshape(-1))
    G = F.clone().requires_grad_(True)
    (fwd(inv(G)) * weight).sum().backward()
    assert torch.allclose(grads[0], G.grad[0], atol=1e-12) and torch.allclose(grads[1], G.grad[0], atol=1e-12)


@pytest.mark.parametrize("batch", [2, 3])
def test_both_contraction_orientations_agree(batch, gen, monkeypatch):
    """Few columns (batch 2; batch 1 above L = 24) run the β-contraction transposed: both orientations,
    forward and backward."""
    import importlib

    so3_module = importlib.import_module("sphcnn.spectral.so3")
    grid = SO3Grid(6, "soft")
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    F = random_so3_coefficients(6, batch, generator=gen)
    weight = torch.randn(batch, num_so3_coeffs(6), generator=gen, dtype=torch.float64)
    results = []
    for few_columns in (0, 1 << 30):  # never transposed, always transposed
        monkeypatch.setattr(so3_module, "_FEW_COLUMNS", few_columns)
        G = F.clone().requires_grad_(True)
        f = inv(G)
        (fwd(f) * weight).sum().backward()
        assert relative_error(f, evaluate_so3(F, grid.matrices())) < 1e-12
        results.append((f.detach(), G.grad))
    (f0, g0), (f1, g1) = results
    assert torch.allclose(f0, f1, atol=1e-12) and torch.allclose(g0, g1, atol=1e-12)
    assert torch.allclose(g0, weight, atol=1e-10)  # fwd ∘ inv = identity


@pytest.mark.parametrize("backend", cpu_backends())
def test_every_fft_backend(backend, gen, monkeypatch):
    import importlib

    so3_module = importlib.import_module("sphcnn.spectral.so3")
    monkeypatch.setattr(so3_module, "fft2_backend", lambda x, n, inverse=False: backend)
    grid = SO3Grid(4, "gl")
    F = random_so3_coefficients(4, 3, generator=gen)
    f = so3_ifft(F, grid)
    assert relative_error(f, evaluate_so3(F, grid.matrices())) < 1e-12
    assert relative_error(so3_fft(f, grid), F) < 1e-12
    with torch.inference_mode():
        assert relative_error(so3_fft(so3_ifft(F, grid), grid), F) < 1e-12
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    assert torch.autograd.gradcheck(fwd, (f[0].clone().requires_grad_(True),))
    assert torch.autograd.gradcheck(inv, (F[0].clone().requires_grad_(True),))


def test_torch_forward_fft_in_batch_chunks(gen, monkeypatch):
    """torch's CPU forward runs in batch chunks (here of one signal): results and adjoints as unchunked."""
    import importlib

    so3_module = importlib.import_module("sphcnn.spectral.so3")
    monkeypatch.setattr(so3_module, "fft2_backend", lambda x, n, inverse=False: "torch")
    monkeypatch.setattr(so3_module, "_TORCH_SPECTRUM_CHUNK_BYTES", 1)
    grid = SO3Grid(4, "gl")
    F = random_so3_coefficients(4, 3, generator=gen)
    f = evaluate_so3(F, grid.matrices())
    assert relative_error(so3_fft(f, grid), F) < 1e-12
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    assert torch.autograd.gradcheck(fwd, (f.clone().requires_grad_(True),))
    assert torch.autograd.gradcheck(inv, (F.clone().requires_grad_(True),))  # its backward is the chunked map


def test_workspace_reuse_never_leaks_into_results_or_gradients(gen, monkeypatch):
    """Scratch buffers are reused between calls (here for every size) only while autograd is not recording."""
    import copy

    from sphcnn.spectral import _workspace

    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    grid = SO3Grid(5, "gl")
    fwd, inv = SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    F1, F2 = (torch.randn(3, num_so3_coeffs(5), dtype=torch.float64, generator=gen) for _ in range(2))
    f1 = inv(F1)
    f1_copy = f1.clone()
    f2 = inv(F2)
    a1, a2 = fwd(f1), fwd(f2)
    assert torch.equal(f1, f1_copy)
    assert relative_error(a1, F1) < 1e-12 and relative_error(a2, F2) < 1e-12
    assert fwd.workspace.nbytes() > 0 and inv.workspace.nbytes() > 0
    x = f1[:1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: inv(fwd(t)), (x,))
    assert copy.deepcopy(inv).workspace.nbytes() == 0
    inv.release_workspace()
    assert inv.workspace.nbytes() == 0


def test_so3_modules_of_one_grid_share_their_wigner_tables():
    """One set of β tables per (grid, L, direction, dtype, device), as for the S² transforms."""
    grid = SO3Grid(5)
    a, b, inverse = SO3FFT(grid, dtype=torch.float64), SO3FFT(grid, dtype=torch.float64), InverseSO3FFT(grid, dtype=torch.float64)
    assert a.table_0 is b.table_0 and a.single_table_t is b.single_table_t and inverse.table_0 is not a.table_0
    b.float()
    assert b.table_0.dtype == torch.float32 and a.table_0.dtype == torch.float64
    f = torch.randn(2, *grid.shape, dtype=torch.float64)
    assert torch.allclose(b(f.float()).double(), a(f), atol=1e-5)



@pytest.mark.parametrize("L", [1, 6])
def test_so3_empty_batches_give_empty_results_and_gradients(L):
    grid = SO3Grid(L)
    f = torch.zeros(3, 0, *grid.shape, dtype=torch.float64, requires_grad=True)
    F = SO3FFT(grid, dtype=torch.float64)(f)
    back = InverseSO3FFT(grid, dtype=torch.float64)(F)
    assert F.shape == (3, 0, num_so3_coeffs(L)) and back.shape == f.shape
    back.sum().backward()
    assert f.grad.shape == f.shape
