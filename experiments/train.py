"""Train a model: ``python experiments/train.py [overrides]``.

Default: the s2cnn MNIST model on the embedded spherical MNIST, NR/R setting
(train on unrotated digits, test on rotated ones); prints the test accuracy.
Examples::

    python experiments/train.py                                   # default experiment
    python experiments/train.py model=planar data=nr_nr seed=1
    python experiments/train.py experiment=s2cnn_mnist trainer.max_epochs=20
    python experiments/train.py ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt   # resume

Each run writes to its own directory (``paths.output_dir``): the resolved
``config.yaml`` (and Hydra's ``.hydra/``), ``csv/version_0/metrics.csv``,
``checkpoints/`` (best by validation accuracy and ``last.ckpt``) and
``metrics.json`` with the final metrics, the parameter count and the
training throughput.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `experiments` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from experiments.common import (
    instantiate_callbacks,
    instantiate_loggers,
    prepare_run,
    to_builtin,
    write_json,
)
from sphcnn.models.blueprint import count_parameters
from sphcnn.training import TrainingThroughput

log = logging.getLogger(__name__)


def checkpoint_paths(trainer: pl.Trainer) -> tuple[str, str]:
    """(best, last) checkpoint paths saved in this run ("" when none).

    Best: the first checkpoint callback that monitors a metric. Last: a
    callback without a monitor keeps the latest state (``last.ckpt``), or
    else a ``save_last`` copy.
    """
    best = last = ""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is not None and not best:
            best = callback.best_model_path
        if callback.monitor is None and not last:
            last = callback.best_model_path
        if not last:
            last = callback.last_model_path
    return best, last


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit and/or test the model of ``cfg``; return the final metrics (also written to ``metrics.json``).

    The returned dict holds the last logged training/validation metrics, the
    test metrics (``test/acc``, ``test/loss``) when ``cfg.test``, and
    ``num_parameters``, ``train_seconds``, ``train_samples_per_second``,
    ``best_checkpoint``, ``last_checkpoint`` and ``output_dir``.
    """
    output_dir, datamodule, model = prepare_run(cfg)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"))
    log.info("Instantiating trainer <%s>", cfg.trainer._target_)
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    metrics: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_parameters": count_parameters(model.net),
        "seed": cfg.get("seed"),
    }

    if cfg.get("train"):
        log.info("Starting training")
        start = time.perf_counter()
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics["train_seconds"] = time.perf_counter() - start
        metrics["epochs_trained"] = trainer.current_epoch
        metrics.update(to_builtin(trainer.callback_metrics))

    throughput = next((c for c in callbacks if isinstance(c, TrainingThroughput)), None)
    if throughput is not None:
        metrics["train_samples_per_second"] = throughput.samples_per_second

    best_checkpoint, last_checkpoint = checkpoint_paths(trainer)
    metrics["best_checkpoint"] = best_checkpoint or None
    metrics["last_checkpoint"] = last_checkpoint or None

    if cfg.get("test"):
        log.info("Starting testing")
        if cfg.get("train") and best_checkpoint:
            ckpt_path = best_checkpoint
        elif cfg.get("train"):
            log.warning("No best checkpoint was saved; testing the weights at the end of training")
            ckpt_path = None
        else:
            ckpt_path = cfg.get("ckpt_path")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics["test_checkpoint"] = ckpt_path
        metrics.update(to_builtin(trainer.callback_metrics))

    if trainer.is_global_zero:  # with DDP, one process writes
        write_json(output_dir / "metrics.json", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    if "test/acc" in metrics:
        print(f"test accuracy: {100 * metrics['test/acc']:.2f} %  (run directory: {metrics['output_dir']})")
    # the value a Hydra sweeper would optimize
    return metrics.get(cfg.get("optimized_metric", "test/acc"))


if __name__ == "__main__":
    main()
