"""Time the group layers against a plain ``torch.nn.ConvNd`` with |H|× the output channels.

The group layer gathers its |H| transformed filters and runs one ConvNd of
that width, so the two should cost the same; this script checks it in one
run, forward and forward + backward, the two timed in alternation, median
over repeats.

Run: ``python experiments/bench_group.py [--repeats N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from sphcnn.nn.group import GroupConv, LiftingConv, make_group

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}

# (label, group, layer kind, C_in, C_out, spatial size, kernel, batch)
CASES = [
    ("p4 lifting", "p4", "lifting", 1, 16, 60, 5, 32),
    ("p4 group", "p4", "group", 16, 16, 30, 3, 32),
    ("p4m group", "p4m", "group", 16, 16, 30, 3, 32),
    ("rc lifting", "rc", "lifting", 4, 32, 1000, 9, 32),
    ("rc group", "rc", "group", 32, 32, 1000, 9, 32),
    ("O group", "O", "group", 4, 4, 8, 3, 8),
    ("Oh lifting", "Oh", "lifting", 1, 6, 8, 5, 8),
    ("Oh group", "Oh", "group", 4, 4, 8, 3, 8),
]


def paired_median_ms(first: Callable[[], None], second: Callable[[], None], repeats: int) -> tuple[float, float]:
    """Median times of two functions run in alternation, so load from other processes hits both alike."""
    first(), second()  # warm-up: allocator, kernel choice
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[0]), 1e3 * statistics.median(times[1])


def forward_backward(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()

    return run


def forward(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, median of {args.repeats}")
    header = f"{'layer':12s} {'|H|':>4s} {'input shape':>24s} {'equiv. ConvNd':>22s}"
    header += f" {'group fwd':>10s} {'conv fwd':>9s} {'ratio':>6s} {'group f+b':>10s} {'conv f+b':>9s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for label, name, kind, c_in, c_out, size, k, batch in CASES:
        group = make_group(name)
        n, d = group.order, group.dim
        spatial = (size,) * d
        if kind == "lifting":
            layer = LiftingConv(group, c_in, c_out, k, padding=k // 2)
            x = torch.randn(batch, c_in, *spatial)
            conv = _CONV[d](c_in, c_out * n, k, padding=k // 2)
            x_conv = x
        else:
            layer = GroupConv(group, c_in, c_out, k, padding=k // 2)
            x = torch.randn(batch, c_in, n, *spatial)
            conv = _CONV[d](c_in * n, c_out * n, k, padding=k // 2)
            x_conv = x.flatten(1, 2)
        x.requires_grad_(True)
        x_conv = x_conv.detach().requires_grad_(True)
        gf, cf = paired_median_ms(forward(layer, x), forward(conv, x_conv), args.repeats)
        gb, cb = paired_median_ms(forward_backward(layer, x), forward_backward(conv, x_conv), args.repeats)
        conv_desc = f"{conv.in_channels}->{conv.out_channels} k{k}"
        print(
            f"{label:12s} {n:4d} {str(tuple(x.shape)):>24s} {conv_desc:>22s}"
            f" {gf:8.2f}ms {cf:7.2f}ms {gf / cf:6.2f} {gb:8.2f}ms {cb:7.2f}ms {gb / cb:6.2f}"
        )


if __name__ == "__main__":
    main()
