"""Lightning training for classification: one module that wraps any model.

:class:`ClassificationModule` trains any ``nn.Module`` mapping inputs to class
logits (planar, group and spherical models alike): cross-entropy loss, the
optimizer and learning-rate scheduler given as factories (so that a config
can build them, e.g. Hydra's ``_partial_: true``), accuracy metrics from
torchmetrics logged under ``train/``, ``val/`` and ``test/``.

:class:`TrainingThroughput` measures the training speed in samples per
second (time spent in training steps only, validation excluded).

:class:`BatchNormRecalibration` re-estimates batch-norm statistics with the
current weights before each validation (stale running averages made
eval-mode accuracy swing between epochs).

:class:`SyntheticDataModule` serves random tensors of a chosen shape with
random labels: the data for smoke tests of the training loop (it learns
nothing), with the interface of the real DataModules.

This is the only module of ``sphcnn`` besides the DataModule that imports
Lightning; it never imports Hydra.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from sphcnn.spectral._options import check_option

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]
SchedulerInterval = Literal["epoch", "step"]


def describe_factory(factory: Callable | None) -> dict[str, Any] | str | None:
    """A plain description of an optimizer/scheduler factory for the hyperparameters.

    ``functools.partial(torch.optim.Adam, lr=0.1)`` → ``{"_target_": "torch.optim.adam.Adam", "lr": 0.1}``
    (keyword values that are not plain numbers, strings or lists of them are
    written as their ``repr``); any other callable → its qualified name.
    """
    if factory is None:
        return None
    if isinstance(factory, functools.partial):
        func = factory.func
        description: dict[str, Any] = {"_target_": f"{func.__module__}.{func.__qualname__}"}
        for key, value in factory.keywords.items():
            description[key] = value if _is_plain(value) else repr(value)
        return description
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


class ClassificationModule(pl.LightningModule):
    """Train a classifier ``net`` (inputs → logits ``[B, num_classes]``) with cross-entropy.

    Args:
        net: the model. It is not stored in the hyperparameters (it is an
            object, not a setting); rebuild it from the config to load a
            checkpoint.
        optimizer: a factory ``params -> torch.optim.Optimizer``, e.g.
            ``functools.partial(torch.optim.Adam, lr=1e-3)``. Default: Adam
            with learning rate 1e-3.
        scheduler: optional factory ``optimizer -> LR scheduler``.
            The hyperparameters hold plain descriptions of both factories
            (see :func:`describe_factory`), so checkpoints load with
            ``torch.load(weights_only=True)``.
        num_classes: number of classes of the accuracy metrics.
        scheduler_interval: step the scheduler every ``"epoch"`` or every ``"step"``.
        scheduler_monitor: the logged metric a ``ReduceLROnPlateau``-style
            scheduler watches.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        num_classes: int = 10,
        scheduler_interval: SchedulerInterval = "epoch",
        scheduler_monitor: str = "val/loss",
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        check_option("scheduler_interval", scheduler_interval, SchedulerInterval)
        for name, factory in (("optimizer", optimizer), ("scheduler", scheduler)):
            if factory is not None and not callable(factory):
                raise TypeError(f"{name} must be a factory (callable) or None, got {type(factory).__name__}")
        # The network is an object, not a hyperparameter: keep it out of hparams. The
        # factories are kept as plain descriptions, so that checkpoints hold only
        # primitive values and load with torch.load(weights_only=True).
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.hparams["optimizer"] = describe_factory(optimizer)
        self.hparams["scheduler"] = describe_factory(scheduler)
        self.make_optimizer = optimizer
        self.make_scheduler = scheduler
        self.net = net
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _shared_step(self, batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError("a batch must be a pair (inputs, integer labels)")
        x, y = batch
        logits = self.net(x)
        if logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the network must return logits [B, num_classes], got shape {tuple(logits.shape)}")
        loss = self.criterion(logits, y)
        return loss, logits.argmax(dim=1), y

    def on_train_start(self) -> None:
        # Sanity-check validation must not count towards the best accuracy.
        self.val_loss.reset()
        self.val_acc.reset()
        self.val_acc_best.reset()

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, preds, targets = self._shared_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, targets)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        loss, preds, targets = self._shared_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, targets)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        loss, preds, targets = self._shared_step(batch)
        self.test_loss(loss)
        self.test_acc(preds, targets)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> Any:
        if self.make_optimizer is None:
            optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)
        else:
            optimizer = self.make_optimizer(params=self.parameters())
        if self.make_scheduler is None:
            return {"optimizer": optimizer}
        scheduler = self.make_scheduler(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.hparams.scheduler_monitor,
                "interval": self.hparams.scheduler_interval,
                "frequency": 1,
            },
        }


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, (tuple, list)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    raise ValueError(f"cannot find the batch size of a batch of type {type(batch).__name__}")


class TrainingThroughput(pl.Callback):
    """Measure training throughput: samples per second over training steps only.

    Times each training batch from ``on_train_batch_start`` to
    ``on_train_batch_end`` (forward, backward, optimizer step), so validation,
    checkpointing and data loading between batches are excluded. Logs
    ``train/samples_per_second`` every epoch; after fitting, the totals are
    in :attr:`samples`, :attr:`seconds` and :attr:`samples_per_second`.

    Args:
        skip_first_batches: batches at the start of fitting left out of the
            measurement (warm-up: first-call allocations, caches).
    """

    def __init__(self, skip_first_batches: int = 1) -> None:
        super().__init__()
        if isinstance(skip_first_batches, bool) or not isinstance(skip_first_batches, int) or skip_first_batches < 0:
            raise ValueError(f"skip_first_batches must be an integer >= 0, got {skip_first_batches!r}")
        self.skip_first_batches = skip_first_batches
        self.samples = 0
        self.seconds = 0.0
        self._batches_seen = 0
        self._epoch_samples = 0
        self._epoch_seconds = 0.0
        self._batch_start: float | None = None

    @property
    def samples_per_second(self) -> float:
        """Measured training samples per second (``nan`` before any measured batch)."""
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_samples = 0
        self._epoch_seconds = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._batch_start is None:
            return
        elapsed = time.perf_counter() - self._batch_start
        self._batch_start = None
        self._batches_seen += 1
        if self._batches_seen <= self.skip_first_batches:
            return
        size = _batch_size(batch)
        self.samples += size
        self.seconds += elapsed
        self._epoch_samples += size
        self._epoch_seconds += elapsed

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_seconds > 0:
            pl_module.log("train/samples_per_second", self._epoch_samples / self._epoch_seconds)


class BatchNormRecalibration(pl.Callback):
    """Recompute batch-norm running statistics with the current weights before each validation.

    Eval-mode batch norm uses running averages accumulated while the weights changed. When
    the normalized features drift faster than the averages follow, evaluation sees stale
    statistics: the default S2CNN's 40 invariant features (integrals of ReLU outputs, their
    spread a few % of their mean, several dying during training) had running means off by
    several standard deviations after 5 epochs, and validation accuracy on non-rotated digits
    swung between 18 and 48 % while training accuracy reached 87 %; recomputing the
    statistics on 30 training batches with the final weights gave 87 % ("precise BN").

    Before every validation (not the sanity check), the statistics of every batch norm
    (torch's ``BatchNorm*d`` that track them, :class:`sphcnn.nn.SpectralBatchNorm`) are reset and re-estimated as
    a plain average over ``num_batches`` training batches in train mode, without gradients;
    momentum and the train/eval mode are restored afterwards. The training loader builds its
    own seeded generator, so the training order is unaffected. Checkpoints saved after a
    validation hold the recalibrated statistics.
    """

    def __init__(self, num_batches: int = 32) -> None:
        super().__init__()
        self.num_batches = _check_num_batches(num_batches)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            loader = trainer.datamodule.train_dataloader() if trainer.datamodule is not None else trainer.train_dataloader
            recalibrate_batch_norm(pl_module, loader, self.num_batches)


def _check_num_batches(num_batches: int) -> int:
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be an integer >= 1, got {num_batches!r}")
    return num_batches


def recalibrate_batch_norm(model: nn.Module, loader: Iterable, num_batches: int) -> int:
    """Re-estimate the running statistics of ``model``'s batch norms on ``num_batches`` batches of ``loader``.

    Batches are ``(inputs, …)`` tuples or bare inputs. Returns the number of batches used (0 when the
    model has no batch norm tracking statistics).
    """
    _check_num_batches(num_batches)  # 0 would reset the statistics and average nothing
    norms = [m for m in model.modules()
             if hasattr(m, "reset_running_stats") and hasattr(m, "momentum") and getattr(m, "track_running_stats", True)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    device = norms[0].running_mean.device
    used = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        model.train()
        with torch.no_grad():
            for batch in loader:
                if used == num_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(x.to(device))
                used += 1
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    log.debug("recalibrated %d batch norms on %d batches", len(norms), used)
    return used


class SyntheticDataModule(pl.LightningDataModule):
    """Random inputs of a fixed shape with random labels, for smoke tests.

    Nothing can be learned from these data; they exercise the training loop
    (shapes, logging, checkpoints) without building a dataset. Batches are
    ``(x, y)`` with ``x`` float32 ``[B, *sample_shape]`` and ``y`` int64.

    Args:
        sample_shape: shape of one input, e.g. ``(1, 60, 60)``.
        num_classes: labels are drawn from ``0 … num_classes − 1``.
        n_train, n_val, n_test: sizes of the three splits.
        batch_size: batch size of every loader.
        seed: seed of the random data (the same seed gives the same data).
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        sample_shape: Sequence[int] = (1, 60, 60),
        num_classes: int = 10,
        n_train: int = 64,
        n_val: int = 32,
        n_test: int = 32,
        batch_size: int = 16,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        shape = tuple(sample_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
            raise ValueError(f"sample_shape must be a non-empty sequence of positive integers, got {sample_shape!r}")
        for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.sample_shape = shape
        self.num_classes = num_classes
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        generator = torch.Generator().manual_seed(self.seed)
        for split, size in self.sizes.items():
            x = torch.randn(size, *self.sample_shape, generator=generator)
            y = torch.randint(0, self.num_classes, (size,), generator=generator)
            self.datasets[split] = TensorDataset(x, y)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
