"""The baseline comparison: ``python experiments/compare.py [overrides]`` (config: ``configs/compare.yaml``).

1. Rotation table: each model of ``rotation.models`` is trained on unrotated
   (NR) and on rotated (R) training digits for every seed; NR-trained models
   are tested on NR and on R test digits, R-trained ones on R: the NR/NR,
   NR/R and R/R settings of Cohen et al. (2018). Reported: test accuracy
   mean ± std over seeds, parameter count, training time per run and
   training throughput (samples/s).
2. Data-efficiency table: accuracy on rotated test digits versus the number
   of training digits, for the planar CNN trained with rotation augmentation
   and the spherical CNN trained without (both on unrotated digits).
3. Throughput table: training samples/s of each model on a fixed batch,
   the models timed in alternation (the throughput measured inside the
   training runs is in table 1 too, but depends on the machine's load).

Outputs in ``results_dir``: ``rotation.md`` / ``rotation.csv`` (summary),
``rotation_runs.csv`` (every run), ``rotation.png``, ``data_efficiency.md`` /
``data_efficiency.csv`` / ``data_efficiency_runs.csv`` / ``data_efficiency.png``,
``throughput.md`` / ``throughput.csv``.
Every training run is a normal ``train(cfg)`` run of ``configs/train.yaml``
with overrides; finished runs (their ``metrics.json`` exists) are reused.

Example (the committed embedded-digits results; see docs/experiments.md)::

    python experiments/compare.py rotation.seeds=[0,1] rotation.max_epochs=3
    python experiments/compare.py data_source=/data/mnist data_source_label=mnist   # full MNIST IDX files
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `experiments` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra
from omegaconf import DictConfig

from experiments.eval import evaluate
from experiments.train import train

log = logging.getLogger(__name__)

SETTINGS = ("NR/NR", "R/R", "NR/R")
STAGES = ("rotation", "data_efficiency", "throughput", "collect")
# train variant -> (data config trained and tested with, [extra test data configs])
TRAINING_VARIANTS = {"NR": ("nr_nr", {"NR/NR": None, "NR/R": "nr_r"}), "R": ("r_r", {"R/R": None})}


def quiet_run_overrides() -> list[str]:
    """No progress bar or early stopping in comparison runs (they run unattended, for a fixed budget)."""
    return ["callbacks.rich_progress_bar=null", "callbacks.early_stopping=null", "+trainer.enable_progress_bar=false"]


def run_directory(parent: Path, label: str, overrides: Sequence[str]) -> Path:
    """``parent/<label>_<hash of the overrides>``: a finished run is reused only for the very same settings."""
    digest = hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]
    return parent / f"{label}_{digest}"


def run_once(
    train_overrides: Sequence[str], run_dir: Path, extra_tests: dict[str, str] | None = None
) -> dict[str, Any]:
    """Train (or reuse) one run in ``run_dir``; test the best checkpoint on extra data configs.

    Returns the run's ``metrics.json`` plus ``extra_tests``: {label: test accuracy}.
    """
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        log.info("Reusing finished run %s", run_dir)
        metrics = json.loads(metrics_file.read_text())
    else:
        log.info("Training %s: %s", run_dir.name, " ".join(train_overrides))
        cfg = hydra.compose(config_name="train.yaml", overrides=[*train_overrides, f"paths.output_dir={run_dir}"])
        metrics = train(cfg)
    extra_results: dict[str, float] = {}
    for label, data_config in (extra_tests or {}).items():
        test_dir = run_dir / f"test_{data_config}"
        test_file = test_dir / "metrics.json"
        if test_file.is_file():
            extra_metrics = json.loads(test_file.read_text())
        else:
            model_override = [o for o in train_overrides if o.startswith("model=")]
            data_overrides = [o for o in train_overrides if o.startswith("data.") or o.startswith("seed=")]
            cfg = hydra.compose(
                config_name="eval.yaml",
                overrides=[
                    *model_override, f"data={data_config}", *data_overrides,
                    f"ckpt_path={metrics['test_checkpoint'] or metrics['last_checkpoint']}",
                    f"paths.output_dir={test_dir}",
                ],
            )
            extra_metrics = evaluate(cfg)
        extra_results[label] = extra_metrics["test/acc"]
    metrics["extra_tests"] = extra_results
    return metrics


def rotation_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """Stage 1: every model × training variant × seed; one row per (model, setting, seed)."""
    spec = cfg.rotation
    rows = []
    for model_name in spec.models:
        for variant, (data_config, tests) in TRAINING_VARIANTS.items():
            for seed in spec.seeds:
                overrides = [
                    f"model={model_name}", f"data={data_config}", f"seed={seed}",
                    f"data.source={cfg.data_source}", f"trainer.max_epochs={spec.max_epochs}",
                    f"data.n_train={'null' if spec.n_train is None else spec.n_train}",
                    *quiet_run_overrides(), *cfg.train_overrides,
                ]
                run_dir = run_directory(Path(cfg.runs_dir) / "rotation", f"{model_name}_train{variant}_seed{seed}", overrides)
                extra = {label: data for label, data in tests.items() if data is not None}
                metrics = run_once(overrides, run_dir, extra)
                for setting, data in tests.items():
                    accuracy = metrics["test/acc"] if data is None else metrics["extra_tests"][setting]
                    rows.append(run_row(metrics, model=model_name, setting=setting, seed=seed, test_acc=accuracy))
    return rows


def data_efficiency_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """Stage 2: accuracy on rotated test digits versus the number of (unrotated) training digits."""
    spec = cfg.data_efficiency
    rows = []
    unknown = set(spec.run_variants) - set(spec.variants)
    if unknown:
        raise ValueError(f"unknown data-efficiency variants {sorted(unknown)}; defined: {list(spec.variants)}")
    for label in spec.run_variants:
        variant = spec.variants[label]
        for n_train in spec.n_train:
            batches_per_epoch = math.ceil(n_train / spec.batch_size)
            epochs = math.ceil(spec.max_steps / batches_per_epoch)
            for seed in spec.seeds:
                overrides = [
                    f"model={variant.model}", "data=nr_r", f"seed={seed}", f"data.source={cfg.data_source}",
                    f"data.n_train={n_train}", f"data.batch_size={spec.batch_size}",
                    f"data.augment_rotation={str(bool(variant.augment_rotation)).lower()}",
                    f"trainer.max_epochs={epochs}", f"+trainer.max_steps={spec.max_steps}",
                    f"trainer.check_val_every_n_epoch={max(1, epochs // spec.validations)}",
                    *quiet_run_overrides(), *cfg.train_overrides,
                ]
                run_dir = run_directory(Path(cfg.runs_dir) / "data_efficiency", f"{label}_n{n_train}_seed{seed}", overrides)
                metrics = run_once(overrides, run_dir)
                rows.append(
                    run_row(metrics, model=label, setting="NR/R", seed=seed, test_acc=metrics["test/acc"],
                            n_train=n_train, augment_rotation=bool(variant.augment_rotation))
                )
    return rows


def measure_throughput(cfg: DictConfig) -> list[dict[str, Any]]:
    """Stage 3: training throughput of each model on one fixed batch, the models timed in alternation.

    One step = forward, cross-entropy, backward and optimizer step on a random
    batch ``[batch_size, 1, 60, 60]``. After ``warmup_steps``, each model is
    timed for ``steps`` steps, in ``repeats`` rounds that alternate between
    the models (so a change in machine load hits all of them alike); the
    median round gives samples/s. The load average is recorded with it.
    """
    import os
    import time

    import torch

    spec = cfg.throughput
    models = {}
    for name in spec.models:
        model_cfg = hydra.compose(config_name="train.yaml", overrides=[f"model={name}"]).model
        module = hydra.utils.instantiate(model_cfg)
        optimizer = module.make_optimizer(params=module.parameters()) if module.make_optimizer else torch.optim.Adam(module.parameters())
        models[name] = (module.net.train(), optimizer)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(spec.batch_size, 1, 60, 60, generator=generator)
    y = torch.randint(0, 10, (spec.batch_size,), generator=generator)

    def step(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for net, optimizer in models.values():
        for _ in range(spec.warmup_steps):
            step(net, optimizer)
    rounds: dict[str, list[float]] = defaultdict(list)
    for _ in range(spec.repeats):
        for name, (net, optimizer) in models.items():
            start = time.perf_counter()
            for _ in range(spec.steps):
                step(net, optimizer)
            rounds[name].append(spec.steps * spec.batch_size / (time.perf_counter() - start))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name, (net, _) in models.items():
        rows.append({
            "model": name, "num_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
            "samples_per_second_median": statistics.median(rounds[name]), "samples_per_second_min": min(rounds[name]),
            "samples_per_second_max": max(rounds[name]), "batch_size": spec.batch_size, "torch_threads": torch.get_num_threads(),
            "load_average_1min": load,
        })
        log.info("throughput %s: %.1f samples/s", name, rows[-1]["samples_per_second_median"])
    return rows


def throughput_markdown(rows: Sequence[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| model | parameters | samples/s (median) | min – max over rounds |", "|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {int(r['num_parameters']):,} | {r['samples_per_second_median']:.0f} "
            f"| {r['samples_per_second_min']:.0f} – {r['samples_per_second_max']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run_row(metrics: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row = dict(fields)
    row.update(
        num_parameters=metrics["num_parameters"],
        train_seconds=metrics.get("train_seconds"),
        train_samples_per_second=metrics.get("train_samples_per_second"),
        epochs=metrics.get("epochs_trained"),
        run_dir=metrics["output_dir"],
    )
    return row


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_percent(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value) if value not in ("", None) else None
            except ValueError:
                pass
    return rows


def summarize_rotation(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: accuracy mean/std per setting, parameters, train time, throughput."""
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    summary = []
    for model, model_rows in by_model.items():
        entry: dict[str, Any] = {"model": model, "num_parameters": int(model_rows[0]["num_parameters"])}
        for setting in SETTINGS:
            accuracies = [r["test_acc"] for r in model_rows if r["setting"] == setting]
            mean, std = mean_std(accuracies)
            entry[f"{setting} mean"], entry[f"{setting} std"], entry[f"{setting} runs"] = mean, std, len(accuracies)
        # one training run per (train variant, seed): NR/NR rows and R/R rows
        trained = [r for r in model_rows if r["setting"] in ("NR/NR", "R/R")]
        entry["train_seconds_mean"] = mean_std(r["train_seconds"] for r in trained)[0]
        entry["train_samples_per_second_mean"] = mean_std(r["train_samples_per_second"] for r in trained)[0]
        entry["epochs"] = int(trained[0]["epochs"]) if trained and trained[0]["epochs"] is not None else None
        summary.append(entry)
    return summary


def rotation_markdown(summary: Sequence[dict[str, Any]], header: str) -> str:
    lines = [
        header, "",
        "| model | NR/NR | R/R | NR/R | parameters | train time / run (s) | training throughput (samples/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        cells = [
            f"{100 * e[f'{s} mean']:.1f} ± {100 * e[f'{s} std']:.1f}" if not math.isnan(e[f"{s} mean"]) else "–"
            for s in SETTINGS
        ]
        lines.append(
            f"| {e['model']} | {' | '.join(cells)} | {e['num_parameters']:,} | {e['train_seconds_mean']:.0f} "
            f"| {e['train_samples_per_second_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def summarize_data_efficiency(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["model"], int(row["n_train"]))].append(row)
    summary = []
    for (model, n_train), group in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        mean, std = mean_std(r["test_acc"] for r in group)
        summary.append({"model": model, "n_train": n_train, "test_acc_mean": mean, "test_acc_std": std, "runs": len(group),
                        "train_samples_per_second_mean": mean_std(r["train_samples_per_second"] for r in group)[0]})
    return summary


def data_efficiency_markdown(summary: Sequence[dict[str, Any]], header: str) -> str:
    models = list(dict.fromkeys(e["model"] for e in summary))
    sizes = sorted({e["n_train"] for e in summary})
    lookup = {(e["model"], e["n_train"]): e for e in summary}
    lines = [header, "", "| training digits | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for n in sizes:
        cells = []
        for m in models:
            e = lookup.get((m, n))
            cells.append("–" if e is None else f"{100 * e['test_acc_mean']:.1f} ± {100 * e['test_acc_std']:.1f}")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_rotation(summary: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(summary))
    for i, e in enumerate(summary):
        xs = [j + (i - (len(summary) - 1) / 2) * width for j in range(len(SETTINGS))]
        means = [100 * e[f"{s} mean"] for s in SETTINGS]
        stds = [100 * e[f"{s} std"] for s in SETTINGS]
        bars = ax.bar(xs, means, width, yerr=stds, capsize=3, label=e["model"])
        for bar, value in zip(bars, means):
            if not math.isnan(value):
                ax.annotate(f"{value:.0f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(SETTINGS)), [f"{s}\n(train/test)" for s in SETTINGS])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_data_efficiency(summary: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model in dict.fromkeys(e["model"] for e in summary):
        points = [e for e in summary if e["model"] == model]
        ax.errorbar([e["n_train"] for e in points], [100 * e["test_acc_mean"] for e in points],
                    yerr=[100 * e["test_acc_std"] for e in points], marker="o", capsize=3, label=model)
    ax.set_xscale("log")
    ax.set_xlabel("training digits (unrotated)")
    ax.set_ylabel("accuracy on rotated test digits (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def describe_budget(cfg: DictConfig, stage: str) -> str:
    if stage == "rotation":
        spec = cfg.rotation
        n = "all" if spec.n_train is None else spec.n_train
        return (f"source: {cfg.data_source}; {spec.max_epochs} epochs, training digits: {n}, "
                f"seeds {list(spec.seeds)}, batch 32 (model configs' optimizers)")
    spec = cfg.data_efficiency
    return (f"source: {cfg.data_source}; {spec.max_steps} optimizer steps of batch {spec.batch_size} per run, "
            f"seeds {list(spec.seeds)}; trained on unrotated digits, tested on rotated ones")


def collect(cfg: DictConfig, command: str) -> None:
    """Stage 4: tables and charts from the per-run CSVs in results_dir."""
    results = Path(cfg.results_dir)
    runs_csv = results / "rotation_runs.csv"
    if runs_csv.is_file():
        summary = summarize_rotation(read_csv(runs_csv))
        write_csv(results / "rotation.csv", summary)
        header = (f"Test accuracy (%, mean ± std over seeds) on spherical MNIST.\n\n"
                  f"Budget: {describe_budget(cfg, 'rotation')}.\n\nCommand: `{command}`")
        (results / "rotation.md").write_text(rotation_markdown(summary, header))
        plot_rotation(summary, results / "rotation.png", f"spherical MNIST ({cfg.data_source_label})")
        log.info("Wrote %s", results / "rotation.md")
    efficiency_csv = results / "data_efficiency_runs.csv"
    if efficiency_csv.is_file():
        summary = summarize_data_efficiency(read_csv(efficiency_csv))
        write_csv(results / "data_efficiency.csv", summary)
        header = (f"Accuracy (%) on rotated test digits versus number of unrotated training digits.\n\n"
                  f"Budget: {describe_budget(cfg, 'data_efficiency')}.\n\nCommand: `{command}`")
        (results / "data_efficiency.md").write_text(data_efficiency_markdown(summary, header))
        plot_data_efficiency(summary, results / "data_efficiency.png", f"data efficiency ({cfg.data_source_label})")
        log.info("Wrote %s", results / "data_efficiency.md")
    throughput_csv = results / "throughput.csv"
    if throughput_csv.is_file():
        rows = read_csv(throughput_csv)
        spec = cfg.throughput
        header = (
            f"Training throughput: forward + backward + optimizer step on a batch of {int(rows[0]['batch_size'])} "
            f"random 60×60 inputs, {spec.steps} steps per round, {spec.repeats} rounds alternating between the models, "
            f"{int(rows[0]['torch_threads'])} torch threads; 1-minute load average at the end: "
            f"{rows[0]['load_average_1min']:.1f}.\n\nCommand: `{command}`"
        )
        (results / "throughput.md").write_text(throughput_markdown(rows, header))


def compare(cfg: DictConfig, command: str = "python experiments/compare.py") -> None:
    unknown = set(cfg.stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {list(STAGES)}")
    results = Path(cfg.results_dir)
    if "rotation" in cfg.stages:
        write_csv(results / "rotation_runs.csv", rotation_runs(cfg))
    if "data_efficiency" in cfg.stages:
        write_csv(results / "data_efficiency_runs.csv", data_efficiency_runs(cfg))
    if "throughput" in cfg.stages:
        write_csv(results / "throughput.csv", measure_throughput(cfg))
    if "collect" in cfg.stages:
        collect(cfg, command)


@hydra.main(version_base="1.3", config_path="../configs", config_name="compare.yaml")
def main(cfg: DictConfig) -> None:
    command = cfg.command or " ".join(["python experiments/compare.py", *sys.argv[1:]])
    compare(cfg, command)
    for name in ("rotation.md", "data_efficiency.md", "throughput.md"):
        path = Path(cfg.results_dir) / name
        if path.is_file():
            print(path.read_text())


if __name__ == "__main__":
    main()
