"""The driver-side MLflow writer on a real SQLite store: one run per trial, found again after
a resume, no epoch logged twice, and no run left RUNNING when a sweep is cut short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tune.tracking import (
    TRIAL_TAG,
    TrackingConfig,
    _Writer,
    delete_sweep_runs,
    ensure_store,
    find_parent_run,
    start_parent_run,
)


def setup(tmp_path: Path, db: Path | None = None) -> tuple[TrackingConfig, str]:
    db = db or tmp_path / "mlflow.db"
    cfg = TrackingConfig(f"sqlite:///{db}", "exp", str(tmp_path / "tb"))
    parent = start_parent_run(cfg, {"seed": 0}, {"hpo.experiment_dir": str(tmp_path)})
    return cfg, parent


def epoch(n: int) -> dict[str, float]:
    return {"epoch": n, "val_loss": 1.0 / n, "val_accuracy": 0.5 + n / 100, "device": "cpu"}


def steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "val_loss"))


def test_each_epoch_is_logged_once_across_a_resume(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    first = _Writer(cfg, parent)
    first.start("t_00000", {"lr": 0.1}, {"model_summary": "CNN"})
    for n in (1, 2, 2):  # Ray echoes a result after a restore: the same epoch again
        first.result("t_00000", epoch(n))
    run_id = first.run_ids["t_00000"]
    assert steps(client, run_id) == [1, 2]
    first.close("interrupted")  # the sweep is interrupted here

    # A resumed sweep has a new writer: it finds the trial's run by its tag, keeps its
    # params, and logs only the epochs after those MLflow already holds.
    again = _Writer(cfg, parent)
    again.start("t_00000", {"lr": 0.1}, {"model_summary": "CNN"})
    for n in (2, 3):
        again.result("t_00000", epoch(n))
    assert again.run_ids["t_00000"] == run_id
    assert steps(client, run_id) == [1, 2, 3]
    runs = client.search_runs([client.get_run(parent).info.experiment_id])
    assert sorted(r.data.tags.get(TRIAL_TAG, "parent") for r in runs) == ["parent", "t_00000"]
    assert client.get_run(run_id).data.tags["device"] == "cpu"
    again.close("interrupted")


def test_closing_ends_the_runs_left_open(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    writer = _Writer(cfg, parent)
    for trial in ("t_00000", "t_00001"):
        writer.submit(writer.start, trial, {"lr": 0.1}, {})
        writer.submit(writer.result, trial, epoch(1))
    writer.submit(writer.finish, "t_00000", "FINISHED", "completed", 1)
    writer.close("stopped_early")  # the time budget cut t_00001
    assert writer.failures == 0
    done, cut = (client.get_run(writer.run_ids[t]) for t in ("t_00000", "t_00001"))
    assert (done.info.status, done.data.tags["hpo.outcome"]) == ("FINISHED", "completed")
    assert (cut.info.status, cut.data.tags["hpo.outcome"]) == ("KILLED", "stopped_early")
    assert list((tmp_path / "tb" / "t_00000").glob("events.out.tfevents.*"))


def test_a_failing_write_is_counted_not_raised(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    writer = _Writer(cfg, parent)
    writer.submit(writer.finish, "t_00009", "FINISHED", "completed", 1)  # a run id lookup works
    writer.submit(writer.result, "t_00009", {"epoch": "not a number"})
    writer.close("interrupted")
    assert writer.failures == 1


def test_the_parent_run_is_found_by_its_folder_and_deleted_with_its_children(
    tmp_path: Path,
) -> None:
    cfg, parent = setup(tmp_path)
    assert find_parent_run(cfg.tracking_uri, "exp", str(tmp_path)) == parent
    assert find_parent_run(cfg.tracking_uri, "exp", str(tmp_path / "other")) is None
    writer = _Writer(cfg, parent)
    writer.start("t_00000", {}, {})
    writer.close("interrupted")
    delete_sweep_runs(cfg.tracking_uri, parent)
    client = MlflowClient(cfg.tracking_uri)
    assert client.get_run(parent).info.lifecycle_stage == "deleted"
    assert client.get_run(writer.run_ids["t_00000"]).info.lifecycle_stage == "deleted"
    assert find_parent_run(cfg.tracking_uri, "exp", str(tmp_path)) is None


class _SlowClient(MlflowClient):
    """The real client; while it migrates the new store, another process creates the same
    store and records an experiment in it."""

    rival: Path

    def search_experiments(self, *args: Any, **kwargs: Any) -> Any:
        found = super().search_experiments(*args, **kwargs)
        if not self.rival.exists():
            MlflowClient(f"sqlite:///{self.rival}").create_experiment("theirs")
        return found


def test_a_store_created_meanwhile_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mlflow.db"
    _SlowClient.rival = path
    monkeypatch.setattr("tune.tracking.MlflowClient", _SlowClient)
    ensure_store(f"sqlite:///{path}")
    assert MlflowClient(f"sqlite:///{path}").get_experiment_by_name("theirs") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_folders_with_quotes_are_found(tmp_path: Path) -> None:
    cfg = TrackingConfig(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp", "")
    folders = [f"{tmp_path}/it's mine", f'{tmp_path}/say "hi"', f"""{tmp_path}/it's "both\""""]
    runs = {f: start_parent_run(cfg, {}, {"hpo.experiment_dir": f}) for f in folders}
    for folder, run_id in runs.items():
        assert find_parent_run(cfg.tracking_uri, "exp", folder) == run_id


def test_a_purged_sweep_counts_as_deleted(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    client.delete_run(parent)
    gc = [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", cfg.tracking_uri]
    gc += ["--tracking-uri", cfg.tracking_uri]
    subprocess.run([*gc, "--run-ids", parent], check=True, capture_output=True)
    delete_sweep_runs(cfg.tracking_uri, parent)  # nothing left to delete; no error
    # A soft-deleted one is not deleted twice either.
    _, other = setup(tmp_path / "x", tmp_path / "mlflow.db")
    delete_sweep_runs(cfg.tracking_uri, other)
    delete_sweep_runs(cfg.tracking_uri, other)
