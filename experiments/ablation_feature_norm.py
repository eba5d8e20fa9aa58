"""S2CNN with and without BatchNorm1d on its invariant features: train briefly, print train and test accuracy (NR/NR).

Before each evaluation the batch-norm statistics are recomputed on ``--recalibrate`` training batches with the
current weights, as the default training callbacks do (running averages lag the drifting features).

    python experiments/ablation_feature_norm.py --n-train 1000 --epochs 3
"""

from __future__ import annotations

import argparse
import time

import torch

from sphcnn.data.datamodule import SphericalMNISTDataModule
from sphcnn.models import S2CNN
from sphcnn.training import recalibrate_batch_norm


def evaluate(model: torch.nn.Module, batches: list, train_batches: list, recalibrate: int) -> float:
    if recalibrate:
        recalibrate_batch_norm(model, train_batches, recalibrate)
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in batches)
    model.train()
    return correct / sum(len(y) for _, y in batches)


def train(feature_norm: bool, batches: list, test: list, epochs: int, lr: float, seed: int,
          recalibrate: int) -> list[tuple[int, float, float, float]]:
    torch.manual_seed(seed)
    model = S2CNN(feature_norm=feature_norm)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        total_loss = total_acc = 0.0
        for x, y in batches:
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item()
            total_acc += (out.argmax(1) == y).float().mean().item()
        history.append((epoch, total_loss / len(batches), total_acc / len(batches), evaluate(model, test, batches, recalibrate)))
    return history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recalibrate", type=int, default=32, help="training batches for batch-norm statistics "
                        "before each evaluation (0: the running averages of training)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dm = SphericalMNISTDataModule(setting="NR/NR", n_train=args.n_train, batch_size=32, seed=args.seed)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    batches, test = list(dm.train_dataloader()), list(dm.test_dataloader())
    print("| feature_norm | epoch | train loss | train accuracy | test accuracy (eval mode) | seconds (whole run) |")
    print("|---|--:|--:|--:|--:|--:|")
    for feature_norm in (False, True):
        start = time.time()
        history = train(feature_norm, batches, test, args.epochs, args.lr, args.seed, args.recalibrate)
        for epoch, loss, acc, test_acc in history:
            print(f"| {feature_norm} | {epoch} | {loss:.3f} | {100 * acc:.1f} % | {100 * test_acc:.1f} % "
                  f"| {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
