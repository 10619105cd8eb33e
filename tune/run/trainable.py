"""The adapter between Ray Tune and the shared trainer: the only code that calls `tune.report`.

A trial's config holds its resolved hyperparameters; the sweep-wide settings (data, steps, seed,
threads) travel beside it in TrialSettings. The trainer itself knows nothing of Ray.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune as ray_tune

from models.config import EpochMetrics
from models.data import DataConfig, Datasets, RawData, Split, datasets_from, test_split_from
from models.device import describe, limit_memory, pick_device
from models.factory import BUILTIN_MODEL, Param, build_model, parse_ref
from models.trainer import Trainer
from tune.space.hyperparams import model_kwargs, train_config
from tune.store import checkpoints
from tune.store.checkpoints import CHECKPOINT_FILE, DIGEST_KEY

SEED_KEY = "seed"  # in a confirm trial's config: the trainer's seed for this repeat
FAULT_MESSAGE = "injected failure before epoch"


@dataclass(frozen=True)
class Fault:
    """Tests only: each trial raises once, just before it trains `epoch`, leaving a marker file
    named after the trial in `marker_dir` so that its retry goes through. The tests use it to
    check that a failed trial resumes from its last checkpoint."""

    epoch: int
    marker_dir: str


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one sweep shares."""

    data: DataConfig
    train_steps: int | None
    eval_steps: int | None
    seed: int
    threads: int  # the CPUs a trial owns, as torch threads
    device: str  # "cpu" for CPU-only trials; "auto" = the GPU Ray gave the trial
    gpu_share: float = 0.0  # resources.gpu: the part of its GPU a trial may fill
    # `hpo confirm`: after the last epoch, evaluate once on the held-out test set.
    test_at_end: bool = False
    fault: Fault | None = None  # tests only; never set by the CLI
    # The model factory ("module:function"), its hyperparameters (() = the built-in CNN's) and
    # the folder its module is imported from first (on a cluster it comes in the runtime_env).
    model: str = BUILTIN_MODEL
    model_params: tuple[Param, ...] = ()
    model_dir: str | None = None


# The data reaches trials through Ray's object store, not the file system: the driver reads the
# files once (read_raw) and `tune.with_parameters` puts them there, so a node that has no copy
# of the dataset, or of this project, still trains (docs/architecture.md, "Data"). A worker
# process turns them into tensors once: with actor reuse, its later trials skip that and the
# memory of a second copy.
_DATA: dict[tuple[DataConfig, str], Datasets] = {}
_TEST: dict[DataConfig, Split] = {}


def datasets(cfg: DataConfig, raw: RawData, device: torch.device) -> Datasets:
    """The worker's one copy, on the trial's device: on a GPU it stays there for the next trial
    the worker runs, instead of being copied again for each."""
    key = (cfg, str(device))
    if key not in _DATA:
        _DATA.clear()  # a worker serves one sweep; never hold two datasets
        made = datasets_from(raw, cfg)
        _DATA[key] = Datasets(made.train.to(device), made.validation.to(device))
    return _DATA[key]


def held_out_test_set(cfg: DataConfig, raw: RawData) -> Split:
    """The held-out test set, used only by `hpo confirm` trials (and made once per worker)."""
    if cfg not in _TEST:
        _TEST.clear()
        _TEST[cfg] = test_split_from(raw, cfg)
    return _TEST[cfg]


def train_trial(config: dict[str, Any], settings: TrialSettings, data: RawData) -> None:
    """Run one trial epoch by epoch, reporting metrics and a complete checkpoint after each.
    When ASHA stops the trial, Ray ends this function at its next `tune.report`; a restarted or
    resumed trial continues from its last checkpoint. A config with a `seed` (set by `hpo
    confirm`, which retrains one configuration with several seeds) overrides the sweep's."""
    seed = int(config.get(SEED_KEY, settings.seed))
    device = pick_device(settings.device)
    limit_memory(device, settings.gpu_share)
    model = functools.partial(
        build_model,
        parse_ref(settings.model),
        settings.model_dir,
        data.input_shape,
        data.num_classes,
        model_kwargs(config, None if settings.model == BUILTIN_MODEL else settings.model_params),
    )
    trainer = Trainer(
        model,
        train_config(
            config,
            train_steps=settings.train_steps,
            eval_steps=settings.eval_steps,
            seed=seed,
            threads=settings.threads,
            device=settings.device,
        ),
        datasets(settings.data, data, device),
    )
    replay_after = None
    restored = ray_tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            checkpoints.check(Path(folder))
            trainer.load(os.path.join(folder, CHECKPOINT_FILE))
            replay_after = checkpoints.replay_after(Path(folder))
    name = describe(trainer.device)
    if replay_after is not None and trainer.history:
        # A checkpoint that resume put in place of one Ray had lost, or whose epoch never
        # reached result.json (put_back_lost, mark_unreported in tune/store/checkpoints.py):
        # report the epochs result.json lacks now, before going on.
        _replay(trainer, replay_after, name, _test(trainer, settings, data))
    while trainer.epoch < trainer.cfg.epochs:
        if settings.fault is not None:
            _injected_fault(settings.fault, trainer.epoch + 1)
        metrics = trainer.run_epoch()
        _report(trainer, metrics, name, _test(trainer, settings, data))


def _test(trainer: Trainer, settings: TrialSettings, data: RawData) -> dict[str, float]:
    """Test loss and accuracy of the final model, once, when the trial is a confirm run."""
    if not settings.test_at_end or trainer.epoch < trainer.cfg.epochs:
        return {}
    loss, accuracy = trainer.test(held_out_test_set(settings.data, data))
    return {"test_loss": loss, "test_accuracy": accuracy}


def _report(trainer: Trainer, metrics: EpochMetrics, device: str, extra: dict[str, float]) -> None:
    """The epoch's metrics and a complete checkpoint, to Tune; Ray copies the folder into the
    trial's storage before this returns."""
    result = _result(metrics, device, extra)
    with tempfile.TemporaryDirectory() as folder:
        trainer.save(os.path.join(folder, CHECKPOINT_FILE))
        result[DIGEST_KEY] = checkpoints.seal(Path(folder))
        ray_tune.report(result, checkpoint=ray_tune.Checkpoint.from_directory(folder))


def _replay(trainer: Trainer, after: int, device: str, extra: dict[str, float]) -> None:
    """Report again, from the checkpoint's history, the epochs after `after`: those before
    the checkpoint's own without a checkpoint (the state saved is the last epoch's), then its
    own as usual (at least that one: Ray registers the checkpoint again)."""
    for metrics in [m for m in trainer.history if m.epoch > after][:-1]:
        ray_tune.report(_result(metrics, device, {}))
    _report(trainer, trainer.history[-1], device, extra)


def _result(metrics: EpochMetrics, device: str, extra: dict[str, float]) -> dict[str, Any]:
    # reported_at: Ray's own `timestamp` has whole seconds; bench/sweep_overhead.py needs finer.
    return {**metrics.as_dict(), **extra, "device": device, "reported_at": time.time()}


def _injected_fault(fault: Fault, epoch: int) -> None:
    """Raise once per trial before `fault.epoch` (tests only)."""
    marker = Path(fault.marker_dir) / ray_tune.get_context().get_trial_id()
    if epoch == fault.epoch and not marker.exists():
        marker.touch()
        raise RuntimeError(f"{FAULT_MESSAGE} {epoch}")
