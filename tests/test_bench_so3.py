"""Smoke tests of the benchmark scripts at minimal sizes (table shape only; no timing assertions)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from experiments import bench_network, bench_so3, equivariance_vs_oversampling


def test_bench_so3_sphcnn_rows(capsys):
    out = bench_so3.main(["--L", "4", "--batch", "1", "2", "--dtype", "float64", "--libs", "sphcnn",
                          "--repeats", "1"])
    rows = out["time"]
    assert [(r["grid"], r["batch"]) for r in rows] == [
        ("SOFT 8x8x8", 1), ("GL 4x7x7", 1), ("SOFT 8x8x8", 2), ("GL 4x7x7", 2)]
    for r in rows:
        assert r["note"] == "" and r["forward_ms"] > 0 and r["inverse_ms"] > 0 and r["peak_mb"] is not None
        assert r["roundtrip_rel_err"] < 1e-12
    assert len(out["memory"]) == 4
    table = capsys.readouterr().out
    header = table.splitlines()[0]
    assert header.count("|") == len(bench_so3.TIME_HEADERS) + 1
    assert "roundtrip rel. err" in header and "peak MB" in header


@pytest.mark.skipif(importlib.util.find_spec("s2fft") is None, reason="s2fft not installed")
def test_bench_so3_s2fft_rows():
    out = bench_so3.main(["--L", "4", "--batch", "1", "--dtype", "float32", "--libs", "s2fft",
                          "--s2fft-samplings", "gl", "--repeats", "1", "--no-memory"])
    (row,) = out["time"]
    assert row["library"] == "s2fft" and row["grid"] == "GL 4x7x7" and row["note"] == ""
    assert row["roundtrip_rel_err"] < 1e-5


def test_bench_so3_memory_only():
    out = bench_so3.main(["--memory-only", "--L", "4", "--batch", "1", "--dtype", "float32", "--grids", "gl"])
    assert out["time"] == []
    (row,) = out["memory"]
    assert row["library"] == "sphcnn" and row["peak_abs_mb"] > 0


def test_e3nn_s2cnn_matches_layout():
    pytest.importorskip("e3nn")
    model = bench_network.E3nnS2CNN()
    assert bench_network.count_parameters(model) == 154_550
    assert model(torch.randn(2, 1, 60, 60)).shape == (2, 10)


def test_bench_network_table(capsys):
    pytest.importorskip("e3nn")
    rows = bench_network.main(["--batch", "2", "--threads", "1", "--steps", "1", "--warmup", "0",
                               "--e3nn-aspect", "1", "--channels", "2", "2"])
    assert [r["model"] for r in rows] == ["sphcnn S2CNN(feature_norm=False)", "e3nn (SO3Activation aspect_ratio=1)"]
    assert all(r["ms_per_step"] > 0 and r["threads"] == 1 for r in rows)
    assert rows[0]["params"] == rows[1]["params"]
    assert "samples/s" in capsys.readouterr().out


def test_equivariance_table(capsys):
    rows = equivariance_vs_oversampling.main(["--oversampling", "1", "2", "--activations", "relu", "silu",
                                              "--rotations", "1", "--batch", "1", "--channels", "2", "2"])
    assert [(r["activation"], r["oversampling"]) for r in rows] == [
        ("relu", 1), ("relu", 2), ("silu", 1), ("silu", 2)]
    assert all(0 <= r["max_rel_change"] < 1 and r["median_rel_change"] <= r["max_rel_change"] for r in rows)
    assert capsys.readouterr().out.splitlines()[0].startswith("| activation | oversampling |")
