"""Mathematical properties of the S² transforms: exactness, known functions, Parseval, gradients, errors."""

import math

import numpy as np
import pytest
import torch

from sphcnn.spectral import SHT, InverseSHT, S2Grid, _ring_fft, isht, real_sph_harm, real_to_complex_coeffs, sht
from sphcnn.spectral.testing import evaluate_sh, random_coefficients, relative_error


@pytest.mark.parametrize("kind", ["dh", "gl"])
@pytest.mark.parametrize("L", [1, 2, 7, 16, 31])
def test_analysis_and_synthesis_match_direct_evaluation(kind, L, gen):
    grid = S2Grid(L, kind)
    c = random_coefficients(L, 3, generator=gen)
    f = evaluate_sh(c, grid.points())
    assert relative_error(isht(c, grid), f) < 1e-12
    assert relative_error(sht(f, grid), c) < 1e-12


@pytest.mark.parametrize("kind", ["dh", "gl"])
@pytest.mark.parametrize("L", [128, 256])
def test_exact_at_high_bandlimit(kind, L, gen):
    """Roundtrip at L = 256, plus direct evaluation of the series at a sample of grid points."""
    grid = S2Grid(L, kind)
    c = random_coefficients(L, generator=gen)
    f = isht(c, grid)
    assert relative_error(sht(f, grid), c) < 1e-12
    flat = torch.randperm(f.numel(), generator=gen)[:100]
    pts = grid.points().reshape(-1, 3)[flat]
    assert relative_error(f.reshape(-1)[flat], evaluate_sh(c, pts)) < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gl", "dh"])
def test_roundtrip_at_L1024(kind, gen):
    grid = S2Grid(1024, kind)
    c = random_coefficients(1024, generator=gen)
    assert relative_error(sht(isht(c, grid), grid), c) < 1e-11


def test_convention_against_scipy():
    """Y_ℓm = √2 (−1)^m Re Y_ℓ^m (m>0), Y_ℓ^0, √2 (−1)^m Im Y_ℓ^|m| (m<0), scipy's sph_harm_y."""
    from scipy.special import sph_harm_y

    rng = np.random.default_rng(0)
    theta, phi = rng.uniform(0, np.pi, 64), rng.uniform(0, 2 * np.pi, 64)
    L = 9
    Y = real_sph_harm(L, torch.tensor(theta), torch.tensor(phi)).numpy()
    for ell in range(L):
        for m in range(-ell, ell + 1):
            Yc = sph_harm_y(ell, abs(m), theta, phi)
            ref = Yc.real if m == 0 else np.sqrt(2) * (-1) ** m * (Yc.real if m > 0 else Yc.imag)
            np.testing.assert_allclose(Y[:, ell * ell + ell + m], ref, atol=1e-13)


def test_degree_one_harmonics_are_y_z_x():
    x = torch.randn(50, 3, dtype=torch.float64)
    x = x / x.norm(dim=-1, keepdim=True)
    theta, phi = torch.arccos(x[:, 2]), torch.atan2(x[:, 1], x[:, 0])
    Y = real_sph_harm(2, theta, phi)
    k = math.sqrt(3 / (4 * math.pi))
    assert torch.allclose(Y[:, 1:4], k * x[:, [1, 2, 0]], atol=1e-14)


@pytest.mark.parametrize("kind", ["dh", "gl"])
def test_known_functions(kind):
    L = 6
    grid = S2Grid(L, kind)
    c_one = sht(torch.ones(grid.shape, dtype=torch.float64), grid)
    expected = torch.zeros(L * L, dtype=torch.float64)
    expected[0] = math.sqrt(4 * math.pi)
    assert torch.allclose(c_one, expected, atol=1e-13)
    c_cos = sht(torch.cos(grid.theta), grid)
    expected = torch.zeros(L * L, dtype=torch.float64)
    expected[2] = math.sqrt(4 * math.pi / 3)  # cos θ = √(4π/3) Y_1,0
    assert torch.allclose(c_cos, expected, atol=1e-13)


@pytest.mark.parametrize("kind", ["dh", "gl"])
def test_parseval_and_orthogonality(kind, gen):
    L = 12
    grid = S2Grid(L, kind)
    c = random_coefficients(L, 4, generator=gen)
    f = isht(c, grid)
    energy = (grid.weights * f**2).sum(dim=(-1, -2))
    assert torch.allclose(energy, (c**2).sum(-1), rtol=1e-12)
    Y = real_sph_harm(L, grid.theta, grid.phi).reshape(-1, L * L)
    gram = Y.T @ (grid.weights.reshape(-1, 1) * Y)
    assert torch.allclose(gram, torch.eye(L * L, dtype=torch.float64), atol=1e-12)


def test_leading_dims_and_float32(gen):
    grid = S2Grid(8, "gl")
    c = random_coefficients(8, 2, 3, generator=gen)
    x = isht(c, grid)
    assert x.shape == (2, 3, *grid.shape)
    x32 = x.float()
    c32 = sht(x32, grid)
    assert c32.dtype == torch.float32 and c32.shape == (2, 3, 64)
    assert relative_error(c32.double(), c) < 1e-5


def test_module_buffers_follow_dtype_and_stay_out_of_state_dict(gen):
    grid = S2Grid(10, "dh")
    m = SHT(grid, dtype=torch.float32)
    assert m.state_dict() == {} or all("even" not in k for k in m.state_dict())
    m = m.double()  # tables rebuilt in float64, not cast up from float32
    c = random_coefficients(10, generator=gen)
    assert relative_error(m(isht(c, grid)), c) < 1e-13
    with pytest.raises(TypeError, match="tables are torch.float64"):
        m(torch.zeros(grid.shape))


def test_on_the_fly_tables_agree_with_stored(gen):
    grid = S2Grid(20, "gl")
    x = isht(random_coefficients(20, 2, generator=gen), grid)
    stored = SHT(grid, dtype=torch.float64)
    streamed = SHT(grid, dtype=torch.float64, max_table_bytes=0)
    assert not streamed.legendre.stored
    assert torch.allclose(stored(x), streamed(x), atol=1e-14)
    inv = InverseSHT(grid, dtype=torch.float64, max_table_bytes=0)
    assert torch.allclose(inv(stored(x)), x, atol=1e-12)


def test_gradcheck():
    grid = S2Grid(4, "gl")
    fwd, inv = SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)
    x = torch.randn(2, *grid.shape, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fwd, (x,))
    assert torch.autograd.gradcheck(inv, (c,))
    hp = S2Grid(4, "healpix", nside=2)
    xh = torch.randn(hp.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(SHT(hp, dtype=torch.float64, iters=1), (xh,))


@pytest.mark.parametrize("grid", [S2Grid(6, "dh"), S2Grid(7, "gl"), S2Grid(6, "gl"), S2Grid(6, "healpix", nside=2)],
                         ids=["dh-pole-and-equator", "gl-equator", "gl-no-equator", "healpix"])
def test_legendre_stage_directions_are_adjoint(grid, gen):
    """⟨contract(H), c⟩ = ⟨H, expand(c / expand_scale)⟩ (real inner products), for coefficient-major and
    batch-major coefficients: with the ring stage's halving, each transform's backward is the other."""
    for forward in (SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)):
        stage = forward.legendre
        L, hn = forward.L, stage.plan.n_north
        H = torch.randn(2, 2 * L, hn, 3, dtype=torch.float64, generator=gen)
        c = torch.randn(3, L * L, dtype=torch.float64, generator=gen)
        lhs = (stage.contract(H) * c).sum()
        for coefficients in (c, c.T.contiguous().T):
            expanded = stage.expand(coefficients / stage.expand_scale, torch.full_like(H, math.nan))
            assert abs(lhs - (H * expanded).sum()) < 1e-12 * abs(lhs)


@pytest.mark.parametrize("grid", [S2Grid(6, "gl"), S2Grid(5, "dh"), S2Grid(6, "healpix", nside=2)],
                         ids=["gl", "dh", "healpix"])
def test_each_transform_is_the_adjoint_of_the_other_with_one_table(grid, gen):
    """⟨A x, c⟩ = ⟨x, S c⟩ for the analysis A and synthesis S of one module (its autograd pairs them)."""
    for module in (SHT(grid, dtype=torch.float64, iters=0), InverseSHT(grid, dtype=torch.float64)):
        x = torch.randn(3, *grid.shape, dtype=torch.float64, generator=gen)
        c = torch.randn(3, module.L ** 2, dtype=torch.float64, generator=gen)
        lhs = (module._analyze(x) * c).sum()
        assert abs(lhs - (x * module._synthesize(c)).sum()) < 1e-12 * abs(lhs)


@pytest.mark.parametrize("three_threads", [False, True])
def test_gradgradcheck_and_batch_sizes(three_threads, gen):
    grid = S2Grid(5, "dh")
    fwd, inv = SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)
    x = torch.randn(2, *grid.shape, dtype=torch.float64, requires_grad=True)
    xs = torch.randn(12, *grid.shape, dtype=torch.float64, generator=gen)
    one_by_one = torch.stack([fwd(m) for m in xs])
    threads = torch.get_num_threads()
    if three_threads:  # torch's OpenMP pool and the FFT libraries' own threads
        torch.set_num_threads(3)
    try:
        assert torch.autograd.gradgradcheck(lambda t: inv(fwd(t)) ** 2, (x,))
        # the gather index is cached per batch size: every size agrees with one map at a time
        for B in (1, 2, 3, 5, 7, 9, 11, 12, 4, 1):
            assert torch.allclose(fwd(xs[:B]), one_by_one[:B], atol=1e-14)
            assert torch.allclose(inv(one_by_one[:B]), inv(one_by_one)[:B], atol=1e-14)
    finally:
        torch.set_num_threads(threads)


def test_bad_inputs():
    grid = S2Grid(4, "dh")
    with pytest.raises(ValueError, match=r"trailing grid shape \(8, 8\)"):
        sht(torch.zeros(3, 8, 9), grid)
    with pytest.raises(TypeError, match="float32 or float64"):
        sht(torch.zeros(8, 8, dtype=torch.int32), grid)
    with pytest.raises(ValueError, match=r"L <= grid.L = 4"):
        isht(torch.zeros(3, 25), grid)
    with pytest.raises(TypeError, match="S2Grid"):
        SHT("dh")


@pytest.mark.parametrize("nside,L", [(8, 17), (16, 33)])
def test_healpix_matches_healpy(nside, L, gen):
    import healpy as hp

    grid = S2Grid(L, "healpix", nside=nside)
    c = random_coefficients(L, generator=gen)
    a = real_to_complex_coeffs(c).numpy()
    alm = np.zeros(hp.Alm.getsize(L - 1), dtype=np.complex128)
    for ell in range(L):
        for m in range(ell + 1):
            alm[hp.Alm.getidx(L - 1, ell, m)] = a[ell * ell + ell + m]
    f_hp = hp.alm2map(alm, nside, lmax=L - 1)
    f = isht(c, grid)
    assert relative_error(f, torch.from_numpy(f_hp)) < 1e-12
    # analysis with the same number of refinement steps as healpy's iter
    ours = real_to_complex_coeffs(SHT(grid, dtype=torch.float64, iters=3)(torch.from_numpy(f_hp))).numpy()
    ref = hp.map2alm(f_hp, lmax=L - 1, iter=3, use_pixel_weights=False)
    ours_m = np.array([ours[ell * ell + ell + m] for ell in range(L) for m in range(ell + 1)])
    ref_m = np.array([ref[hp.Alm.getidx(L - 1, ell, m)] for ell in range(L) for m in range(ell + 1)])
    assert np.abs(ours_m - ref_m).max() / np.abs(ref_m).max() < 1e-6
    # and the refinement converges toward the true coefficients
    assert relative_error(sht(f, grid), c) < 1e-3


@pytest.mark.parametrize("kind", ["dh", "gl", "healpix"])
def test_lower_output_bandlimit_projects_onto_low_degrees(kind, gen):
    grid = S2Grid(12, kind, nside=8 if kind == "healpix" else None)
    c = random_coefficients(12, 2, generator=gen)
    f = isht(c, grid)
    low = sht(f, grid, L=5)
    assert low.shape == (2, 25)
    # HEALPix quadrature is not exact: degrees 5…11 alias into the projection at the percent level.
    tol = 1e-12 if kind != "healpix" else 5e-2
    assert relative_error(low, c[:, :25]) < tol
    # synthesis of low-degree coefficients on the bigger grid = zero-padded coefficients
    padded = torch.cat((low, torch.zeros(2, 144 - 25, dtype=torch.float64)), dim=1)
    assert torch.allclose(isht(low, grid), isht(padded, grid), atol=1e-12)
    with pytest.raises(ValueError, match="coefficient bandlimit L"):
        SHT(grid, L=13)


@pytest.mark.parametrize("fft_backend", _ring_fft.ring_backends())
def test_workspace_buffers_never_leak_into_results(fft_backend, gen, monkeypatch):
    """Scratch buffers are reused between calls (here for every size); results and gradients stay intact."""
    import copy
    import pickle

    from sphcnn.spectral import _workspace
    from sphcnn.spectral._ring_legendre import SCRATCH

    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    monkeypatch.setattr(_ring_fft, "_fastest_rings", lambda *probe: fft_backend)
    grid = S2Grid(6, "dh")
    fwd, inv = SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)
    c1, c2 = (random_coefficients(6, 3, generator=gen) for _ in range(2))
    x1 = inv(c1)
    x1_copy = x1.clone()
    x2 = inv(c2)
    a1 = fwd(x1)
    a2 = fwd(x2)
    assert torch.equal(x1, x1_copy) and relative_error(a1, c1) < 1e-13 and relative_error(a2, c2) < 1e-13
    assert SCRATCH.nbytes() > 0  # the slabs, planes and rows, shared by both modules
    x = torch.randn(2, *grid.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: inv(fwd(t)), (x,))
    assert torch.autograd.gradcheck(lambda t: fwd(inv(t)), (c1.clone().requires_grad_(True),))
    for clone in (copy.deepcopy(fwd), pickle.loads(pickle.dumps(fwd))):
        assert relative_error(clone(x1), c1) < 1e-13
    fwd.release_workspace()
    assert SCRATCH.nbytes() == 0


@pytest.mark.parametrize("fft_backend", _ring_fft.ring_backends())
def test_kept_scratch_views_follow_batch_sizes_and_reallocations(fft_backend, gen, monkeypatch):
    """The views a call keeps of the shared scratch serve the next call of its size only while the buffers live:
    calls of another batch size or a larger grid in between (which reallocate them) leave every result exact."""
    from sphcnn.spectral import _workspace
    from sphcnn.spectral._ring_legendre import SCRATCH

    monkeypatch.setattr(_workspace, "MIN_BYTES", 0)
    monkeypatch.setattr(_ring_fft, "_fastest_rings", lambda *probe: fft_backend)
    small, large = S2Grid(6, "gl"), S2Grid(10, "dh")
    modules = {g: (SHT(g, dtype=torch.float64), InverseSHT(g, dtype=torch.float64)) for g in (small, large)}
    for g, B in ((small, 3), (small, 5), (large, 2), (small, 3), (large, 7), (small, 5), (small, 3)):
        fwd, inv = modules[g]
        c = random_coefficients(g.L, B, generator=gen)
        x = evaluate_sh(c, g.points())
        assert relative_error(inv(c), x) < 1e-12 and relative_error(fwd(x), c) < 1e-12
    assert SCRATCH.nbytes() > 0
    SCRATCH.clear()
    fwd, inv = modules[small]
    c = random_coefficients(6, 3, generator=gen)
    assert relative_error(fwd(inv(c)), c) < 1e-12


def test_gradients_go_through_the_autograd_function_only_where_needed(gen):
    grid = S2Grid(6, "gl")
    fwd = SHT(grid, dtype=torch.float64)
    x = torch.randn(2, *grid.shape, dtype=torch.float64, generator=gen)
    plain, tracked = fwd(x), fwd(x.clone().requires_grad_(True))
    assert plain.grad_fn is None and tracked.grad_fn is not None and torch.equal(plain, tracked.detach())
    with torch.no_grad():
        assert fwd(x.clone().requires_grad_(True)).grad_fn is None


def test_modules_of_one_grid_share_tables_built_once(monkeypatch):
    """One table per (grid, L, direction, dtype, device), shared by every module and freed with the last of them."""
    import gc

    from sphcnn.spectral import _ring_legendre, _tables

    built = []
    block_tables = _ring_legendre.RingPlan.block_tables
    monkeypatch.setattr(_ring_legendre.RingPlan, "block_tables", lambda plan, *args: built.append(args)
                        or block_tables(plan, *args))
    grid = S2Grid(37, "gl")  # a bandlimit no other test uses: no module elsewhere holds its tables
    a, b = SHT(grid, dtype=torch.float64), SHT(grid, dtype=torch.float64)
    assert len(built) == len(a.legendre.plan.m_blocks)  # built once, for a
    assert all(getattr(b.legendre, n) is getattr(a.legendre, n) for n in ("even_0", "odd_0", "even_1", "odd_1"))
    x = torch.randn(2, *grid.shape, dtype=torch.float64)
    assert torch.equal(a(x), b(x))
    inverse, single = InverseSHT(grid, dtype=torch.float64), SHT(grid, dtype=torch.float32)
    assert inverse.legendre.even_0 is not a.legendre.even_0 and single.legendre.even_0 is not a.legendre.even_0
    b.float()  # rebuilt from float64 in float32: the float32 module's tables; a keeps its own
    assert b.legendre.even_0 is single.legendre.even_0 and a.legendre.even_0.dtype == torch.float64
    a.to("meta")  # a device move takes the tables on that device, built there once, not a copy of a's own
    c = SHT(grid, dtype=torch.float64).to("meta")
    assert c.legendre.even_0 is a.legendre.even_0 and c.legendre.even_0.device.type == "meta"
    assert SHT(grid, dtype=torch.float64).to("meta", torch.float32).legendre.odd_0.dtype == torch.float32
    del a, b, c, inverse, single
    gc.collect()
    assert not [key for key in _tables._SHARED if key[1] == grid.key]


@pytest.mark.parametrize("matmul", ["torch", "numpy"])
def test_both_matmul_backends_are_exact_with_gradients(matmul, gen, monkeypatch):
    from sphcnn.spectral import _ring_legendre

    chosen = []
    monkeypatch.setattr(_ring_legendre, "_fastest_bmm", lambda *probe: chosen.append(probe) or matmul)
    grid = S2Grid(9, "gl")
    fwd, inv = SHT(grid, dtype=torch.float64), InverseSHT(grid, dtype=torch.float64)
    c = random_coefficients(9, 3, generator=gen)
    x = evaluate_sh(c, grid.points())
    assert relative_error(inv(c), x) < 1e-13 and relative_error(fwd(x), c) < 1e-13
    assert chosen and all(probe[1] == torch.float64 for probe in chosen)
    t = torch.randn(2, *grid.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: inv(fwd(t)), (t,))  # the backward multiplies transposed tables


def test_off_the_cpu_the_legendre_stage_runs_torch_ops_only():
    """No numpy (the CPU backends scatter rows with numpy): the meta device stands in for a GPU."""
    stage = SHT(S2Grid(8, "gl"), dtype=torch.float32).legendre
    run = stage.backend(torch.empty(1, device="meta"), 3)
    with pytest.raises(TypeError, match="meta"):  # what the CPU backends' numpy scatter would meet
        torch.empty(1, device="meta").numpy()
    rows, index = torch.empty(5, 3, device="meta"), torch.zeros(5, dtype=torch.long, device="meta")
    out = torch.empty(7, 3, device="meta")
    run.put(rows, index, out)
    run.take(out, index, rows)
    run.bmm(torch.empty(2, 5, 4, device="meta"), torch.empty(2, 4, 3, device="meta"), torch.empty(2, 5, 3, device="meta"))
    assert not run.twin and run.xp is torch  # and the calls above ran: meta tensors have no numpy view


def test_the_matmul_probe_returns_a_backend():
    from sphcnn.spectral._ring_legendre import _fastest_bmm

    assert _fastest_bmm((4, 3, 5, 6), torch.float64, torch.get_num_threads()) in ("torch", "numpy")


def test_the_matmul_probe_times_numpy_only_below_openblas_threading_threshold(monkeypatch):
    """Above it numpy's matmuls run on OpenBLAS's own pool beside torch's OpenMP team: torch, untimed."""
    from sphcnn.spectral import _ring_legendre

    timed = []
    monkeypatch.setattr(_ring_legendre, "_faster", lambda label, run, backends: timed.append(label) or "numpy")
    probe = _ring_legendre._fastest_bmm.__wrapped__  # without the per-process cache
    assert probe((4, 256, 256, 32), torch.float64, 2) == "torch" and not timed  # M·N·K = 2,097,152
    assert probe((4, 64, 64, 32), torch.float64, 2) == "numpy" and len(timed) == 1  # 131,072: on the caller
    assert probe((4, 256, 256, 32), torch.float64, 1) == "numpy" and len(timed) == 2  # one thread: no pool


@pytest.mark.parametrize("grid", [S2Grid(8, "gl"), S2Grid(8, "dh"), S2Grid(8, "healpix", nside=4)],
                         ids=["gl", "dh", "healpix"])
def test_empty_batches_give_empty_results_and_gradients(grid):
    x = torch.zeros(2, 0, *grid.shape, dtype=torch.float64, requires_grad=True)
    c = SHT(grid, dtype=torch.float64)(x)
    y = InverseSHT(grid, dtype=torch.float64)(c)
    assert c.shape == (2, 0, 64) and y.shape == (2, 0, *grid.shape)
    y.sum().backward()
    assert x.grad.shape == x.shape
