"""Smoke test of experiments/bench_sht.py: one tiny case end to end (no timing assertions)."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.bench_sht import healpix_nside, main, merge_rounds  # noqa: E402


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


def test_rounds_merge_to_median_of_medians_and_overall_minimum():
    def row(fwd, fwd_min, err, note=""):
        double = (lambda v: None if v is None else 2 * v)
        return {"library": "sphcnn", "forward_ms": fwd, "inverse_ms": double(fwd), "forward_min_ms": fwd_min,
                "inverse_min_ms": double(fwd_min), "roundtrip_rel_err": err, "setup_s": 0.1, "peak_mb": fwd, "note": note}

    merged = merge_rounds([[row(3.0, 2.5, 1e-14)], [row(9.0, 1.5, 3e-14, "busy")], [row(4.0, 3.5, 2e-14)]])
    assert len(merged) == 1
    m = merged[0]
    assert (m["forward_ms"], m["inverse_ms"], m["forward_min_ms"], m["inverse_min_ms"]) == (4.0, 8.0, 1.5, 3.0)
    assert m["roundtrip_rel_err"] == 3e-14 and m["peak_mb"] == 9.0 and m["note"] == "busy"
    failed = merge_rounds([[row(None, None, None, "crashed")], [row(2.0, 1.0, 1e-14)]])[0]
    assert failed["forward_ms"] == 2.0 and failed["setup_s"] == 0.1 and failed["note"] == "crashed"
