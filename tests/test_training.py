"""Tests of sphcnn.training: the classification LightningModule, throughput callback, synthetic data."""

from __future__ import annotations

import functools
import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from sphcnn.training import ClassificationModule, SyntheticDataModule, TrainingThroughput


def tiny_net(num_classes: int = 3, shape=(1, 4, 4)) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), num_classes))


def quiet_trainer(**kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def test_hyperparameters_exclude_the_network_but_keep_settings():
    module = ClassificationModule(tiny_net(), optimizer=functools.partial(torch.optim.SGD, lr=0.1), num_classes=3)
    assert "net" not in module.hparams
    assert module.hparams.num_classes == 3
    assert module.hparams.optimizer == {"_target_": "torch.optim.sgd.SGD", "lr": 0.1}
    assert module.hparams.scheduler is None


def test_checkpoint_loads_with_weights_only(tmp_path):
    module = ClassificationModule(
        tiny_net(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.1, betas_like=(0.9, 0.99), weird=object()),
        scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3),
        num_classes=3,
    )
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    checkpoint = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert "net" not in checkpoint["hyper_parameters"]
    assert checkpoint["hyper_parameters"]["optimizer"]["betas_like"] == (0.9, 0.99)
    assert checkpoint["hyper_parameters"]["optimizer"]["weird"].startswith("<object")
    assert checkpoint["hyper_parameters"]["scheduler"]["step_size"] == 3
    assert set(checkpoint["state_dict"]) == {"net.1.weight", "net.1.bias"}


def test_optimizer_and_scheduler_come_from_the_factories():
    module = ClassificationModule(
        tiny_net(),
        optimizer=functools.partial(torch.optim.SGD, lr=0.25, momentum=0.5),
        scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5),
        num_classes=3,
        scheduler_interval="step",
    )
    config = module.configure_optimizers()
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.25 and optimizer.param_groups[0]["momentum"] == 0.5
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert config["lr_scheduler"]["interval"] == "step"
    # all parameters of the network are optimized
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in module.net.parameters()}


def test_default_optimizer_is_adam_without_scheduler():
    config = ClassificationModule(tiny_net(), num_classes=3).configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.Adam)
    assert "lr_scheduler" not in config


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(net="not a module"), TypeError),
        (dict(num_classes=1), ValueError),
        (dict(scheduler_interval="epochs"), ValueError),
        (dict(optimizer="adam"), TypeError),
    ],
)
def test_bad_arguments_are_errors(kwargs, error):
    arguments = dict(net=tiny_net(), num_classes=3)
    arguments.update(kwargs)
    with pytest.raises(error):
        ClassificationModule(**arguments)


def test_network_must_return_logits_per_sample():
    module = ClassificationModule(nn.Flatten(start_dim=0), num_classes=3)  # returns a 1-D tensor
    x, y = torch.randn(2, 1, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="logits"):
        module.training_step((x, y), 0)


class SeparableDataModule(pl.LightningDataModule):
    """Three classes told apart by the sign pattern of two pixels: learnable in a few epochs."""

    def __init__(self, n: int = 96, batch_size: int = 16):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 3, (n,), generator=g)
        x = 0.1 * torch.randn(n, 1, 4, 4, generator=g)
        x[:, 0, 0, 0] += (y == 1).float() * 2
        x[:, 0, 3, 3] += (y == 2).float() * 2
        self.dataset = torch.utils.data.TensorDataset(x, y)
        self.batch_size = batch_size

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size)

    def test_dataloader(self):
        return self.val_dataloader()


def test_training_learns_and_logs_accuracy_metrics():
    pl.seed_everything(0)
    module = ClassificationModule(tiny_net(), optimizer=functools.partial(torch.optim.Adam, lr=0.05), num_classes=3)
    throughput = TrainingThroughput(skip_first_batches=1)
    trainer = quiet_trainer(max_epochs=15, callbacks=[throughput])
    data = SeparableDataModule()
    trainer.fit(module, datamodule=data)
    metrics = trainer.callback_metrics
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "train/samples_per_second"):
        assert name in metrics, name
    assert metrics["val/acc"] > 0.95
    assert metrics["val/acc_best"] >= metrics["val/acc"]
    (test_metrics,) = trainer.test(module, datamodule=data, verbose=False)
    assert test_metrics["test/acc"] > 0.95
    # 15 epochs × 6 batches × 16 samples, minus the skipped first batch
    assert throughput.samples == 15 * 96 - 16
    assert throughput.seconds > 0 and throughput.samples_per_second > 0


def test_throughput_is_nan_before_training_and_rejects_bad_warmup():
    assert math.isnan(TrainingThroughput().samples_per_second)
    with pytest.raises(ValueError):
        TrainingThroughput(skip_first_batches=-1)


def test_synthetic_datamodule_shapes_and_determinism():
    data = SyntheticDataModule(sample_shape=(1, 6, 6), num_classes=4, n_train=10, n_val=5, n_test=7, batch_size=4, seed=3)
    data.setup("fit")
    x, y = next(iter(data.val_dataloader()))
    assert x.shape == (4, 1, 6, 6) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.max()) < 4
    assert len(data.test_dataloader().dataset) == 7
    again = SyntheticDataModule(sample_shape=(1, 6, 6), num_classes=4, n_train=10, n_val=5, n_test=7, batch_size=4, seed=3)
    again.setup("fit")
    assert torch.equal(again.datasets["train"].tensors[0], data.datasets["train"].tensors[0])


@pytest.mark.parametrize("kwargs", [dict(sample_shape=()), dict(sample_shape=(1, 0)), dict(n_train=0), dict(batch_size=1.5)])
def test_synthetic_datamodule_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        SyntheticDataModule(**kwargs)
