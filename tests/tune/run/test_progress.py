"""The live progress table, fed with stand-ins for Ray's trial objects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tune.run.progress import ProgressCallback


def trial(tid: str, status: str, epoch: int, best: float | None, dropout: float) -> Any:
    """What the callback reads of a ray.tune Trial."""
    return SimpleNamespace(
        trial_id=tid,
        status=status,
        config={"dropout": dropout, "epochs": 3, "lr": 0.001},
        last_result={"epoch": epoch} if epoch else {},
        metric_analysis={} if best is None else {"val_accuracy": {"max": best}},
        run_metadata=SimpleNamespace(error_filename=None, num_failures=0),
    )


TRIALS = [
    trial("a_00000", "RUNNING", 2, 0.71, 0.0),
    trial("a_00001", "TERMINATED", 3, 0.83, 0.2),
    trial("a_00002", "TERMINATED", 1, 0.55, 0.5),
    trial("a_00003", "PENDING", 0, None, 0.8),
]


def test_prints_a_summary_and_the_running_and_best_trials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ProgressCallback("study", "val_accuracy", "max", total=6, interval=0).print(TRIALS)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(
        "study: 4/6 trials: 1 pending, 1 running, 1 stopped, 1 terminated "
        "| best val_accuracy 0.8300 (a_00001)"
    )
    assert lines[0].startswith("[0 min 00 s]")
    assert lines[1].split() == ["trial", "state", "epochs", "best", "val_accuracy", "dropout"]
    # Running trials first, then the best finished ones; never the pending one.
    assert [line.split()[0] for line in lines[2:]] == ["a_00000", "a_00001", "a_00002"]
    assert lines[3].split() == ["a_00001", "TERMINATED", "3/3", "0.8300", "0.2"]


def test_prints_only_when_something_changed(capsys: pytest.CaptureFixture[str]) -> None:
    progress = ProgressCallback("study", "val_accuracy", "max", total=4, interval=0)
    progress.on_step_end(1, TRIALS)
    progress.on_step_end(2, TRIALS)
    assert capsys.readouterr().out.count("study:") == 1
    progress.on_step_end(3, [*TRIALS[:3], trial("a_00003", "RUNNING", 1, 0.6, 0.8)])
    assert capsys.readouterr().out.count("study:") == 1
