"""Benchmark the s2cnn MNIST network (forward + backward) in sphcnn and in e3nn.

Both models are the s2cnn MNIST layout (Cohen et al. 2018) on 60 × 60
Driscoll–Healy images (L = 30): S² conv 1→20 (degrees < 10), ReLU on the SO(3)
grid read back to degrees < 6, SO(3) conv 20→40 (degrees < 6), ReLU,
integration over SO(3), linear 40→10; 154,550 parameters in both.

* ``sphcnn``: ``sphcnn.models.S2CNN(feature_norm=False)`` (exactly the s2cnn layout: localized kernels, oversampling 1).
* ``e3nn``: :class:`E3nnS2CNN` below, built from e3nn layers as in e3nn's s2cnn
  example: ``o3.FromS2Grid`` (e3nn's (60, 60) grid, β_j = π(j+½)/60, α_k = 2πk/60,
  is exactly the DH grid), S² convolution = ``o3.Linear(s2_irreps, so3_irreps,
  f_in, f_out, internal_weights=False)`` with weights ψ from a kernel sampled at
  ``s2_near_identity_grid`` points (real SH ``spherical_harmonics_alpha_beta``),
  SO(3) convolution the same with ``flat_wigner`` at ``so3_near_identity_grid``
  points, and ``e3nn.nn.SO3Activation`` (dense Wigner-D matrices to and from the
  SO(3) grid).  Kernel points: 8 × 3 on S² (480 weights), 8 × 3 × 8 on SO(3)
  (153,600 weights); a bias on the ℓ = 0 coefficient after each convolution
  (20 + 40, as s2cnn's biases) and ``nn.Linear(40, 10)``: 154,550 parameters.
  ``SO3Activation`` resolution: b = 10 and 6 as in s2cnn; ``aspect_ratio`` 1
  gives s2cnn's (and sphcnn's oversampling-1) 2b × 2b × 2b grid, e3nn's default
  2 a 2b × 4b × 4b grid; both can be timed (``--e3nn-aspect``).

A step is ``cross_entropy(model(x), y).backward()`` with fresh gradients
(``zero_grad(set_to_none=True)``), float32, batch 32.  The models are timed in
alternation in one process (step of model 1, step of model 2, …) after warm-up
steps, so they see the same background load; the median over ``--steps`` is
reported, per thread count.

Example::

    python experiments/bench_network.py --threads 1 2 --steps 15 --batch 32
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch
from torch import nn


# ----------------------------------------------------------------------------------------------
# e3nn version of the s2cnn MNIST network
# ----------------------------------------------------------------------------------------------


def s2_near_identity_grid(max_beta: float = math.pi / 8, n_alpha: int = 8, n_beta: int = 3) -> torch.Tensor:
    """[2, n_alpha·n_beta] (α, β) rings around the north pole (s2cnn's default kernel support)."""
    beta = torch.arange(1, n_beta + 1, dtype=torch.float64) * max_beta / n_beta
    alpha = torch.linspace(0, 2 * math.pi, n_alpha + 1, dtype=torch.float64)[:-1]
    a, b = torch.meshgrid(alpha, beta, indexing="ij")
    return torch.stack((a.flatten(), b.flatten()))


def so3_near_identity_grid(max_beta: float = math.pi / 8, max_gamma: float = 2 * math.pi, n_alpha: int = 8,
                           n_beta: int = 3, n_gamma: int | None = None) -> torch.Tensor:
    """[3, n_alpha·n_beta·n_gamma] (α, β, γ) near the identity (s2cnn's default SO(3) kernel support)."""
    n_gamma = n_alpha if n_gamma is None else n_gamma
    beta = torch.arange(1, n_beta + 1, dtype=torch.float64) * max_beta / n_beta
    alpha = torch.linspace(0, 2 * math.pi, n_alpha + 1, dtype=torch.float64)[:-1]
    pre_gamma = torch.linspace(-max_gamma, max_gamma, n_gamma + 1, dtype=torch.float64)[:-1]
    A, B, preC = torch.meshgrid(alpha, beta, pre_gamma, indexing="ij")
    return torch.stack((A.flatten(), B.flatten(), (preC - A).flatten()))


def s2_irreps(lmax: int):
    from e3nn import o3

    return o3.Irreps([(1, (l, 1)) for l in range(lmax + 1)])


def so3_irreps(lmax: int):
    from e3nn import o3

    return o3.Irreps([(2 * l + 1, (l, 1)) for l in range(lmax + 1)])


class E3nnS2Convolution(nn.Module):
    """S² → SO(3) correlation with a kernel sampled at S² points; output ``[B, f_out, Σ(2ℓ+1)²]``."""

    def __init__(self, f_in: int, f_out: int, lmax: int, kernel_grid: torch.Tensor) -> None:
        super().__init__()
        from e3nn import o3

        self.w = nn.Parameter(torch.randn(f_in, f_out, kernel_grid.shape[1]))
        Y = o3.spherical_harmonics_alpha_beta(list(range(lmax + 1)), *kernel_grid, normalization="component")
        self.register_buffer("Y", Y.float())  # [n_points, Σ(2ℓ+1)]
        self.bias = nn.Parameter(torch.zeros(f_out))
        self.lin = o3.Linear(s2_irreps(lmax), so3_irreps(lmax), f_in=f_in, f_out=f_out, internal_weights=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        psi = torch.einsum("ni,xyn->xyi", self.Y, self.w) / self.Y.shape[0] ** 0.5
        out = self.lin(x, weight=psi)
        return torch.cat([out[..., :1] + self.bias[:, None], out[..., 1:]], dim=-1)


class E3nnSO3Convolution(nn.Module):
    """SO(3) → SO(3) correlation with a kernel sampled at SO(3) points (``flat_wigner``)."""

    def __init__(self, f_in: int, f_out: int, lmax: int, kernel_grid: torch.Tensor) -> None:
        super().__init__()
        from e3nn import o3
        from e3nn.o3._so3grid import flat_wigner  # not re-exported by e3nn.o3 in 0.6

        self.w = nn.Parameter(torch.randn(f_in, f_out, kernel_grid.shape[1]))
        self.register_buffer("D", flat_wigner(lmax, *kernel_grid).float())  # [n_points, Σ(2ℓ+1)²]
        self.bias = nn.Parameter(torch.zeros(f_out))
        self.lin = o3.Linear(so3_irreps(lmax), so3_irreps(lmax), f_in=f_in, f_out=f_out, internal_weights=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        psi = torch.einsum("ni,xyn->xyi", self.D, self.w) / self.D.shape[0] ** 0.5
        out = self.lin(x, weight=psi)
        return torch.cat([out[..., :1] + self.bias[:, None], out[..., 1:]], dim=-1)


class E3nnS2CNN(nn.Module):
    """The s2cnn MNIST network in e3nn layers (see the module docstring); input ``[B, 1, 60, 60]`` (β, α)."""

    def __init__(self, channels: tuple[int, int] = (20, 40), num_classes: int = 10, b_in: int = 30,
                 bandlimits: tuple[int, int] = (10, 6), aspect_ratio: int = 1) -> None:
        super().__init__()
        from e3nn import o3
        from e3nn.nn import SO3Activation

        (f1, f2), (b1, b2) = channels, bandlimits
        lmax1, lmax2 = b1 - 1, b2 - 1
        self.from_s2 = o3.FromS2Grid((2 * b_in, 2 * b_in), lmax1)
        self.conv1 = E3nnS2Convolution(1, f1, lmax1, s2_near_identity_grid())
        self.act1 = SO3Activation(lmax1, lmax2, torch.relu, b1, aspect_ratio=aspect_ratio)
        self.conv2 = E3nnSO3Convolution(f1, f2, lmax2, so3_near_identity_grid())
        self.act2 = SO3Activation(lmax2, 0, torch.relu, b2, aspect_ratio=aspect_ratio)
        self.linear = nn.Linear(f2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.from_s2(x)  # [B, 1, Σ(2ℓ+1)] (DH grid [β, α] = e3nn's (res_beta, res_alpha) grid)
        x = self.act1(self.conv1(x))  # [B, 20, Σ_{ℓ<6}(2ℓ+1)²]
        x = self.act2(self.conv2(x))  # [B, 40, 1]: ℓ = 0 coefficient = (scaled) integral over SO(3)
        return self.linear(x.flatten(1))


# ----------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_models(aspects: list[int], channels: tuple[int, int] = (20, 40)) -> dict[str, nn.Module]:
    from sphcnn.models import S2CNN

    torch.manual_seed(0)
    models = {"sphcnn S2CNN(feature_norm=False)": S2CNN(channels=channels, feature_norm=False)}
    for a in aspects:
        models[f"e3nn (SO3Activation aspect_ratio={a})"] = E3nnS2CNN(channels=channels, aspect_ratio=a)
    return models


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()


def bench(models: dict[str, nn.Module], batch: int, threads: list[int], steps: int, warmup: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 60, 60, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        for m in models.values():
            for _ in range(warmup):
                _step(m, x, y)
        times = {name: [] for name in models}
        for _ in range(steps):  # alternate: one step of each model per round
            for name, m in models.items():
                t0 = time.perf_counter()
                _step(m, x, y)
                times[name].append(time.perf_counter() - t0)
        for name, m in models.items():
            med = statistics.median(times[name])
            rows.append({"model": name, "threads": t, "batch": batch, "params": count_parameters(m),
                         "ms_per_step": 1e3 * med, "min_ms": 1e3 * min(times[name]),
                         "samples_per_s": batch / med})
        ref = rows[-len(models)]["ms_per_step"]
        for r in rows[-len(models):]:
            r["time_vs_sphcnn"] = r["ms_per_step"] / ref
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | threads | batch | params | ms/step median (min) | samples/s | time / sphcnn time |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['params']:,} | "
                     f"{r['ms_per_step']:.1f} ({r['min_ms']:.1f}) | {r['samples_per_s']:.0f} | "
                     f"{r['time_vs_sphcnn']:.2f} |")
    return "\n".join(lines)


def profile(models: dict[str, nn.Module], batch: int, steps: int = 3, top: int = 12) -> str:
    """torch.profiler summary (self CPU time) of a few steps per model."""
    from torch.profiler import ProfilerActivity, profile as tprofile

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 60, 60, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    out = []
    for name, m in models.items():
        _step(m, x, y)
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                _step(m, x, y)
        out.append(f"### {name}\n\n```\n"
                   + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top) + "\n```")
    return "\n\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=15, help="timed steps per model (median reported)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--e3nn-aspect", type=int, nargs="+", default=[1, 2],
                   help="SO3Activation aspect_ratio(s) of the e3nn model (1: s2cnn's grid, 2: e3nn's default)")
    p.add_argument("--channels", type=int, nargs=2, default=[20, 40])
    p.add_argument("--profile", action="store_true", help="also print a torch.profiler summary per model")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    models = build_models(args.e3nn_aspect, tuple(args.channels))
    x = torch.randn(2, 1, 60, 60)
    for name, m in models.items():
        print(f"{name}: {count_parameters(m):,} parameters, output {tuple(m(x).shape)}", file=sys.stderr)
    rows = bench(models, args.batch, args.threads, args.steps, args.warmup)
    print(table(rows))
    if args.profile:
        torch.set_num_threads(args.threads[0])
        print()
        print(profile(models, args.batch))
    return rows


if __name__ == "__main__":
    main()
