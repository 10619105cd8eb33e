"""The run path's repairs and refusals on real experiment folders (a real local Ray, a fake
trainable that writes checkpoints)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tune.core.errors import InputError, InUseError
from tune.run.aside import move_aside, put_back, replaceable
from tune.run.experiment import is_finished, repair_checkpoints, run_experiment
from tune.run.process import RunOptions, stop_ray
from tune.run.sweep import plan, run_sweep
from tune.space.spec import load_spec
from tune.store import records
from tune.store.checkpoints import CHECKPOINT_FILE, DIGEST_KEY, REPLAY_MARKER, seal
from tune.store.records import RecordError
from tune.store.trials import read_history

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

    # A snapshot a full disk cut short is put back before anything reads it: resume asks
    # is_finished first (CI: "experiment_state-...json: cannot be read", the whole copy there).
    (state,) = folder.glob("experiment_state-*.json")
    state.write_text("")
    is_finished(folder)  # the copy is one snapshot older: finished or not, it is read whole
    assert state.stat().st_size > 0


def failing_once(marker: Path) -> Any:
    """Fake trainable: a sealed checkpoint an epoch holding the epoch's number (what resume
    checks), failing at epoch 2 until `marker` exists."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune as ray_tune

        start, checkpoint = 1, ray_tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                start = int((Path(folder) / CHECKPOINT_FILE).read_text()) + 1
        for epoch in range(start, config["epochs"] + 1):
            if epoch == 2 and not marker.exists():
                raise RuntimeError("fails once at epoch 2")
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / CHECKPOINT_FILE).write_text(str(epoch))
                result = {"epoch": epoch, "val_accuracy": 0.5, DIGEST_KEY: seal(Path(folder))}
                ray_tune.report(result, checkpoint=ray_tune.Checkpoint.from_directory(folder))

    return trainable


@pytest.mark.integration
def test_a_line_a_full_disk_cut_short_costs_no_epoch_on_resume(
    tmp_path: Path, ray_session: None
) -> None:
    """A full disk cut result.json's last line short (the epoch's line, never whole) while
    Ray's state still names the checkpoint before it: resume runs that epoch again, and its
    new line starts a line of its own instead of being glued to the cut one and lost (CI:
    epochs 1, 2, 3, 5, 6)."""
    space = tmp_path / "ckpt.yaml"
    space.write_text(SPACE + "max_failures: 0\n")
    folder = tmp_path / "runs" / "ckpt"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    marker = tmp_path / "fixed"
    options = RunOptions(progress_interval=3600)
    spec = load_spec(space)
    first = run_sweep(spec, folder, uri, options, failing_once(marker))
    assert first.errors == 1
    (trial,) = [p for p in folder.iterdir() if (p / "result.json").is_file()]
    assert [h["epoch"] for h in read_history(trial)] == [1]
    with open(trial / "result.json", "a") as f:
        f.write('{"epoch": 2, "val_acc')  # where the disk filled up

    marker.touch()
    stop_ray()  # resume is a new process: a new Ray session, its staging folder empty
    record = records.load(folder)
    again = run_experiment(record, folder, plan(spec, options, failing_once(marker)), options)
    assert again.errors == 0
    assert [h["epoch"] for h in read_history(trial)] == [1, 2, 3]


def new_experiment(tmp_path: Path, name: str = "x") -> Path:
    folder = tmp_path / "runs" / name
    records.save(folder, records.new_record(load_spec_text(tmp_path), "sqlite:////nowhere.db"))
    (folder / "trial_1").mkdir()
    (folder / "trial_1" / "result.json").write_text("{}")
    return folder


def test_only_an_experiment_with_readable_records_is_replaceable(tmp_path: Path) -> None:
    mine = tmp_path / "runs" / "thesis"
    mine.mkdir(parents=True)
    (mine / "chapter1.tex").write_text("mine")
    with pytest.raises(InputError) as e:
        replaceable(mine)
    assert e.value.lines() == [
        f"{mine}: exists but holds no hpo experiment; hpo deletes only what it made "
        "(move it away yourself, or use --name NEW)"
    ]
    folder = new_experiment(tmp_path)
    (records.confirm_dir(folder)).mkdir()
    (records.confirm_dir(folder) / records.RECORD_FILE).write_text("[")
    with pytest.raises(RecordError):
        replaceable(folder)
    assert records.exists(folder) and (folder / "confirm").is_dir()


def test_moved_aside_and_put_back(tmp_path: Path) -> None:
    folder = new_experiment(tmp_path)
    aside = move_aside(folder, replaceable(folder))
    assert not folder.exists() and aside.trash.parent == folder.parent / ".trash"
    assert (aside.trash / "trial_1" / "result.json").is_file()
    records.save(folder, records.new_record(load_spec_text(tmp_path), "y"))  # a failed start
    put_back(aside)
    assert (folder / "trial_1" / "result.json").is_file() and not aside.trash.exists()
    assert records.load(folder).tracking_uri == "sqlite:////nowhere.db"


@pytest.mark.integration
def test_a_failed_start_puts_the_old_experiment_back(
    tmp_path: Path, ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--overwrite moved the old experiment aside; the new one cannot reach its tracking
    server, and the old one is back, untouched."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    folder = new_experiment(tmp_path, "ckpt")
    aside = move_aside(folder, replaceable(folder))
    spec = load_spec_text(tmp_path)
    with pytest.raises(Exception, match=r"127\.0\.0\.1"):
        run_sweep(spec, folder, "http://127.0.0.1:9", RunOptions(), replacing=aside)
    assert (folder / "trial_1" / "result.json").is_file()
    assert records.load(folder).tracking_uri == "sqlite:////nowhere.db"
    assert list((tmp_path / "runs" / ".trash").iterdir()) == []


def test_a_refusal_under_the_lock_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "x"
    with pytest.raises(ValueError), records.lock(folder):
        raise ValueError("refused")
    assert not (tmp_path / "runs").exists()


def test_a_second_writer_is_refused_and_a_dead_one_blocks_nobody(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "x"
    with records.lock(folder), pytest.raises(InUseError) as e, records.lock(folder):
        pass
    assert str(e.value) == (
        f"experiment x is in use by process {os.getpid()} on {socket.gethostname()}"
    )
    # A holder killed with SIGKILL: the kernel released its lock.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(InUseError), records.lock(folder):
        pass
    holder.kill()
    holder.wait()
    with records.lock(folder):
        pass
    # A confirm run shares its sweep's lock.
    records.save(folder, records.new_record(load_spec_text(tmp_path), "y"))
    with records.lock(folder), pytest.raises(InUseError), records.lock(folder / "confirm"):
        pass


HOLD = """
import sys, time
from pathlib import Path
from tune.store import records
with records.lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def load_spec_text(tmp_path: Path) -> Any:
    path = tmp_path / "x.yaml"
    path.write_text(SPACE)
    return load_spec(path)
