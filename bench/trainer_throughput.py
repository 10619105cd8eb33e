"""The shared trainer against a plain PyTorch loop written here: same CNN, data in memory, batch
size, threads and steps. What a sweep pays is an epoch, training and validation together, so
both are timed: training samples/s of the trainer / of the plain loop, and the epoch time of the
plain loop / of the trainer (> 1: the trainer is faster); the verdict takes the worst of both. Runs alternate A B A B in this one process, at 1 and 2 threads, with and
without BatchNorm. Run alone on the machine:

    .venv/bin/python bench/trainer_throughput.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harness import header, spread, table, verdict
from models.cnn import CNN
from models.config import ModelConfig, TrainConfig
from models.data import DataConfig, Datasets, Split, load_datasets
from models.trainer import Trainer

NAME = "trainer_throughput"
FLOOR, GOAL = 0.95, 1.20


@dataclass(frozen=True)
class Case:
    threads: int
    normalization: bool
    steps: int  # training batches per epoch
    val: int  # validation images per epoch


def plain_epoch(case: Case, data: Datasets, seed: int) -> tuple[float, float]:
    """What a user writes: the model, Adam, shuffled batches sliced from the tensors, then
    evaluation under no_grad in batches of 1,000 (PyTorch's MNIST example). Returns training
    and validation seconds."""
    torch.manual_seed(seed)
    model = CNN(ModelConfig(conv_layers=2, normalization=case.normalization))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = data.train.images, data.train.labels
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(y_all))
    for step in range(case.steps):
        idx = order[step * 64 : (step + 1) * 64]
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    model.eval()
    correct = 0
    with torch.no_grad():
        xv, yv = data.validation.images[: case.val], data.validation.labels[: case.val]
        for b in range(0, case.val, 1000):
            correct += int((model(xv[b : b + 1000]).argmax(1) == yv[b : b + 1000]).sum())
    return train_s, time.perf_counter() - start


def trainer_epoch(case: Case, data: Datasets, seed: int) -> tuple[float, float]:
    """The same epoch through models.trainer.Trainer, with its defaults."""
    val = Split(data.validation.images[: case.val], data.validation.labels[: case.val])
    trainer = Trainer(
        functools.partial(CNN, ModelConfig(conv_layers=2, normalization=case.normalization)),
        TrainConfig(epochs=1, train_steps=case.steps, seed=seed, threads=case.threads),
        Datasets(data.train, val),
    )
    metrics = trainer.run_epoch()
    return metrics.train_seconds, metrics.eval_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few steps, one repeat: a check")
    args = parser.parse_args()
    repeats, steps, val = (1, 5, 1000) if args.quick else (args.repeats, 100, 6000)
    header(NAME, f"epoch of {steps} batches of 64 + {val} validation images, 2 conv blocks of 32")
    data = load_datasets(DataConfig())
    rows, ratios = [], []
    for threads in (1, 2):
        for norm in (False, True):
            case = Case(threads, norm, steps, val)
            torch.set_num_threads(threads)
            plain_epoch(case, data, 0)  # warm-up: first calls allocate and pick kernels
            trainer_epoch(case, data, 0)
            plain, ours = [], []
            for r in range(repeats):  # A B A B
                plain.append(plain_epoch(case, data, r))
                ours.append(trainer_epoch(case, data, r))
            epoch_ratio = [sum(p) / sum(o) for p, o in zip(plain, ours, strict=True)]
            train_ratio = [p[0] / o[0] for p, o in zip(plain, ours, strict=True)]
            # The stricter of the two: training samples/s alone, or the whole epoch.
            ratios.append(min(statistics.median(epoch_ratio), statistics.median(train_ratio)))
            rows.append(
                (
                    f"{threads} thread{'s' if threads > 1 else ''}, BatchNorm {'on' if norm else 'off'}",
                    f"{steps * 64 / statistics.median(p[0] for p in plain):,.0f}",
                    f"{steps * 64 / statistics.median(o[0] for o in ours):,.0f}",
                    f"{statistics.median(sum(p) for p in plain):.2f}",
                    f"{statistics.median(sum(o) for o in ours):.2f}",
                    spread(train_ratio),
                    spread(epoch_ratio),
                )
            )
    print()
    table(
        rows,
        (
            "case",
            "plain samples/s",
            "hpo samples/s",
            "plain epoch s",
            "hpo epoch s",
            "train ratio",
            "epoch ratio",
        ),
    )
    print(
        f"\nmedian of {repeats} A/B pairs (range); floor {FLOOR}, goal {GOAL}; ratio = the worst case of both columns"
    )
    ok = verdict(NAME, min(ratios), GOAL, higher_is_better=True)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
