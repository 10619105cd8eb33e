"""The driver-side MLflow writer on a real SQLite store: one run per trial, found again after
a resume, no epoch logged twice, and no run left RUNNING when a sweep is cut short. Against a
real `mlflow server` that dies and comes back: writes wait, in order, and catch up."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.factory import Param
from tests.tune.conftest import MlflowServer, wait_for
from tune.core import states
from tune.run import tracking
from tune.run.process import ray_environment
from tune.run.tracking import Backfilled, Flushed, TrialWriter, backfill
from tune.store import runs
from tune.store.runs import (
    OUTCOME_TAG,
    PARENT_TAG,
    TRIAL_TAG,
    ModelShape,
    NewStore,
    TrackingConfig,
    delete_sweep_runs,
    ensure_store,
    find_parent_run,
    start_parent_run,
)
from tune.store.trials import Trial


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
    first = TrialWriter(cfg, parent)
    first.start("t_00000", {"lr": 0.1}, {"model_summary": "CNN"})
    for n in (1, 2, 2):  # Ray echoes a result after a restore: the same epoch again
        first.result("t_00000", epoch(n))
    run_id = first.run_ids["t_00000"]
    assert steps(client, run_id) == [1, 2]
    first.close("interrupted")  # the sweep is interrupted here

    # A resumed sweep has a new writer: it finds the trial's run by its tag, keeps its
    # params, and logs only the epochs after those MLflow already holds.
    again = TrialWriter(cfg, parent)
    again.start("t_00000", {"lr": 0.1}, {"model_summary": "CNN"})
    for n in (2, 3):
        again.result("t_00000", epoch(n))
    assert again.run_ids["t_00000"] == run_id
    assert steps(client, run_id) == [1, 2, 3]
    runs = client.search_runs([client.get_run(parent).info.experiment_id])
    assert sorted(r.data.tags.get(TRIAL_TAG, "parent") for r in runs) == ["parent", "t_00000"]
    assert client.get_run(run_id).data.tags["device"] == "cpu"
    again.close("interrupted")


def test_a_trials_run_is_named_by_its_config_and_sized_and_in_the_hparams_tab(
    tmp_path: Path,
) -> None:
    """MLflow's list of runs reads as the configurations tried (their id, then what the search
    varies), each run has the model's parameter count as a metric, and TensorBoard's HParams
    tab has every trial's config."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg, parent = setup(tmp_path)
    cfg = TrackingConfig(cfg.tracking_uri, cfg.experiment, cfg.tensorboard_dir, ("lr", "norm"))
    client = MlflowClient(cfg.tracking_uri)
    writer = TrialWriter(cfg, parent)
    config = {"lr": 0.001, "norm": True, "epochs": 2}
    writer.start("t_00000", config, {"model_summary": "CNN"}, parameter_count=1234)
    writer.result("t_00000", epoch(1))
    writer.close("interrupted")
    again = TrialWriter(cfg, parent)  # a resume: the same run, the count logged once
    again.start("t_00000", config, {"model_summary": "CNN"}, parameter_count=1234)
    again.close("interrupted")

    run = client.get_run(writer.run_ids["t_00000"])
    assert run.info.run_name == "t_00000 lr=0.001, norm=true"
    assert run.data.metrics["parameter_count"] == 1234
    assert len(client.get_metric_history(run.info.run_id, "parameter_count")) == 1
    events = EventAccumulator(str(Path(cfg.tensorboard_dir) / "t_00000"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    started = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert started.hparams["lr"].number_value == 0.001
    assert started.hparams["norm"].string_value == "true"
    assert events.Scalars("val_accuracy")[0].value == pytest.approx(0.51)


def test_a_long_run_name_is_cut() -> None:
    name = tracking.run_name("t_1", {"a": "x" * 200}, ["a", "missing"])
    assert len(name) == tracking.RUN_NAME_LIMIT and name.endswith("...")
    assert tracking.run_name("t_1", {"a": 1}, []) == "t_1"


def test_closing_ends_the_runs_left_open(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    writer = TrialWriter(cfg, parent)
    for trial in ("t_00000", "t_00001"):
        writer.submit(writer.start, trial, {"lr": 0.1}, {})
        writer.submit(writer.result, trial, epoch(1))
    writer.submit(writer.finish, "t_00000", "FINISHED", "completed", 1)
    writer.close("stopped_early")  # the time budget cut t_00001
    assert writer.queue.refused == 0
    done, cut = (client.get_run(writer.run_ids[t]) for t in ("t_00000", "t_00001"))
    assert (done.info.status, done.data.tags["hpo.outcome"]) == ("FINISHED", "completed")
    assert (cut.info.status, cut.data.tags["hpo.outcome"]) == ("KILLED", "stopped_early")
    assert list((tmp_path / "tb" / "t_00000").glob("events.out.tfevents.*"))


def test_a_failing_write_is_counted_not_raised(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    writer = TrialWriter(cfg, parent)
    writer.submit(writer.finish, "t_00009", "FINISHED", "completed", 1)  # a run id lookup works
    writer.submit(writer.result, "t_00009", {"epoch": "not a number"})
    writer.close("interrupted")
    assert writer.queue.refused == 1


def test_the_parent_run_is_found_by_its_folder_and_deleted_with_its_children(
    tmp_path: Path,
) -> None:
    cfg, parent = setup(tmp_path)
    assert find_parent_run(cfg.tracking_uri, "exp", str(tmp_path)) == parent
    assert find_parent_run(cfg.tracking_uri, "exp", str(tmp_path / "other")) is None
    writer = TrialWriter(cfg, parent)
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
    monkeypatch.setattr("tune.store.runs.MlflowClient", _SlowClient)
    ensure_store(f"sqlite:///{path}")
    assert MlflowClient(f"sqlite:///{path}").get_experiment_by_name("theirs") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_a_store_built_beside_ray_is_put_in_place_only_when_installed(tmp_path: Path) -> None:
    """run_experiment builds a new store while Ray starts: a check that fails meanwhile leaves
    no file behind; one that passes gets a working store."""
    path = tmp_path / "mlflow.db"
    NewStore(f"sqlite:///{path}").start().discard()
    assert list(tmp_path.iterdir()) == []
    NewStore(f"sqlite:///{path}").start().install()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]
    assert MlflowClient(f"sqlite:///{path}").search_experiments() != []  # MLflow's Default
    NewStore(f"sqlite:///{path}").start().install()  # it exists: nothing is built or replaced
    NewStore("http://127.0.0.1:5000").start().install()  # a server: nothing to build
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def contents(db: Path) -> tuple[list[list[str]], dict[str, list[str]]]:
    """A SQLite file's schema and rows, less the times the Default experiment was made at. Each
    statement as its sorted clauses, and the statements sorted: MLflow writes indexes, and the
    constraints of a table its migrations rebuilt, in an order that varies with Python's hash
    seed, from one process to the next."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        statements = [sql for (sql,) in c.execute("SELECT sql FROM sqlite_master") if sql]
        schema = sorted(sorted(re.split(r",\s*\n\s*", sql)) for sql in statements)
        tables = [n for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {t: c.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}
    rows["experiments"] = [r[:4] + r[6:] for r in rows["experiments"]]
    return schema, {t: sorted(map(repr, r)) for t, r in rows.items()}


def test_a_new_store_is_a_copy_of_the_empty_one_mlflow_built_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first store is MLflow's own and kept as the template; the next is a copy, the same
    as one MLflow builds (its Default experiment names the folder the copy was made from)."""
    import mlflow.store.db.utils as db_utils

    monkeypatch.setattr("tune.store.runs.TEMPLATES", tmp_path / "templates")
    built: list[object] = []
    initialize = db_utils._initialize_tables
    monkeypatch.setattr(db_utils, "_initialize_tables", lambda e: built.append(initialize(e)))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        monkeypatch.chdir(folder)
        ensure_store(f"sqlite:///{folder / 'mlflow.db'}")
    assert len(built) == 1  # MLflow built the first store only
    (template,) = (tmp_path / "templates").iterdir()
    assert contents(template)[1]["experiments"] == []
    MlflowClient(f"sqlite:///{second / 'own.db'}").search_experiments()  # MLflow's, from second
    assert len(built) == 2
    assert contents(second / "mlflow.db") == contents(second / "own.db")
    assert sorted(p.name for p in second.iterdir()) == ["mlflow.db", "own.db"]


def test_a_damaged_template_is_replaced_by_a_store_mlflow_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tune.store.runs.TEMPLATES", tmp_path / "templates")
    template = runs._template()
    template.parent.mkdir()
    template.write_bytes(b"not a database")
    for name in ("one.db", "two.db"):
        uri = f"sqlite:///{tmp_path / name}"
        ensure_store(uri)
        assert MlflowClient(uri).get_experiment("0").name == "Default"
    assert contents(template)[1]["experiments"] == []  # a store again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.db", "templates", "two.db"]


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
    with pytest.raises(MlflowException):
        client.get_run(parent)  # purged: gone from the store
    delete_sweep_runs(cfg.tracking_uri, parent)  # nothing left to delete; no error
    # A soft-deleted one is not deleted twice either: it stays deleted, with no error.
    _, other = setup(tmp_path / "x", tmp_path / "mlflow.db")
    delete_sweep_runs(cfg.tracking_uri, other)
    assert client.get_run(other).info.lifecycle_stage == "deleted"
    delete_sweep_runs(cfg.tracking_uri, other)
    assert client.get_run(other).info.lifecycle_stage == "deleted"


def folder_trial(trial_id: str, state: str, epochs: int) -> Trial:
    """A trial as the experiment folder has it (tune/store/trials.py): every epoch it ran."""
    history = tuple(
        {"epoch": n, "val_loss": 1.0 / n, "val_accuracy": 0.5 + n / 100, "timestamp": 1.7e9 + n}
        for n in range(1, epochs + 1)
    )
    return Trial(trial_id, state, {"lr": 0.1, "epochs": 3}, 3, history)


def test_backfill_logs_what_mlflow_missed_and_nothing_twice(tmp_path: Path) -> None:
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    writer = TrialWriter(cfg, parent)
    writer.start("t_00000", {"lr": 0.1, "epochs": 3}, {})
    writer.result("t_00000", epoch(1))
    writer.close("interrupted")  # then the server went away: epochs 2 and 3 and the end missed
    trials = [
        folder_trial("t_00000", states.COMPLETED, 3),
        folder_trial("t_00001", states.ERROR, 1),  # never reached MLflow at all
        folder_trial("t_00002", states.PENDING, 0),  # not started: nothing to log yet
    ]
    # Epochs 2, 3 of t_00000 and 1 of t_00001; both trials' ends and the parent run's.
    assert backfill(cfg, parent, trials, parent_status="FINISHED") == Backfilled(3, 3)
    runs = {
        r.data.tags[TRIAL_TAG]: r
        for r in client.search_runs([client.get_run(parent).info.experiment_id])
        if TRIAL_TAG in r.data.tags
    }
    assert sorted(runs) == ["t_00000", "t_00001"]
    done, failed = runs["t_00000"], runs["t_00001"]
    assert steps(client, done.info.run_id) == [1, 2, 3]
    assert (done.info.status, done.data.tags[OUTCOME_TAG]) == ("FINISHED", "completed")
    assert (failed.info.status, failed.data.tags[OUTCOME_TAG]) == ("FAILED", "error")
    assert failed.data.params == {"lr": "0.1", "epochs": "3"}
    assert "model_summary" in failed.data.tags and "torch_version" in failed.data.tags
    history = client.get_metric_history(failed.info.run_id, "val_accuracy")
    assert [(m.step, m.timestamp) for m in history] == [(1, int((1.7e9 + 1) * 1000))]
    assert client.get_run(parent).info.status == "FINISHED"
    assert list((tmp_path / "tb" / "t_00001").glob("events.out.tfevents.*"))
    # MLflow holds everything now: a second back-fill (a second resume) logs nothing.
    assert backfill(cfg, parent, trials, parent_status="FINISHED") == Backfilled(0, 0)
    assert steps(client, done.info.run_id) == [1, 2, 3]


def test_the_run_of_a_trial_ray_never_saved_is_deleted(tmp_path: Path) -> None:
    """A driver killed just as it started a trial leaves that trial's run in MLflow, but Ray had
    not saved the trial, and creates it again under a new id on resume: the resume's back-fill
    deletes the stray run (soft), and only it."""
    cfg, parent = setup(tmp_path)
    client = MlflowClient(cfg.tracking_uri)
    writer = TrialWriter(cfg, parent)
    writer.start("t_00000", {"lr": 0.1, "epochs": 1}, {})
    writer.result("t_00000", epoch(1))
    writer.start("t_00001", {"lr": 0.2, "epochs": 1}, {})  # started as the driver was killed
    writer.close("interrupted")
    experiment_id = client.get_run(parent).info.experiment_id
    client.create_run(experiment_id, tags={PARENT_TAG: parent})  # not a trial's: kept
    saved = [folder_trial("t_00000", states.COMPLETED, 1)]

    assert backfill(cfg, parent, saved, parent_status=None) == Backfilled(0, 1, unsaved=1)
    runs = client.search_runs([experiment_id])
    assert sorted(r.data.tags.get(TRIAL_TAG, "-") for r in runs) == ["-", "-", "t_00000"]
    assert backfill(cfg, parent, saved, parent_status=None) == Backfilled(0, 0)


def test_a_backfilled_run_of_a_users_model_is_tagged_with_its_factory_and_data(
    tmp_path: Path,
) -> None:
    """A backfill reads no data, so it cannot build the user's model for its summary; the run
    still names the factory and the data source, never the built-in CNN."""
    cfg, parent = setup(tmp_path)
    tags = (("hpo.model", "digits_mlp:build"), ("hpo.data", "factory:digits_mlp:load"))
    shape = ModelShape("digits_mlp:build", (Param("hidden", "int", 64),), None, None, 10)
    cfg = dataclasses.replace(cfg, model=shape, tags=tags)
    trial = Trial("t_00000", states.ERROR, {"hidden": 32, "lr": 0.1}, 1, [epoch(1)])
    assert backfill(cfg, parent, [trial], parent_status=None) == Backfilled(1, 1)
    client = MlflowClient(cfg.tracking_uri)
    (run,) = [
        r
        for r in client.search_runs([client.get_run(parent).info.experiment_id])
        if TRIAL_TAG in r.data.tags
    ]
    assert run.data.tags["hpo.model"] == "digits_mlp:build"
    assert run.data.tags["hpo.data"] == "factory:digits_mlp:load"
    assert run.data.tags["model_summary"] == "unavailable: the data's shape is not known here"
    assert run.data.params["hidden"] == "32"


@pytest.mark.integration
def test_writes_wait_while_the_server_is_down_and_catch_up_when_it_returns(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ray_environment(verbose=False).items():
        if key.startswith("MLFLOW_HTTP"):  # the sweep's own: a dead server fails in seconds
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(tracking, "RETRY_S", 0.5)
    cfg = TrackingConfig(mlflow_server.uri, "exp", str(tmp_path / "tb"))
    parent = start_parent_run(cfg, {}, {})
    store = MlflowClient(mlflow_server.store)  # the server's own database, read directly
    writer = TrialWriter(cfg, parent)
    writer.submit(writer.start, "t_00000", {"lr": 0.1}, {})
    writer.submit(writer.result, "t_00000", epoch(1))

    def logged() -> list[int]:
        run_id = writer.run_ids.get("t_00000")
        return steps(store, run_id) if run_id else []

    # Logged, and the writer has its answer: a server killed between committing a write and
    # answering it leaves that write in the backlog too (it is written again later).
    wait_for(
        "epoch 1 in MLflow",
        lambda: logged() == [1] and writer.logged_epoch.get("t_00000") == 1,
    )
    mlflow_server.kill()
    # Made while the server is down (a sweep's callback at its first trial): no error.
    assert TrialWriter(cfg, parent).close("interrupted") == Flushed()
    for n in (2, 3):
        writer.submit(writer.result, "t_00000", epoch(n))
    writer.submit(writer.finish, "t_00000", "FINISHED", "completed", 3)
    wait_for("three writes waiting", lambda: len(writer.queue.backlog) == 3)
    assert logged() == [1]
    mlflow_server.start()
    wait_for(
        "the writes reach the server",
        lambda: not writer.queue.backlog and writer.queue.jobs.empty(),
    )
    assert writer.close("interrupted") == Flushed(failed=0, missed=0)
    run = store.get_run(writer.run_ids["t_00000"])
    assert logged() == [1, 2, 3]
    assert (run.info.status, run.data.tags[OUTCOME_TAG]) == ("FINISHED", "completed")
