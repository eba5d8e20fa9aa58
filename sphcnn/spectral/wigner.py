"""Real spherical harmonics at any points, real Wigner-D matrices, rotating coefficients.

Basis: real orthonormal Y_ℓm of DESIGN.md, flat index ℓ² + ℓ + m.

Wigner-D by exact diagonalization (the stable method of Feng et al., PRE
92, 043307, 2015). In the real basis a rotation R = R_z(α) R_y(β) R_z(γ)
acts on the coefficients of f ↦ f(R⁻¹x) as

    D^ℓ(R) = Z^ℓ(α) Kᵀ Z^ℓ(β) K Z^ℓ(γ)

where Z^ℓ(t) rotates each pair (c_ℓ,m, c_ℓ,−m) by the angle m t, and K is
a real orthogonal matrix with G_y = Kᵀ G_z K (G_y, G_z: the real generators
of rotations about y and z). K comes from the eigenvectors of the Hermitian
tridiagonal-like i·G_y, whose eigenvalues are exactly −ℓ … ℓ; eigenvector
errors are O(ℓ ε) because the eigenvalue gaps are 1, so there is no
recursion to become unstable at high ℓ. Tested to 1e-12 up to L = 256.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from ._options import check_option
from .legendre import legendre_block
from .rotation import _check_matrix, matrix_to_euler


def num_sh(L: int) -> int:
    return L * L


def degree_index(L: int) -> torch.Tensor:
    """ℓ of each flat coefficient index, length L²."""
    return torch.repeat_interleave(torch.arange(L), 2 * torch.arange(L) + 1)


def order_index(L: int) -> torch.Tensor:
    """m of each flat coefficient index, length L²."""
    return torch.cat([torch.arange(-ell, ell + 1) for ell in range(L)])


def real_sph_harm(L: int, theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Real orthonormal spherical harmonics Y_ℓm(θ, φ), shape ``[*theta.shape, L²]``, float64.

    ``theta``/``phi`` are colatitude and longitude of any broadcastable shape.
    """
    theta, phi = torch.broadcast_tensors(torch.as_tensor(theta, dtype=torch.float64),
                                         torch.as_tensor(phi, dtype=torch.float64))
    shape = theta.shape
    th, ph = theta.reshape(-1).cpu().numpy(), phi.reshape(-1).cpu().numpy()
    lam = legendre_block(L, th, 0, L)  # [m, d, n]
    out = np.zeros((th.size, L * L))
    for m in range(L):
        ells = np.arange(m, L)
        rows = lam[m, : L - m].T  # [n, L - m]
        if m == 0:
            out[:, ells * ells + ells] = rows
        else:
            out[:, ells * ells + ells + m] = np.sqrt(2) * rows * np.cos(m * ph)[:, None]
            out[:, ells * ells + ells - m] = np.sqrt(2) * rows * np.sin(m * ph)[:, None]
    return torch.from_numpy(out).reshape(*shape, L * L).to(theta.device)


# ---------------------------------------------------------------- bases


@lru_cache(maxsize=None)
def complex_to_real_block(ell: int) -> np.ndarray:
    """U with Y_real = U Y_complex for one degree (rows real m, columns complex m, both −ℓ…ℓ).

    Y_complex are scipy's ``sph_harm_y`` (Condon–Shortley phase).
    """
    n = 2 * ell + 1
    U = np.zeros((n, n), dtype=np.complex128)
    U[ell, ell] = 1.0
    s = 1 / np.sqrt(2)
    for m in range(1, ell + 1):
        sign = (-1) ** m
        U[ell + m, ell + m] = sign * s
        U[ell + m, ell - m] = s
        U[ell - m, ell + m] = -1j * sign * s
        U[ell - m, ell - m] = 1j * s
    return U


def _block_apply(c: torch.Tensor, L: int, blocks: list[torch.Tensor]) -> torch.Tensor:
    parts = [c[..., ell * ell: (ell + 1) ** 2] @ blocks[ell].T for ell in range(L)]
    return torch.cat(parts, dim=-1)


def _check_coeffs(c: torch.Tensor, name: str = "c") -> int:
    if not isinstance(c, torch.Tensor) or c.dim() < 1:
        raise ValueError(f"{name} must be a tensor of shape [..., L*L]")
    L = int(round(c.shape[-1] ** 0.5))
    if L * L != c.shape[-1] or L < 1:
        raise ValueError(f"{name} must have a trailing dimension L*L (a perfect square), got {c.shape[-1]}")
    return L


def real_to_complex_coeffs(c: torch.Tensor) -> torch.Tensor:
    """Complex coefficients a (f = Σ a_ℓm Y_ℓ^m, scipy's Y_ℓ^m) from real ones c, same layout."""
    L = _check_coeffs(c)
    cdtype = torch.complex128 if c.dtype == torch.float64 else torch.complex64
    blocks = [torch.as_tensor(complex_to_real_block(ell).T, dtype=cdtype, device=c.device) for ell in range(L)]
    return _block_apply(c.to(cdtype), L, blocks)


def complex_to_real_coeffs(a: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`real_to_complex_coeffs`; the result is real when ``a`` describes a real function."""
    L = _check_coeffs(a, "a")
    blocks = [torch.as_tensor(complex_to_real_block(ell).conj(), dtype=a.dtype, device=a.device) for ell in range(L)]
    return _block_apply(a, L, blocks).real


# --------------------------------------------------------- Wigner-D


@lru_cache(maxsize=None)
def _real_generators(ell: int) -> tuple[np.ndarray, np.ndarray]:
    """Real-basis generators (G_y, G_z): D(R_y(t)) = exp(t G_y), D(R_z(t)) = exp(t G_z)."""
    n = 2 * ell + 1
    m = np.arange(-ell, ell + 1)
    jp = np.zeros((n, n))  # J+ |m> = √(ℓ(ℓ+1) − m(m+1)) |m+1>
    jp[np.arange(1, n), np.arange(n - 1)] = np.sqrt(ell * (ell + 1) - m[:-1] * (m[:-1] + 1))
    jy = (jp - jp.T) / 2j
    jz = np.diag(m).astype(np.complex128)
    U = complex_to_real_block(ell)
    to_real = lambda op: (U.conj() @ (-1j * op) @ U.T).real  # noqa: E731
    return to_real(jy), to_real(jz)


@lru_cache(maxsize=None)
def _y_to_z_block(ell: int) -> np.ndarray:
    """Real orthogonal K with G_y = Kᵀ G_z K, from the eigenvectors of i·G_y."""
    g_y, _ = _real_generators(ell)
    evals, vecs = np.linalg.eigh(1j * g_y)
    order = np.round(evals).astype(int)
    n = 2 * ell + 1
    Q = np.zeros((n, n))
    for k in range(0, ell + 1):
        v = vecs[:, np.flatnonzero(order == k)[0]]
        if k == 0:
            v = v * np.exp(-1j * np.angle(v[np.argmax(np.abs(v))]))
            Q[:, ell] = v.real / np.linalg.norm(v.real)
        else:
            # iG_y v = k v  ⇒  G_y a = k b, G_y b = −k a for v = (a + ib)/√2, as G_z on (e_k, e_−k).
            Q[:, ell + k] = np.sqrt(2) * v.real
            Q[:, ell - k] = np.sqrt(2) * v.imag
    return Q.T


def small_d_complex(ell: int, beta: np.ndarray) -> np.ndarray:
    """Wigner small-d d^ℓ_mn(β) (complex basis, real valued), float64 ``[len(beta), 2ℓ+1, 2ℓ+1]``.

    From the diagonalization behind :func:`wigner_D_block`: d(β) = W diag(e^{−ikβ}) W^† with
    W = Uᵀ Kᵀ Ū, so each entry is a trigonometric polynomial in β whose coefficients
    W_mk W̄_nk are exact to O(ℓ ε); all β are evaluated by two real matmuls.
    """
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    U = complex_to_real_block(ell)
    W = U.T @ _y_to_z_block(ell).T @ U.conj()
    T = W[:, None, :] * W.conj()[None, :, :]  # [m, n, k]
    k = np.arange(-ell, ell + 1)
    kb = np.outer(k, beta)
    n = 2 * ell + 1
    d = T.real.reshape(n * n, n) @ np.cos(kb) + T.imag.reshape(n * n, n) @ np.sin(kb)
    return np.ascontiguousarray(d.T.reshape(beta.size, n, n))


def _z_rotation_apply(c: torch.Tensor, ell: int, angle: torch.Tensor) -> torch.Tensor:
    """Coefficients of f(R_z(angle)⁻¹ x) for one degree block c [..., 2ℓ+1]; angle [...]."""
    if ell == 0:
        return c
    m = torch.arange(1, ell + 1, dtype=c.dtype, device=c.device)
    t = angle.unsqueeze(-1) * m
    cos, sin = torch.cos(t), torch.sin(t)
    pos, neg = c[..., ell + 1:], c[..., :ell].flip(-1)  # c_m, c_−m for m = 1…ℓ
    new_pos = cos * pos - sin * neg
    new_neg = sin * pos + cos * neg
    return torch.cat((new_neg.flip(-1), c[..., ell: ell + 1], new_pos), dim=-1)


def _z_rotation_matrix(ell: int, angle: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(2 * ell + 1, dtype=angle.dtype, device=angle.device)
    # Rows of the result are Z applied to unit vectors, i.e. Zᵀ; transpose back.
    return _z_rotation_apply(eye.expand(*angle.shape, -1, -1), ell, angle.unsqueeze(-1)).transpose(-1, -2)


def _k_block(ell: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(_y_to_z_block(ell), dtype=dtype, device=device)


def wigner_D_block(ell: int, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Real Wigner-D block D^ℓ(R_z(α) R_y(β) R_z(γ)), shape ``[..., 2ℓ+1, 2ℓ+1]``."""
    K = _k_block(ell, beta.dtype, beta.device)
    inner = K.T @ _z_rotation_matrix(ell, beta) @ K
    return _z_rotation_matrix(ell, alpha) @ inner @ _z_rotation_matrix(ell, gamma)


def wigner_D(L: int, R: torch.Tensor) -> torch.Tensor:
    """Block-diagonal real Wigner-D matrices ``[..., L², L²]`` for rotation matrices ``R [..., 3, 3]``.

    ``wigner_D(L, R) @ c`` are the coefficients of x ↦ f(R⁻¹x) when ``c`` are those of f.
    """
    _check_matrix(R)
    alpha, beta, gamma = matrix_to_euler(R)
    out = R.new_zeros(*R.shape[:-2], L * L, L * L)
    for ell in range(L):
        sl = slice(ell * ell, (ell + 1) ** 2)
        out[..., sl, sl] = wigner_D_block(ell, alpha, beta, gamma)
    return out


def rotate_sh(c: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Coefficients of x ↦ f(R⁻¹x) given those of f: ``c [..., L²]``, ``R [..., 3, 3]`` (broadcast).

    Costs O(L³) per rotation (no dense D is formed).
    """
    L = _check_coeffs(c)
    _check_matrix(R)
    alpha, beta, gamma = matrix_to_euler(R.to(c.dtype))
    batch = torch.broadcast_shapes(c.shape[:-1], alpha.shape)
    c = c.expand(*batch, c.shape[-1])
    alpha, beta, gamma = (a.expand(batch) for a in (alpha, beta, gamma))
    parts = []
    for ell in range(L):
        K = _k_block(ell, c.dtype, c.device)
        block = _z_rotation_apply(c[..., ell * ell: (ell + 1) ** 2], ell, gamma)
        block = _z_rotation_apply(block @ K.T, ell, beta) @ K
        parts.append(_z_rotation_apply(block, ell, alpha))
    return torch.cat(parts, dim=-1)


# ------------------------------------------------------------ e3nn

E3nnNormalization = Literal["integral", "component", "norm"]

# e3nn's harmonics take y as the polar axis: Y_e3nn(v) = Y(P v) with P v = (v_z, v_x, v_y).
_E3NN_AXES = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def _e3nn_scale(L: int, normalization: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    check_option("normalization", normalization, E3nnNormalization)
    ell = degree_index(L).to(device=device, dtype=dtype)
    if normalization == "integral":
        return torch.ones_like(ell)
    if normalization == "component":
        return torch.full_like(ell, math.sqrt(4 * math.pi))
    return torch.sqrt(4 * math.pi / (2 * ell + 1))


def sh_to_e3nn(c: torch.Tensor, normalization: E3nnNormalization = "component") -> torch.Tensor:
    """Coefficients in e3nn's basis (``e3nn.o3.spherical_harmonics(..., normalization=…)``).

    Returns ``c_e`` with f(x) = Σ c_e · Y_e3nn(x) for the same function f = Σ c · Y.
    e3nn's default normalization is "component" (|Y^ℓ|² = 2ℓ+1).
    """
    L = _check_coeffs(c)
    P = torch.tensor(_E3NN_AXES, dtype=c.dtype, device=c.device)
    return rotate_sh(c, P) / _e3nn_scale(L, normalization, c.dtype, c.device)


def e3nn_to_sh(c_e: torch.Tensor, normalization: E3nnNormalization = "component") -> torch.Tensor:
    """Inverse of :func:`sh_to_e3nn`."""
    L = _check_coeffs(c_e, "c_e")
    P = torch.tensor(_E3NN_AXES, dtype=c_e.dtype, device=c_e.device)
    return rotate_sh(c_e * _e3nn_scale(L, normalization, c_e.dtype, c_e.device), P.T)
