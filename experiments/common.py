"""Helpers shared by the experiment entry points (not part of the library).

Builds callbacks and loggers from their config groups, writes the run's
resolved config and final metrics, and sets ``PROJECT_ROOT`` so that
``configs/paths`` finds the repository from any working directory.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "configs"

os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))

log = logging.getLogger(__name__)


def _instantiate_group(group_cfg: DictConfig | None, group_name: str) -> list[Any]:
    """Instantiate every ``{name: {_target_: ...}}`` entry of a config group (callbacks, loggers); null entries are off."""
    if not group_cfg:
        return []
    if not isinstance(group_cfg, DictConfig):
        raise TypeError(f"the {group_name} config must be a mapping of name -> config, got {type(group_cfg).__name__}")
    objects = []
    for name, entry in group_cfg.items():
        if entry is None:  # `callbacks.<name>=null` switches one entry off
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ValueError(f"{group_name}.{name} must be a config with a _target_, got {entry!r}")
        log.info("Instantiating %s %s <%s>", group_name, name, entry._target_)
        objects.append(hydra.utils.instantiate(entry))
    return objects


def instantiate_callbacks(callbacks_cfg: DictConfig | None) -> list[Any]:
    return _instantiate_group(callbacks_cfg, "callbacks")


def instantiate_loggers(logger_cfg: DictConfig | None) -> list[Any]:
    return _instantiate_group(logger_cfg, "logger")


def to_builtin(value: Any) -> Any:
    """Tensors and numpy scalars → Python numbers (NaN/inf → None), recursively, for JSON."""
    if isinstance(value, Mapping):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_builtin(data), indent=2, sort_keys=True) + "\n")
    return path


def write_resolved_config(cfg: DictConfig, output_dir: str | os.PathLike) -> Path:
    """Save the fully resolved config as ``<output_dir>/config.yaml``."""
    path = Path(output_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    return path


def prepare_run(cfg: DictConfig) -> tuple[Path, pl.LightningDataModule, pl.LightningModule]:
    """Write the resolved config, seed everything, build the datamodule and the model of ``cfg``."""
    output_dir = Path(cfg.paths.output_dir)
    write_resolved_config(cfg, output_dir)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule: pl.LightningDataModule = hydra.utils.instantiate(cfg.data)
    log.info("Instantiating model <%s> with net <%s>", cfg.model._target_, cfg.model.net._target_)
    model: pl.LightningModule = hydra.utils.instantiate(cfg.model)
    return output_dir, datamodule, model
