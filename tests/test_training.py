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


def _bn_net(features: int = 5) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, features), nn.BatchNorm1d(features), nn.Linear(features, 3))


def test_recalibrate_batch_norm_is_the_plain_average_of_batch_statistics():
    from sphcnn.training import recalibrate_batch_norm

    torch.manual_seed(0)
    net = _bn_net()
    bn = net[2]
    bn.running_mean.fill_(100.0)  # stale statistics
    net.eval()
    batches = [torch.randn(8, 1, 4, 4) + k for k in range(5)]
    with torch.no_grad():
        feats = [net[1](net[0](b)) for b in batches]
    used = recalibrate_batch_norm(net, [(b, torch.zeros(8)) for b in batches], num_batches=3)
    assert used == 3 and not net.training and bn.momentum == 0.1
    expected_mean = torch.stack([f.mean(0) for f in feats[:3]]).mean(0)
    expected_var = torch.stack([f.var(0, unbiased=True) for f in feats[:3]]).mean(0)
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-6)
    assert torch.allclose(bn.running_var, expected_var, atol=1e-5)
    assert recalibrate_batch_norm(nn.Linear(2, 2), [torch.zeros(1, 2)], 1) == 0  # nothing to recalibrate
    before = bn.running_mean.clone()
    with pytest.raises(ValueError, match="num_batches must be an integer >= 1, got 0"):
        recalibrate_batch_norm(net, batches, num_batches=0)
    assert torch.equal(bn.running_mean, before)  # refused before touching the statistics


def test_spectral_batch_norm_momentum_none_averages_batches():
    from sphcnn.nn import SpectralBatchNorm
    from sphcnn.training import recalibrate_batch_norm

    torch.manual_seed(0)
    norm = SpectralBatchNorm(3, L=2, domain="so3")
    xs = [torch.randn(4, 3, 10) + k for k in range(3)]
    recalibrate_batch_norm(norm, xs, num_batches=3)
    means = []
    for x in xs:
        probe = SpectralBatchNorm(3, L=2, domain="so3", momentum=1.0)  # running stats = this batch's
        probe.train()(x)
        means.append(probe.running_mean.clone())
    assert torch.allclose(norm.running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert norm.momentum == 0.1 and "num_batches_tracked" not in norm.state_dict()


def test_batch_norm_recalibration_callback_runs_before_validation():
    from sphcnn.training import BatchNormRecalibration, recalibrate_batch_norm

    class Unshuffled(SeparableDataModule):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False)

    def fit(callbacks):
        pl.seed_everything(0)
        module = ClassificationModule(_bn_net(), optimizer=functools.partial(torch.optim.SGD, lr=0.5), num_classes=3)
        trainer = quiet_trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, callbacks=callbacks)
        trainer.fit(module, datamodule=Unshuffled())
        return module

    module = fit([BatchNormRecalibration(num_batches=2)])
    reference = _bn_net()
    reference.load_state_dict(module.net.state_dict())
    recalibrate_batch_norm(reference, Unshuffled().train_dataloader(), num_batches=2)  # final weights, same batches
    assert torch.allclose(module.net[2].running_mean, reference[2].running_mean, atol=1e-6)
    assert torch.allclose(module.net[2].running_var, reference[2].running_var, atol=1e-6)
    plain = fit([])  # without the callback the statistics are the training-time running averages
    assert not torch.allclose(plain.net[2].running_mean, reference[2].running_mean, atol=1e-3)
    with pytest.raises(ValueError, match="num_batches"):
        BatchNormRecalibration(num_batches=0)
