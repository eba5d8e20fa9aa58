"""The comparison script: runs, reuse of finished runs, tables and charts (tiny budget, real embedded data)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.compare import compare, data_efficiency_markdown, summarize_rotation  # noqa: E402

TINY = [
    "rotation.models=[linear]", "rotation.seeds=[0]", "rotation.max_epochs=1", "rotation.n_train=64",
    "+data_efficiency.variants.linear_augmented={model:linear,augment_rotation:true}",
    "data_efficiency.run_variants=[linear_augmented]", "data_efficiency.n_train=[32]", "data_efficiency.max_steps=2",
    "throughput.models=[linear,planar]", "throughput.steps=1", "throughput.repeats=2", "throughput.warmup_steps=1",
]


def run_compare(tmp_path: Path, overrides: list[str]) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "configs")):
        cfg = compose("compare.yaml", overrides=overrides, return_hydra_config=True)
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
            cfg.paths.output_dir = str(tmp_path / "compare")
            cfg.results_dir = str(tmp_path / "results")
            cfg.runs_dir = str(tmp_path / "runs")
        compare(cfg, command="test")


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_compare_writes_tables_and_charts_and_reuses_finished_runs(tmp_path):
    run_compare(tmp_path, TINY)
    results = tmp_path / "results"
    rows = read_rows(results / "rotation_runs.csv")
    # one NR-trained run tested on NR and R, one R-trained run, per seed
    assert sorted((r["setting"], r["seed"]) for r in rows) == sorted(
        (s, "0") for s in ("NR/NR", "NR/R", "R/R")
    )
    assert all(0.0 <= float(r["test_acc"]) <= 1.0 for r in rows)
    assert len({r["run_dir"] for r in rows}) == 2  # NR/R reuses the NR-trained run
    table = (results / "rotation.md").read_text()
    assert "| linear |" in table and "36,010" in table and "Command: `test`" in table
    assert (results / "rotation.png").stat().st_size > 0
    efficiency = read_rows(results / "data_efficiency_runs.csv")
    assert [int(r["n_train"]) for r in efficiency] == [32]
    assert all(r["augment_rotation"] == "True" for r in efficiency)
    assert "| 32 |" in (results / "data_efficiency.md").read_text()
    assert (results / "data_efficiency.png").stat().st_size > 0
    speeds = read_rows(results / "throughput.csv")
    assert [r["model"] for r in speeds] == ["linear", "planar"]
    assert all(float(r["samples_per_second_min"]) <= float(r["samples_per_second_median"]) for r in speeds)
    assert "| planar | 68,106 |" in (results / "throughput.md").read_text()

    # a second call reuses every finished run: no new checkpoints appear
    checkpoints = sorted(p.name for p in (tmp_path / "runs").rglob("*.ckpt"))
    before = {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("metrics.json")}
    run_compare(tmp_path, TINY)
    assert sorted(p.name for p in (tmp_path / "runs").rglob("*.ckpt")) == checkpoints
    assert {p: p.stat().st_mtime for p in (tmp_path / "runs").rglob("metrics.json")} == before
    assert read_rows(results / "rotation_runs.csv") == rows
    assert (results / "throughput.md").is_file()


def test_unknown_stage_or_variant_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown stages"):
        run_compare(tmp_path, ["stages=[rotation,plots]"])
    with pytest.raises(ValueError, match="unknown data-efficiency variants"):
        run_compare(tmp_path, ["stages=[data_efficiency]", "data_efficiency.run_variants=[cnn]"])


def test_rotation_summary_statistics():
    rows = [
        dict(model="m", setting="NR/NR", seed=0, test_acc=0.9, num_parameters=5, train_seconds=10, train_samples_per_second=100, epochs=3),
        dict(model="m", setting="NR/NR", seed=1, test_acc=0.7, num_parameters=5, train_seconds=30, train_samples_per_second=50, epochs=3),
        dict(model="m", setting="NR/R", seed=0, test_acc=0.2, num_parameters=5, train_seconds=10, train_samples_per_second=100, epochs=3),
    ]
    (entry,) = summarize_rotation(rows)
    assert entry["NR/NR mean"] == pytest.approx(0.8) and entry["NR/NR std"] == pytest.approx(0.1414213562)
    assert entry["NR/R mean"] == pytest.approx(0.2) and entry["NR/R std"] == 0.0 and entry["NR/R runs"] == 1
    assert entry["R/R runs"] == 0
    assert entry["train_seconds_mean"] == pytest.approx(20)  # NR/R rows share the NR/NR training runs
    table = data_efficiency_markdown(
        [dict(model="a", n_train=10, test_acc_mean=0.5, test_acc_std=0.0), dict(model="b", n_train=20, test_acc_mean=0.25, test_acc_std=0.05)],
        "header",
    )
    assert "| 10 | 50.0 ± 0.0 | – |" in table and "| 20 | – | 25.0 ± 5.0 |" in table
