"""Evaluate a checkpoint on any setting: ``python experiments/eval.py ckpt_path=<file.ckpt> model=<name> data=<setting>``.

The model config must be the one the checkpoint was trained with (the
network is rebuilt from it, then the checkpoint's weights are loaded).
Example: test a model trained on unrotated digits on rotated ones::

    python experiments/eval.py ckpt_path=outputs/train/runs/<run>/checkpoints/last.ckpt model=planar data=nr_r

Writes ``config.yaml``, ``csv/`` and ``metrics.json`` (``test/acc``,
``test/loss``) into its own output directory and prints the test accuracy.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `experiments` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from experiments.common import instantiate_loggers, prepare_run, to_builtin, write_json
from sphcnn.models.blueprint import count_parameters

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint ``cfg.ckpt_path`` on the test split of ``cfg.data``; return (and write) the metrics."""
    ckpt_path = Path(cfg.ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path}")
    output_dir, datamodule, model = prepare_run(cfg)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers, callbacks=[])

    log.info("Testing checkpoint %s", ckpt_path)
    trainer.test(model=model, datamodule=datamodule, ckpt_path=str(ckpt_path))
    metrics: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "output_dir": str(output_dir),
        "num_parameters": count_parameters(model.net),
    }
    metrics.update(to_builtin(trainer.callback_metrics))
    if trainer.is_global_zero:  # with DDP, one process writes
        write_json(output_dir / "metrics.json", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    metrics = evaluate(cfg)
    print(f"test accuracy: {100 * metrics['test/acc']:.2f} %  (run directory: {metrics['output_dir']})")


if __name__ == "__main__":
    main()
