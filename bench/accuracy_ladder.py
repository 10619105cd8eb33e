"""Which change bought how much: the seed study's confirmed winner, trained as the seed study
trained it, then one change at a time up to the configuration bench/best_accuracy.py recommended.
Every rung trains with the seeds `hpo confirm` uses (1..S) on the same train/validation split,
one trial per CPU as in a sweep, and is tested once on the held-out test set. The rungs are
cumulative: each gain is measured on top of the ones below it.

The top rung is the recommended configuration itself, which best_accuracy's `hpo confirm` already
trained with these seeds: its numbers are taken from bench/results/best_accuracy-optuna.json
(--retrain-top trains it here too). The verdict is the smallest gain of any rung, in points:
>= 0 says every change search_spaces/fashion_best.yaml fixes paid for itself. Run alone on the
machine, after bench/best_accuracy.py (15-35 minutes here, with the top rung retrained or not):

    .venv/bin/python bench/accuracy_ladder.py [--seeds 3] [--retrain-top] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import yaml

from harness import ROOT, header, table, verdict

NAME = "accuracy_ladder"
TARGET = 0.0  # the smallest gain of any rung over the one below, in points
SPACE = ROOT / "search_spaces" / "fashion_best.yaml"
RESULT = ROOT / "bench" / "results" / "best_accuracy-optuna.json"

# The seed study's winner, confirmed by bench/asha_vs_grid.py, trained as
# search_spaces/fashion_seed.yaml trains it: 12 epochs of 100 batches of 64, constant lr.
SEED_WINNER: dict[str, Any] = {
    "conv_layers": 2,
    "filters": 32,
    "units": 128,
    "dropout": 0.0,
    "normalization": True,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "augment": False,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "batch_size": 64,
    "epochs": 12,
    "train_steps": 100,
}


def saved_result(quick: bool) -> dict[str, Any] | None:
    """best_accuracy's saved outcome; None before any run, which only --quick accepts."""
    if RESULT.exists():
        return dict(json.loads(RESULT.read_text()))
    if quick:
        return None
    raise SystemExit(f"{RESULT}: missing; run bench/best_accuracy.py first")


def recommended(saved: dict[str, Any] | None) -> dict[str, Any]:
    """fashion_best.yaml's fixed values with the searched ones best_accuracy's run recommended
    (before any run: each searched key's first choice, the middle of each range)."""
    search = yaml.safe_load(SPACE.read_text())["search"]
    config = {k: v for k, v in search.items() if not isinstance(v, dict)}
    if saved is not None:
        config.update(saved["winner"])
    else:
        for key, dist in search.items():
            if isinstance(dist, dict):
                (kind, values), *_ = dist.items()
                config[key] = values[0] if kind == "choice" else sum(values) / 2
    config["train_steps"] = None  # a full pass per epoch
    return config


def rungs(best: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Cumulative: each rung's config is the one below with one change."""
    steps = [
        ("the seed study's winner: 12 x 100 batches of 64", {}),
        (
            "+ full passes: 10 epochs x 54,000 images, batches of 128",
            {"epochs": best["epochs"], "train_steps": None, "batch_size": best["batch_size"]},
        ),
        (
            f"+ one-cycle learning rate, peak {best['lr']:.2g}",
            {"lr_schedule": best["lr_schedule"], "lr": best["lr"]},
        ),
        (
            f"+ the recommended model: {best['conv_layers']} blocks of {best['filters']}, "
            f"{best['units']} units, dropout {best['dropout']:.2f}",
            {k: best[k] for k in ("conv_layers", "filters", "units", "dropout")},
        ),
    ]
    if best.get("augment"):
        steps.append(("+ augmentation: crop (padding 2) and flip", {"augment": True}))
    out, config = [], dict(SEED_WINNER)
    for label, change in steps:
        config = {**config, **change}
        out.append((label, config))
    top = {k: config.get(k) for k in best}
    assert top == best, f"the top rung is not the recommended configuration: {top} != {best}"
    return out


_DATA: dict[str, Any] = {}


def _load_data() -> None:
    """Once per worker process: the splits every sweep uses, and the test set."""
    import torch

    from models.data import DataConfig, datasets_from, read_raw, test_split_from

    torch.set_num_threads(1)  # one trial per CPU, as Ray gives a 1-CPU trial
    raw = read_raw(DataConfig(), test=True)
    _DATA["splits"] = datasets_from(raw, DataConfig())
    _DATA["test"] = test_split_from(raw, DataConfig())


def train(config: dict[str, Any], seed: int, quick: bool) -> tuple[float, float, float]:
    """One rung with one seed, to its last epoch, then tested once: (val, test accuracy, s)."""
    from models.cnn import CNN
    from models.trainer import Trainer
    from tune.space.hyperparams import defaults, model_config, train_config

    hyper = {**defaults(), **{k: v for k, v in config.items() if k != "train_steps"}}
    steps = 5 if quick else config["train_steps"]
    if quick:
        hyper["epochs"] = 1
    start = time.perf_counter()
    trainer = Trainer(
        functools.partial(CNN, model_config(hyper)),
        train_config(hyper, train_steps=steps, eval_steps=2 if quick else None, seed=seed),
        _DATA["splits"],
    )
    last = list(trainer.fit())[-1]
    _, test_accuracy = trainer.test(_DATA["test"])
    return last.val_accuracy, test_accuracy, time.perf_counter() - start


def measure(
    ladder: list[tuple[str, dict[str, Any]]], seeds: list[int], quick: bool
) -> dict[tuple[int, int], tuple[float, float, float]]:
    """(rung, seed) -> (val accuracy, test accuracy, seconds), trained one per CPU."""
    with ProcessPoolExecutor(os.cpu_count(), initializer=_load_data) as pool:
        futures = {
            (n, seed): pool.submit(train, config, seed, quick)
            for n, (_, config) in enumerate(ladder)
            for seed in seeds
        }
        return {key: future.result() for key, future in futures.items()}


def confirmed_top(
    saved: dict[str, Any], top: int, seeds: list[int]
) -> dict[tuple[int, int], tuple[float, float, float]]:
    """The top rung as best_accuracy's confirm measured it with the same seeds (no seconds:
    confirm's trials shared the machine differently)."""
    val, test = saved["val_accuracy"], saved["test_accuracy"]
    if len(test) != len(seeds):
        raise SystemExit(f"{RESULT}: {len(test)} seeds, not {len(seeds)}; add --retrain-top")
    return {(top, s): (v, t, math.nan) for s, v, t in zip(seeds, val, test, strict=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per rung (hpo confirm's)")
    parser.add_argument("--retrain-top", action="store_true", help="train the top rung here too")
    parser.add_argument("--quick", action="store_true", help="1 epoch of 5 batches, 1 seed")
    args = parser.parse_args()
    seeds = list(range(1, 2 if args.quick else args.seeds + 1))
    saved = saved_result(args.quick)
    ladder = rungs(recommended(saved))
    retrain = args.retrain_top or args.quick
    header(NAME, f"{len(ladder)} rungs x {len(seeds)} seeds, one trial per CPU")
    done = measure(ladder if retrain else ladder[:-1], seeds, args.quick)
    if not retrain and saved is not None:  # (saved is None only in --quick)
        done |= confirmed_top(saved, len(ladder) - 1, seeds)
    found = [list(zip(*(done[n, seed] for seed in seeds), strict=True)) for n in range(len(ladder))]
    means = [statistics.mean(test) for _, test, _ in found]
    gains = [(b - a) * 100 for a, b in itertools.pairwise(means)]
    rows = []
    for n, ((label, _), (val, test, secs)) in enumerate(zip(ladder, found, strict=True)):
        gain = f"{gains[n - 1]:+.2f}" if n else ""
        spread = f"{min(test):.4f}-{max(test):.4f}"
        took = "(confirm's)" if math.isnan(secs[0]) else f"{statistics.mean(secs):.0f}"
        rows.append(
            (label, f"{statistics.mean(val):.4f}", f"{means[n]:.4f} ({spread})", gain, took)
        )
    print()
    table(rows, ("rung", "val_accuracy", "test_accuracy (range)", "gain, points", "s per seed"))
    print(f"\nseeds {seeds}; the top rung is the recommended configuration ({RESULT.name})")
    ok = verdict(NAME, min(gains), TARGET, higher_is_better=True)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
