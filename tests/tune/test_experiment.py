"""The run path's repairs and refusals on real experiment folders (a real local Ray, a fake
trainable that writes checkpoints)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from tune import record as records
from tune.experiment import RunOptions, discard_experiment, is_finished, repair_checkpoints
from tune.record import RecordError
from tune.spec import load_spec
from tune.sweep import run_sweep
from tune.trainable import REPLAY_MARKER

SPACE = "name: ckpt\nsearch: {epochs: 3}\nscheduler: none\n"


def checkpointing_trainable(config: dict[str, Any]) -> None:
    """Fake trainable: a checkpoint a epoch holding the epoch's number."""
    from ray import tune as ray_tune

    for epoch in range(1, config["epochs"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "epoch.txt").write_text(str(epoch))
            checkpoint = ray_tune.Checkpoint.from_directory(folder)
            ray_tune.report(
                {"epoch": epoch, "val_accuracy": 0.5 + epoch / 100}, checkpoint=checkpoint
            )


@pytest.mark.integration
def test_a_lost_checkpoint_is_replaced_by_the_newest_and_marked_for_replay(
    tmp_path: Path, ray_session: None
) -> None:
    """Ray deletes a trial's older checkpoint when it registers a newer one, and saves its
    state a moment later: a driver killed in between leaves the state pointing at a folder
    that is gone. Resume puts the newest checkpoint in its place, marked for replay."""
    space = tmp_path / "ckpt.yaml"
    space.write_text(SPACE)
    folder = tmp_path / "runs" / "ckpt"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(
        load_spec(space), folder, uri, RunOptions(progress_interval=3600), checkpointing_trainable
    )
    assert result.errors == 0 and is_finished(folder)
    (trial_dir,) = [p for p in folder.iterdir() if p.is_dir() and list(p.glob("checkpoint_*"))]
    latest = max(trial_dir.glob("checkpoint_*"))
    assert (latest / "epoch.txt").read_text() == "3"
    assert repair_checkpoints(folder) == []  # nothing lost: nothing to do
    newer = latest.with_name("checkpoint_999999")
    latest.rename(newer)  # the state still names `latest`, which is now gone

    assert repair_checkpoints(folder) == [result.rows[0].trial_id]
    assert (latest / "epoch.txt").read_text() == "3" and (latest / REPLAY_MARKER).is_file()
    assert not (newer / REPLAY_MARKER).exists()


def test_discard_refuses_an_unreadable_record_and_deletes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "x"
    records.save(folder, records.new_record(load_spec_text(tmp_path), "sqlite:////nowhere.db"))
    (records.confirm_dir(folder)).mkdir()
    (records.confirm_dir(folder) / records.RECORD_FILE).write_text("[")
    with pytest.raises(RecordError):
        discard_experiment(folder)
    assert records.exists(folder) and (folder / "confirm").is_dir()


def load_spec_text(tmp_path: Path) -> Any:
    path = tmp_path / "x.yaml"
    path.write_text(SPACE)
    return load_spec(path)
