import math

import torch

from sphcnn.spectral import euler_to_matrix, matrix_to_euler, quaternion_to_matrix, random_rotation, rot_y, rot_z


def test_euler_roundtrip_and_zyz_order(gen):
    R = random_rotation(500, generator=gen)
    a, b, c = matrix_to_euler(R)
    assert torch.allclose(euler_to_matrix(a, b, c), R, atol=1e-14)
    assert ((b >= 0) & (b <= math.pi)).all()
    # ZYZ: R = Rz(α) Ry(β) Rz(γ), written out with explicit matrices
    a0, b0, c0 = torch.tensor(0.3, dtype=torch.float64), torch.tensor(1.1, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64)
    assert torch.allclose(euler_to_matrix(a0, b0, c0), rot_z(a0) @ rot_y(b0) @ rot_z(c0))
    # rot_z(π/2) maps x to y (right-handed, active)
    assert torch.allclose(rot_z(torch.tensor(math.pi / 2)) @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-7)


def test_euler_at_gimbal_poles():
    for beta in (0.0, math.pi):
        R = euler_to_matrix(torch.tensor(0.7, dtype=torch.float64), torch.tensor(beta, dtype=torch.float64),
                            torch.tensor(0.4, dtype=torch.float64))
        assert torch.allclose(euler_to_matrix(*matrix_to_euler(R)), R, atol=1e-14)


def test_random_rotations_are_rotations_and_uniform(gen):
    R = random_rotation(20000, generator=gen)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(R @ R.transpose(-1, -2), eye.expand_as(R), atol=1e-13)
    assert torch.allclose(torch.linalg.det(R), torch.ones(20000, dtype=torch.float64))
    # Haar measure: E[R] = 0 and E[tr R] = 0; the rotated north pole is uniform on S² (E[z²] = 1/3)
    assert R.mean(0).abs().max() < 0.02
    z = R[:, :, 2]
    assert abs((z[:, 2] ** 2).mean().item() - 1 / 3) < 0.01


def test_quaternion_identity_and_normalisation():
    q = torch.tensor([[2.0, 0, 0, 0]], dtype=torch.float64)
    assert torch.allclose(quaternion_to_matrix(q)[0], torch.eye(3, dtype=torch.float64))
