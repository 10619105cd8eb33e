"""What one epoch of each model shape costs, and a trial's peak memory: a few real training
steps and validation batches of the real trainer on the real data, built as a trial builds
them (tune/run/trial.py), with the trial's thread count. Run in the `hpo plan` process, or as a
Ray task on a cluster's node (plan.py); never imports Ray itself."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.data import RawData
from models.trainer import Trainer
from tune.run import trial as trial_module
from tune.run.trial import TrialSettings, build_trainer
from tune.store import checkpoints
from tune.store.checkpoints import CHECKPOINT_FILE

TIMED_S = 0.4  # seconds of training steps timed per shape (after one warm-up step), at most
QUICK_S = 0.05  # and in a first, rough pass (plan.py: _within_budget)
MAX_STEPS = 30  # and at most this many steps


@dataclass(frozen=True)
class Cost:
    """One model shape on this machine."""

    epoch_s: float  # training batches + validation + the checkpoint, one epoch
    step_s: float  # one training batch
    peak_mem_mb: float  # the process's peak resident memory while it trained (data included)


def measure(
    configs: list[dict[str, Any]], settings: TrialSettings, data: RawData, timed_s: float = TIMED_S
) -> list[Cost]:
    """Each config's cost (one config per shape), measured one after the other, each with
    about `timed_s` of training steps."""
    threads = torch.get_num_threads()
    try:
        # A first trainer in a process pays for the data's conversion and torch's first
        # kernels (measured: the first shape 1.3-1.6x slower than when timed second).
        build_trainer(configs[0], settings, data).train_epoch(steps=2)
        return [_measure(config, settings, data, timed_s) for config in configs]
    finally:
        torch.set_num_threads(threads)  # the trainer set the trial's count in this process
        trial_module._DATA.clear()  # the worker's copy of the data, made to measure


def _measure(
    config: dict[str, Any], settings: TrialSettings, data: RawData, timed_s: float
) -> Cost:
    _reset_peak()
    trainer = build_trainer(config, settings, data)
    trainer.train_epoch(steps=1)  # the first step allocates and picks kernels
    probe = trainer.train_epoch(steps=1)[2]
    steps = max(1, min(MAX_STEPS, trainer.steps_per_epoch(), math.ceil(timed_s / max(probe, 1e-4))))
    _, _, seconds = trainer.train_epoch(steps=steps)
    step_s = seconds / steps
    eval_s = _eval_seconds(trainer)
    with tempfile.TemporaryDirectory(prefix="hpo-plan-") as folder:
        start = time.perf_counter()
        trainer.save(os.path.join(folder, CHECKPOINT_FILE))
        checkpoints.seal(Path(folder))
        save_s = time.perf_counter() - start
    epoch_s = step_s * trainer.steps_per_epoch() + eval_s + save_s
    return Cost(epoch_s, step_s, _peak_mb())


def _eval_seconds(trainer: Trainer) -> float:
    """One epoch's validation: a few batches timed, scaled to the batches an epoch evaluates."""
    split, size = trainer.val_data, trainer.cfg.eval_batch_size
    batches = math.ceil(len(split) / size)
    if trainer.cfg.eval_steps is not None:
        batches = min(batches, trainer.cfg.eval_steps)
    timed = min(batches, 3)
    trainer.evaluate(split, 1)  # warm-up
    _, _, seconds = trainer.evaluate(split, timed)
    return seconds / timed * batches


def _reset_peak() -> None:
    """Start the peak resident memory afresh (Linux: /proc/self/clear_refs, value 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    """The peak resident memory since the last reset (VmHWM); else the process's whole peak."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
