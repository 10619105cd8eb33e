"""Which checkpoint a sweep's trial hands over, on a folder saved by an earlier version: Ray
kept two of trial 520d6_00003 (epoch 1, its best, and epoch 2, its last and worse)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO
from tune.deploy.winner import best_kept
from tune.store.trials import load_trials

SAVED = REPO / "tests" / "saved" / "interrupted_confirm"


def test_the_best_epoch_kept_is_handed_over_not_the_latest(tmp_path: Path) -> None:
    experiment = tmp_path / "interrupted_confirm"
    shutil.copytree(SAVED, experiment, symlinks=True)
    record, trials = load_trials(experiment)
    (trial,) = [t for t in trials if t.trial_id == "520d6_00003"]
    assert trial.values(record.metric)[0] > trial.values(record.metric)[1]
    epoch, checkpoint = best_kept(experiment, trial, record.metric, record.mode)
    assert (epoch, checkpoint.parent.name) == (1, "checkpoint_000000")
