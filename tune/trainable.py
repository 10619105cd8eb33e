"""The adapter between Ray Tune and the shared trainer: the only code that calls `tune.report`.

A trial's config holds its resolved hyperparameters; the sweep-wide settings (data, steps, seed,
threads) travel beside it in TrialSettings. The trainer itself knows nothing of Ray.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

from ray import tune

from models.data import DataConfig, Datasets, load_datasets
from models.device import describe
from models.trainer import Trainer
from tune.hyperparams import model_config, train_config

CHECKPOINT_FILE = "trainer.pt"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one sweep shares."""

    data: DataConfig
    train_steps: int | None
    eval_steps: int | None
    seed: int
    threads: int  # the CPUs a trial owns, as torch threads
    device: str  # "cpu" for CPU-only trials; "auto" = the GPU Ray gave the trial


# One copy of the data per worker process: with actor reuse, later trials on the same worker
# skip the ~1 s of parsing and the memory of a second copy.
_DATA: dict[DataConfig, Datasets] = {}


def datasets(cfg: DataConfig) -> Datasets:
    if cfg not in _DATA:
        _DATA.clear()  # a worker serves one sweep; never hold two datasets
        _DATA[cfg] = load_datasets(cfg)
    return _DATA[cfg]


def train_trial(config: dict[str, Any], settings: TrialSettings) -> None:
    """Run one trial epoch by epoch, reporting metrics and a complete checkpoint after each.
    When ASHA stops the trial, Ray ends this function at its next `tune.report`; a restarted or
    resumed trial continues from its last checkpoint."""
    trainer = Trainer(
        model_config(config),
        train_config(
            config,
            train_steps=settings.train_steps,
            eval_steps=settings.eval_steps,
            seed=settings.seed,
            threads=settings.threads,
            device=settings.device,
        ),
        datasets(settings.data),
    )
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            trainer.load(os.path.join(folder, CHECKPOINT_FILE))
    device = describe(trainer.device)
    for metrics in trainer.fit():
        result: dict[str, Any] = {**metrics.as_dict(), "device": device}
        with tempfile.TemporaryDirectory() as folder:
            trainer.save(os.path.join(folder, CHECKPOINT_FILE))
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
