"""Experiment folders that an earlier hpo made still resume. Ray pickles hpo's callbacks
(tracking, progress, ASHA's state, the snapshot backup) and the trainable into `tuner.pkl`
under their module paths, so moving a module must not strand a folder made before the move.

tests/saved/ holds two folders made with `hpo` of 2026-12-01 (before tune/ was grouped into
subpackages) on search_spaces/smoke.yaml, each stopped by SIGINT once its first epochs were in:
- interrupted_sweep: 4 trials, one of them running (1 of 2 epochs), ASHA's rungs saved;
- interrupted_confirm: that sweep finished, then `hpo confirm --top 2 --seeds 2` stopped with
  1 of its 4 trials created.
mlflow.db is the MLflow store both were logged to (as it stood after the confirm was stopped).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.tune.conftest import hpo, hpo_in_process
from tune.store.records import RECORD_FILE

pytestmark = pytest.mark.integration

SAVED = Path(__file__).parents[1] / "saved"


def copied(name: str, tmp_path: Path) -> Path:
    """A copy of a saved folder as runs/smoke, its records pointing at a copy of its MLflow store."""
    folder = tmp_path / "runs" / "smoke"
    shutil.copytree(SAVED / name, folder, symlinks=True)
    shutil.copy(SAVED / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for record in folder.rglob(RECORD_FILE):
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "tracking_uri": uri}))
    return folder


def states_of(folder: Path, tmp_path: Path) -> list[str]:
    done = hpo_in_process(["status", str(folder)], tmp_path)  # reads only: no process of its own
    assert done.returncode == 0, done.stderr
    return [line.split()[1] for line in done.stdout.splitlines()[2:]]


def test_an_interrupted_sweep_saved_before_the_move_resumes(tmp_path: Path) -> None:
    folder = copied("interrupted_sweep", tmp_path)
    assert "RUNNING" in states_of(folder, tmp_path)

    done = hpo(["resume", str(folder)], tmp_path, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(states_of(folder, tmp_path)) == ["STOPPED", "STOPPED", "TERMINATED", "TERMINATED"]


def test_an_interrupted_confirm_saved_before_the_move_resumes(tmp_path: Path) -> None:
    folder = copied("interrupted_confirm", tmp_path)
    assert states_of(folder / "confirm", tmp_path) == ["RUNNING"]

    done = hpo(["resume", str(folder / "confirm")], tmp_path, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert states_of(folder / "confirm", tmp_path) == ["TERMINATED"] * 4
    # The 3 trials created after the restore are in the copy, not where the folder was made
    # (tune/run/moved.py; before it they failed, or wrote there when that folder existed).
    assert len(list((folder / "confirm").glob("train_trial_*/result.json"))) == 4
