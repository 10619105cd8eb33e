"""The adapter between Ray Tune and the shared trainer: the only code that calls `tune.report`.

A trial's config holds its resolved hyperparameters; the sweep-wide settings (data, steps, seed,
threads) travel beside it in TrialSettings. The trainer itself knows nothing of Ray.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune as ray_tune

from models.config import EpochMetrics
from models.data import RawData
from models.device import describe
from models.trainer import Trainer
from tune.run.trial import SEED_KEY, Fault, TrialSettings, build_trainer, held_out_test_set
from tune.store import checkpoints
from tune.store.checkpoints import CHECKPOINT_FILE, DIGEST_KEY

FAULT_MESSAGE = "injected failure before epoch"
# TrialSettings, Fault and SEED_KEY live in tune/run/trial.py (no Ray there, for `hpo plan`);
# named here too, because Ray pickles TrialSettings with an experiment and folders saved before
# they moved name them here.
__all__ = ["FAULT_MESSAGE", "SEED_KEY", "Fault", "TrialSettings", "train_trial"]


def train_trial(config: dict[str, Any], settings: TrialSettings, data: RawData) -> None:
    """Run one trial epoch by epoch, reporting metrics and a complete checkpoint after each.
    When ASHA stops the trial, Ray ends this function at its next `tune.report`; a restarted or
    resumed trial continues from its last checkpoint. A config with a `seed` (set by `hpo
    confirm`, which retrains one configuration with several seeds) overrides the sweep's."""
    trainer = build_trainer(config, settings, data)
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
