#!/usr/bin/env python
"""Write a PNG grid of spherical MNIST examples: NR vs R twins with their labels.

Rows: NR and R in equirectangular view (north up, longitude 0…360° left to
right from −180°), then NR and R as globes (NR looks at the south pole where
the digit sits, R at where its rotation moved the digit). Columns: samples.

Examples:
    python data_scripts/plot_examples.py -o examples.png               # embedded default, dh L=30 (generated if needed)
    python data_scripts/plot_examples.py --data-file my.npz --n 6 --split train -o train.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sphcnn.data import ensure_dataset_file, load_dataset, make_grid
from sphcnn.plotting import plot_twins


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-file", type=Path, default=None, help="a dataset .npz (default: the cached embedded default)")
    parser.add_argument("--source", default="embedded", help="digit source when no --data-file is given (default: embedded)")
    parser.add_argument("--L", type=int, default=30, help="bandlimit when no --data-file is given (default: 30)")
    parser.add_argument("--grid", choices=["dh", "gl", "healpix"], default="dh", help="grid when no --data-file is given")
    parser.add_argument("--split", choices=["train", "test"], default="test", help="which split to show (default: test)")
    parser.add_argument("--n", type=int, default=8, help="number of samples (columns, default: 8)")
    parser.add_argument("--projections", nargs="+", default=["equirectangular", "orthographic"],
                        choices=["equirectangular", "mollweide", "orthographic"], help="views, one row pair each")
    parser.add_argument("-o", "--output", type=Path, default=Path("spherical_mnist_examples.png"), help="PNG file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    path = args.data_file or ensure_dataset_file(args.source, make_grid(args.L, args.grid), progress=True)
    data = load_dataset(path)
    part = data.splits[args.split]
    n = min(args.n, len(part))
    figure = plot_twins(
        part.signals["NR"][:n], part.signals["R"][:n], part.labels[:n], data.grid, part.rotations[:n], args.projections
    )
    figure.suptitle(f"{data.metadata['source']} ({args.split}) on {data.grid.kind} L={data.grid.L}: NR vs R twins", fontsize=10)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
