"""Smoke test of experiments/bench_sht.py: one tiny case end to end (no timing assertions)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.bench_sht import healpix_nside, main  # noqa: E402


def test_bench_sht_smoke(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    rows = main(["--L", "16", "--batch", "1", "--repeats", "1", "--libs", "sphcnn", "--grids", "gl",
                 "--dtype", "float64", "--threads", "1", "--csv", str(out)])
    assert len(rows) == 1
    row = rows[0]
    assert row["library"] == "sphcnn" and row["L"] == 16 and row["batch"] == 1
    assert row["note"] == "", row["note"]
    assert row["forward_ms"] > 0 and row["inverse_ms"] > 0 and row["setup_s"] >= 0
    assert row["roundtrip_rel_err"] < 1e-10  # GL is exact for band-limited coefficients
    table = capsys.readouterr().out
    assert "| sphcnn | GL 16x31 | 16 | float64 | 1 |" in table
    with open(out, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 1


def test_healpix_nside():
    assert [healpix_nside(L) for L in (16, 32, 33, 64, 100)] == [8, 16, 32, 32, 64]
    assert all(L <= 3 * healpix_nside(L) for L in range(2, 300)) and math.log2(healpix_nside(48)) % 1 == 0
