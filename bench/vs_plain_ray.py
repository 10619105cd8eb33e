"""hpo against the Ray Tune script a competent user writes in an afternoon, on the seed study
(search_spaces/fashion_seed.yaml: 24 configurations, up to 12 epochs of 100 batches of 64, ASHA
with grace 1 and reduction factor 3, MLflow in a new SQLite file), one after the other here.

The script (`plain_sweep` below) is what Ray's docs teach: a function trainable with its own
loop over the same CNN, the data read from the same IDX files in each trial, `tune.report` with
a checkpoint every epoch, `ASHAScheduler`, Ray's stock `MLflowLoggerCallback`, two retries of
a failed trial (hpo's default), Ray's defaults otherwise. Compared: wall time of each whole
command, best validation accuracy, trial-epochs, MLflow runs. `--ablate` adds runs of the script with one of hpo's defaults switched on at a time,
to say which default buys how much. Run alone on the machine:

    .venv/bin/python bench/vs_plain_ray.py [--repeats 1] [--ablate] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, experiment_in, header, hpo, outcome, spread, table, verdict

NAME = "vs_plain_ray"
TARGET = 0.65  # hpo's wall time / the script's
SPACE = ROOT / "search_spaces" / "fashion_seed.yaml"
# --quick: two configurations, one epoch of 5 batches, on both sides (a check, not a figure).
QUICK_SPACE = """\
name: quick
dataset: {train_steps: 5, eval_steps: null}
search: {dropout: {grid: [0.0, 0.5]}, normalization: false, conv_layers: 2, epochs: 1}
search_algorithm: grid
scheduler: {asha: {grace_period: 1, reduction_factor: 3}}
max_concurrent_trials: 1  # one trial process: a check needs no more
"""
# With --ablate, the script again with hpo's defaults switched on one more at a time.
ABLATIONS: dict[str, dict[str, bool]] = {
    "plain": {},
    "+ reuse_actors": {"reuse_actors": True},
    "+ data once per worker": {"reuse_actors": True, "data_once": True},
    "+ channels_last, eval in 128s": {"reuse_actors": True, "data_once": True, "fast": True},
}


# -- the hand-written script ----------------------------------------------------------------------


def read_idx(path: Path) -> Any:
    import numpy as np

    with gzip.open(path) as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(folder: str) -> tuple[Any, ...]:
    """The training set as normalized tensors, split 54,000 / 6,000 with a fixed seed."""
    import torch

    x = torch.from_numpy(read_idx(Path(folder) / "train-images-idx3-ubyte.gz").copy())
    y = torch.from_numpy(read_idx(Path(folder) / "train-labels-idx1-ubyte.gz").astype("int64"))
    x = ((x.float() / 255 - 0.2860) / 0.3530).unsqueeze(1)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    val, train = order[:6000], order[6000:]
    return x[train], y[train], x[val], y[val]


def build(config: dict[str, Any]) -> Any:
    from torch import nn

    layers: list[nn.Module] = []
    channels, side = 1, 28
    for _ in range(config["conv_layers"]):
        layers += [nn.Conv2d(channels, 32, 3, padding=1, bias=not config["normalization"])]
        layers += [nn.BatchNorm2d(32)] if config["normalization"] else []
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        channels, side = 32, side // 2
    layers += [nn.Flatten(), nn.Linear(32 * side * side, 128, bias=not config["normalization"])]
    layers += [nn.BatchNorm1d(128)] if config["normalization"] else []
    layers += [nn.ReLU(), nn.Dropout(config["dropout"]), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


_CACHE: dict[str, tuple[Any, ...]] = {}


def trainable(config: dict[str, Any]) -> None:
    import os
    import tempfile

    import torch
    import torch.nn.functional as F
    from ray import tune

    if config.get("data_once"):  # ablation: converted once per worker, like hpo
        if "d" not in _CACHE:
            _CACHE["d"] = load(config["data_dir"])
        x, y, xv, yv = _CACHE["d"]
    else:
        x, y, xv, yv = load(config["data_dir"])
    torch.manual_seed(0)
    model = build(config)
    eval_batch = 1000  # as in PyTorch's MNIST example
    if config.get("fast"):  # ablation: the layout and evaluation chunks of hpo's trainer
        model = model.to(memory_format=torch.channels_last)
        eval_batch = 128
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            state = torch.load(os.path.join(d, "ckpt.pt"), weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["epoch"]
    for epoch in range(start, config["epochs"]):
        model.train()
        order = torch.randperm(len(y))
        for step in range(config["steps"]):
            idx = order[step * 64 : (step + 1) * 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct, total_loss = 0, 0.0
        with torch.no_grad():
            for b in range(0, len(yv), eval_batch):
                out = model(xv[b : b + eval_batch])
                total_loss += float(F.cross_entropy(out, yv[b : b + eval_batch], reduction="sum"))
                correct += int((out.argmax(1) == yv[b : b + eval_batch]).sum())
        with tempfile.TemporaryDirectory() as d:
            torch.save(
                {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1},
                os.path.join(d, "ckpt.pt"),
            )
            tune.report(
                {"val_accuracy": correct / len(yv), "val_loss": total_loss / len(yv)},
                checkpoint=tune.Checkpoint.from_directory(d),
            )


def plain_sweep(work: Path, switches: dict[str, bool], epochs: int, steps: int) -> None:
    """The afternoon script: a grid over the study's three knobs, ASHA, MLflow's callback."""
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.schedulers import ASHAScheduler

    from models.dataset_files import find_data_dir

    ray.init()
    quick = steps < 100  # --quick: QUICK_SPACE's two configurations
    space = {
        "dropout": tune.grid_search([0.0, 0.5] if quick else [0.0, 0.2, 0.5, 0.8]),
        "normalization": tune.grid_search([False] if quick else [False, True]),
        "conv_layers": tune.grid_search([2] if quick else [2, 3, 4]),
        "epochs": epochs,
        "steps": steps,
        "data_dir": str(find_data_dir("fashion_mnist")),
        **switches,
    }
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            scheduler=ASHAScheduler(max_t=epochs, grace_period=1, reduction_factor=3),
            reuse_actors=bool(switches.get("reuse_actors", False)),
        ),
        run_config=tune.RunConfig(
            name="plain",
            storage_path=str(work / "runs"),
            # Retries a trial whose worker was lost, as hpo does (max_failures: 2), so that a
            # busy machine does not end the comparison with a trial that never reported.
            failure_config=tune.FailureConfig(max_failures=2),
            callbacks=[
                MLflowLoggerCallback(
                    tracking_uri=f"sqlite:///{work / 'mlflow.db'}", experiment_name="plain"
                )
            ],
        ),
    )
    tuner.fit()


# -- measuring both -------------------------------------------------------------------------------


def count_runs(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(
            con.execute("select count(*) from runs where lifecycle_stage='active'").fetchone()[0]
        )


def run_hpo(work: Path, quick: bool) -> dict[str, float]:
    space = SPACE
    if quick:
        space = work / "quick.yaml"
        space.write_text(QUICK_SPACE)
    tracking = f"sqlite:///{work}/mlflow.db"
    wall = hpo(
        "sweep",
        str(space),
        "--name",
        "hpo",
        "--storage",
        str(work / "runs"),
        "--tracking-uri",
        tracking,
    )
    _, epochs, best = outcome(experiment_in(work / "runs"))
    # hpo's parent run holds the trials' runs; the script's callback makes only trial runs.
    return {"wall": wall, "best": best, "epochs": epochs, "runs": count_runs(work / "mlflow.db")}


def plain_env() -> dict[str, str]:
    """This process's environment without the variables hpo sets for Ray and MLflow: the
    script runs as a user's own would. (A process that ran hpo's CLI in-process, as a test
    does, holds TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1, which takes the script's result.json.)"""
    from tune.run.process import ray_environment

    ours = ray_environment(verbose=False).keys() | ray_environment(verbose=True).keys()
    return {k: v for k, v in os.environ.items() if k not in ours}


def run_plain(work: Path, variant: str, quick: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--plain", str(work), "--variant", variant]
    command += ["--quick"] if quick else []
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=plain_env())
    wall = time.time() - start
    _, epochs, best = outcome(experiment_in(work / "runs")) if done.returncode == 0 else (0, 0, 0)
    if epochs == 0:  # the script failed, or every trial did: say why, not a division by zero
        errors = [p.read_text()[-1500:] for p in (work / "runs").glob("*/*/error.txt")]
        raise SystemExit(
            f"the Ray Tune script ({variant}) exited {done.returncode} with no epoch reported:\n"
            + (errors[0] if errors else done.stderr[-2000:])
        )
    return {"wall": wall, "best": best, "epochs": epochs, "runs": count_runs(work / "mlflow.db")}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ablate", action="store_true", help="also the script with each default")
    parser.add_argument("--quick", action="store_true", help="2 configurations, 1 epoch: a check")
    parser.add_argument("--plain", help=argparse.SUPPRESS)  # the child that runs the script
    parser.add_argument("--variant", default="plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = 1 if args.quick else 12
    if args.plain:
        plain_sweep(Path(args.plain), ABLATIONS[args.variant], epochs, 5 if args.quick else 100)
        return 0
    header(NAME, f"the seed study, 24 configurations x up to {epochs} epochs, ASHA")
    variants = list(ABLATIONS) if args.ablate else ["plain"]
    results: dict[str, list[dict[str, float]]] = {"hpo": [], **{v: [] for v in variants}}
    for _ in range(args.repeats):
        for name in results:  # one after the other, alternating over repeats
            with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
                run = run_hpo(Path(work), args.quick) if name == "hpo" else None
                results[name].append(run or run_plain(Path(work), name, args.quick))
    rows = []
    for name, runs in results.items():
        rows.append(
            (
                "hpo sweep"
                if name == "hpo"
                else f"Ray Tune script{'' if name == 'plain' else ' ' + name}",
                spread([r["wall"] for r in runs], ".0f"),
                spread([r["best"] for r in runs], ".4f"),
                spread([r["epochs"] for r in runs], ".0f"),
                spread([r["wall"] / r["epochs"] for r in runs]),
                spread([r["runs"] for r in runs], ".0f"),
            )
        )
    print()
    table(
        rows,
        ("", "wall s", "best val_accuracy", "trial-epochs", "wall s / trial-epoch", "MLflow runs"),
    )
    print(
        "\nASHA's decisions depend on when parallel trials reach a rung, so the trial-epochs"
        " differ from run to run; wall s / trial-epoch compares the cost of an epoch."
    )
    ours = statistics.median(r["wall"] for r in results["hpo"])
    theirs = statistics.median(r["wall"] for r in results["plain"])
    gap = statistics.median(r["best"] for r in results["plain"]) - statistics.median(
        r["best"] for r in results["hpo"]
    )
    print(f"\nbest: hpo {'-' if gap > 0 else '+'}{abs(gap) * 100:.2f} points against the script")
    print(f"target: wall time <= {TARGET}x the script's, best within 0.5 points")
    ok = verdict(NAME, ours / theirs, TARGET, higher_is_better=False, also=gap <= 0.005)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
