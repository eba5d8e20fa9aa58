"""Hydra configs and the train / eval entry points: composition, fast_dev_run, checkpoints, resume, errors."""

from __future__ import annotations

import csv
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf, open_dict

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.eval import evaluate  # noqa: E402
from experiments.train import train  # noqa: E402

CONFIG_DIR = ROOT / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml") if not p.stem.startswith("_"))
SPHERICAL_MNIST_TARGET = "sphcnn.data.datamodule.SphericalMNISTDataModule"


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose like ``@hydra.main`` does, with the run's output directory set to ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # @hydra.main hands the task its config without the hydra node
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
    return cfg


def use_tiny_data(cfg: DictConfig) -> None:
    """Replace spherical MNIST by a few random 60×60 samples (same shapes; no dataset build)."""
    if cfg.data._target_ == SPHERICAL_MNIST_TARGET:
        with open_dict(cfg):
            cfg.data = OmegaConf.create(
                {"_target_": "sphcnn.training.SyntheticDataModule", "sample_shape": [1, 60, 60], "num_classes": 10,
                 "n_train": 8, "n_val": 4, "n_test": 4, "batch_size": 4, "seed": 0}
            )


def target_importable(target: str) -> bool:
    module_name, _, attribute = target.rpartition(".")
    try:
        return hasattr(importlib.import_module(module_name), attribute)
    except ImportError:
        return False


def skip_unless_model_exists(cfg: DictConfig) -> None:
    if not target_importable(cfg.model.net._target_):
        pytest.skip(f"{cfg.model.net._target_} is not in the library yet")


def test_default_train_config_is_the_spherical_cnn_on_embedded_mnist_nr_r(tmp_path):
    cfg = compose_config("train.yaml", [], tmp_path)
    assert cfg.model.net._target_ == "sphcnn.models.spherical.S2CNN"
    assert cfg.data._target_ == SPHERICAL_MNIST_TARGET
    assert cfg.data.setting == "NR/R" and cfg.data.source == "embedded"
    assert cfg.data.n_train is None and cfg.trainer.max_epochs == 5  # minutes on 2 CPU cores
    assert "rich_progress_bar" in cfg.callbacks and "csv" in cfg.logger
    assert cfg.train and cfg.test and cfg.seed is not None


@pytest.mark.parametrize("setting_name, setting", [("nr_nr", "NR/NR"), ("r_r", "R/R"), ("nr_r", "NR/R")])
def test_data_configs_select_the_rotation_setting(tmp_path, setting_name, setting):
    cfg = compose_config("train.yaml", [f"data={setting_name}"], tmp_path)
    assert cfg.data.setting == setting
    assert cfg.trainer.max_epochs == 5  # the default experiment's budget stays
    full = compose_config("train.yaml", ["experiment=s2cnn_mnist", f"data={setting_name}"], tmp_path)
    assert full.data.setting == setting and full.data.n_train is None and full.trainer.max_epochs == 20


# inputs of the group-demo models; every other model takes spherical MNIST's [B, 1, 60, 60]
DEMO_INPUT_SHAPES = {"rc_cnn1d": (2, 4, 48), "cnn1d": (2, 4, 48), "oh_cnn3d": (2, 1, 6, 6, 6)}


@pytest.mark.parametrize("model_name", MODELS)
def test_every_model_config_builds_a_network_with_the_configured_logits(tmp_path, model_name):
    import hydra

    cfg = compose_config("train.yaml", [f"model={model_name}"], tmp_path)
    skip_unless_model_exists(cfg)
    module = hydra.utils.instantiate(cfg.model)
    logits = module(torch.randn(DEMO_INPUT_SHAPES.get(model_name, (2, 1, 60, 60))))
    assert logits.shape == (2, cfg.model.num_classes)
    if model_name not in DEMO_INPUT_SHAPES:
        assert cfg.model.num_classes == 10
    assert callable(module.make_optimizer) and module.hparams.optimizer["_target_"].startswith("torch.optim")


@pytest.mark.parametrize("group, name", [("model", "no_such_model"), ("data", "no_such_data"), ("experiment", "nope")])
def test_unknown_config_name_is_a_hydra_error(tmp_path, group, name):
    with pytest.raises(ConfigCompositionException, match=f"Could not find '{group}/{name}'"):
        compose_config("train.yaml", [f"{group}={name}"], tmp_path)


def test_unknown_option_is_an_error(tmp_path):
    with pytest.raises(ConfigCompositionException):
        compose_config("train.yaml", ["trainer.max_epoch=3"], tmp_path)  # typo of max_epochs


def test_eval_config_requires_a_checkpoint(tmp_path):
    cfg = compose_config("eval.yaml", [], tmp_path)
    assert OmegaConf.is_missing(cfg, "ckpt_path")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_with_fast_dev_run(tmp_path, experiment):
    cfg = compose_config("train.yaml", [f"experiment={experiment}", "debug=fdr", "callbacks=none", "logger=[]"], tmp_path)
    skip_unless_model_exists(cfg)
    use_tiny_data(cfg)
    metrics = train(cfg)
    assert "test/acc" in metrics and 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["num_parameters"] > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] == pytest.approx(metrics["test/acc"])
    assert (tmp_path / "config.yaml").is_file()


def smoke_overrides(max_epochs: int) -> list[str]:
    return ["experiment=smoke", f"trainer.max_epochs={max_epochs}", "callbacks.rich_progress_bar=null", "seed=7"]


def test_run_directory_holds_config_metrics_csv_json_and_checkpoints(tmp_path):
    cfg = compose_config("train.yaml", smoke_overrides(2), tmp_path)
    metrics = train(cfg)
    saved = OmegaConf.load(tmp_path / "config.yaml")
    assert saved.seed == 7 and saved.trainer.max_epochs == 2
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss", "val/acc", "test/acc", "train/samples_per_second"} <= set(rows[0].keys())
    assert sorted({int(r["epoch"]) for r in rows if r["val/acc"]}) == [0, 1]
    written = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test/acc", "val/acc", "num_parameters", "train_seconds", "train_samples_per_second", "best_checkpoint"):
        assert written[key] is not None, key
    assert written["train_samples_per_second"] > 0
    assert Path(metrics["last_checkpoint"]) == tmp_path / "checkpoints" / "last.ckpt"
    assert Path(metrics["best_checkpoint"]).is_file()
    assert metrics["test_checkpoint"] == metrics["best_checkpoint"]


def test_same_seed_gives_the_same_run(tmp_path):
    first = train(compose_config("train.yaml", smoke_overrides(1), tmp_path / "a"))
    second = train(compose_config("train.yaml", smoke_overrides(1), tmp_path / "b"))
    assert first["train/loss"] == second["train/loss"]
    assert first["test/acc"] == second["test/acc"]


def test_resume_from_checkpoint_continues_training(tmp_path):
    first = train(compose_config("train.yaml", smoke_overrides(1), tmp_path / "first"))
    checkpoint = torch.load(first["last_checkpoint"], weights_only=False)
    assert checkpoint["epoch"] == 0
    resumed_cfg = compose_config("train.yaml", smoke_overrides(3) + [f"ckpt_path={first['last_checkpoint']}"], tmp_path / "resumed")
    resumed = train(resumed_cfg)
    assert resumed["epochs_trained"] == 3
    resumed_checkpoint = torch.load(resumed["last_checkpoint"], weights_only=False)
    assert resumed_checkpoint["epoch"] == 2
    # global step continues from the first run: 3 epochs of 4 batches (64 samples, batch 16)
    assert resumed_checkpoint["global_step"] == 3 * 4
    with open(tmp_path / "resumed" / "csv" / "version_0" / "metrics.csv") as f:
        epochs = sorted({int(r["epoch"]) for r in csv.DictReader(f) if r["val/acc"]})
    assert epochs == [1, 2]  # epoch 0 was not trained again


def test_eval_reproduces_the_test_accuracy_of_a_saved_checkpoint(tmp_path):
    trained = train(compose_config("train.yaml", smoke_overrides(1), tmp_path / "train"))
    eval_cfg = compose_config(
        "eval.yaml",
        ["experiment=smoke", f"ckpt_path={trained['best_checkpoint']}", "seed=7"],
        tmp_path / "eval",
    )
    evaluated = evaluate(eval_cfg)
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"])
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"])
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["checkpoint"] == trained["best_checkpoint"]


def test_eval_of_a_missing_checkpoint_is_an_error(tmp_path):
    cfg = compose_config("eval.yaml", ["experiment=smoke", f"ckpt_path={tmp_path / 'missing.ckpt'}"], tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        evaluate(cfg)


def run_cli(script: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_command_line_trains_prints_test_accuracy_and_evaluates(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py", "experiment=smoke", "callbacks.rich_progress_bar=null", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy:" in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{100 * metrics['test/acc']:.2f} %" in result.stdout
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "config.yaml").is_file()

    eval_dir = tmp_path / "eval"
    result = run_cli(
        "eval.py", "experiment=smoke", f"ckpt_path={metrics['best_checkpoint']}", f"hydra.run.dir={eval_dir}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((eval_dir / "metrics.json").read_text())["test/acc"] == pytest.approx(metrics["test/acc"])


def test_command_line_names_the_unknown_model(tmp_path):
    result = run_cli("train.py", "model=resnet9000", f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'model/resnet9000'" in result.stderr
    assert "Available options in 'model'" in result.stderr and "s2cnn" in result.stderr


@pytest.mark.parametrize("setting_name", ["nr_nr", "r_r", "nr_r"])
def test_spherical_mnist_configs_train_one_batch_on_the_embedded_digits(tmp_path, setting_name):
    # seed 0: the dataset file is generated once (about 15 s) and cached for every later run
    cfg = compose_config(
        "train.yaml", [f"data={setting_name}", "model=linear", "debug=fdr", "callbacks=none", "logger=[]", "seed=0"], tmp_path
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and math.isfinite(metrics["test/loss"])


def test_logger_and_trainer_groups_compose(tmp_path):
    import hydra

    cfg = compose_config("train.yaml", ["logger=many_loggers", "trainer=ddp"], tmp_path)
    assert set(cfg.logger) == {"csv", "tensorboard"}
    assert cfg.logger.tensorboard.save_dir == f"{tmp_path}/tensorboard/"
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "gpu"
    assert compose_config("train.yaml", ["trainer=gpu"], tmp_path).trainer.accelerator == "gpu"
    assert set(compose_config("train.yaml", [], tmp_path).callbacks) == {
        "model_checkpoint", "last_checkpoint", "early_stopping", "model_summary", "rich_progress_bar", "throughput",
        "batch_norm_recalibration",
    }
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(Exception, match="tensorboard"):
            hydra.utils.instantiate(cfg.logger.tensorboard)
    else:
        assert hydra.utils.instantiate(cfg.logger.tensorboard).log_dir.startswith(str(tmp_path))
