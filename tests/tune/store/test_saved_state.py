"""Reading Ray's saved trials as plain JSON: a crafted state file cannot run code through
`hpo status` or `hpo report`."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from tests.conftest import NOWHERE, SEARCH_SPACES
from tune.cli import main
from tune.space.spec import load_spec
from tune.store import records, saved_state


class Evil:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def pickled(marker: Path) -> dict[str, str]:
    return {"_type": "CLOUDPICKLE_FALLBACK", "value": pickle.dumps(Evil(marker)).hex()}


def crafted_experiment(tmp_path: Path, marker: Path) -> Path:
    """An experiment folder whose Ray state hides pickles in every field Ray would unpickle."""
    folder = tmp_path / "runs" / "smoke"
    records.save(folder, records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), NOWHERE))
    trial_dir = folder / "train_trial_a_00000"
    trial_dir.mkdir()
    (trial_dir / "result.json").write_text(json.dumps({"epoch": 1, "val_accuracy": 0.5}) + "\n")
    state = {
        "trial_id": "a_00000", "status": "TERMINATED", "relative_logdir": trial_dir.name,
        "config": {"dropout": 0.1, "epochs": 2, "hidden": pickled(marker)},
        "storage": pickled(marker), "placement_group_factory": pickle.dumps(Evil(marker)).hex(),
    }  # fmt: skip
    metadata = {
        "last_result": {"epoch": 1, "val_accuracy": 0.5},
        "metric_analysis": {"val_accuracy": {"max": 0.5, "min": 0.5, "last": 0.5}},
        "error_filename": None, "checkpoint_manager": pickled(marker),
    }  # fmt: skip
    data = {"trial_data": [[json.dumps(state), json.dumps(metadata)]], "runner_data": {}}
    (folder / "experiment_state-2026-11-28_10-00-00.json").write_text(json.dumps(data))
    return folder


def test_status_and_report_never_unpickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "code-ran"
    folder = crafted_experiment(tmp_path, marker)
    (trial,) = saved_state.load(folder)
    assert (trial.trial_id, trial.status, trial.config) == (
        "a_00000", "TERMINATED", {"dropout": 0.1, "epochs": 2},
    )  # fmt: skip
    assert main(["status", str(folder)]) == 0
    assert "a_00000  STOPPED" in capsys.readouterr().out
    assert main(["report", str(folder)]) == 0  # not logged: the record's store is not here
    assert (folder / "report" / "report.md").is_file()
    assert not marker.exists()


def test_an_unreadable_state_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    with pytest.raises(saved_state.NoTrialsError) as e:
        saved_state.load(folder)
    assert e.value.lines()[0].startswith(f"{folder}: holds no trial state saved by Ray")
    (folder / "experiment_state-x.json").write_text('{"trial_data": [["{", "}"]]}')
    with pytest.raises(saved_state.NoTrialsError) as e:
        saved_state.load(folder)
    assert e.value.lines()[0].startswith(f"{folder / 'experiment_state-x.json'}: cannot be read")
