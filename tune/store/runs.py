"""The MLflow store and an experiment's runs in it: the store made safely, the parent run
found or created, a sweep's runs deleted, a run checked to be the folder's own, and the tags
that tie runs to trials and folders (docs/architecture.md, "What gets recorded").

The trials' own runs are written by tune/run/tracking.py, from the driver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.version import VERSION as MLFLOW_VERSION

from models.factory import Param as FactoryParam
from tune.space.spec import SweepSpec
from tune.store.records import versions

TRIAL_TAG = "hpo.trial_id"
SWEEP_TAG = "hpo.sweep"
PARENT_TAG = "mlflow.parentRunId"
DIR_TAG = "hpo.experiment_dir"
OUTCOME_TAG = "hpo.outcome"


@dataclass(frozen=True)
class ModelShape:
    """What the driver needs to describe a trial's model (its summary tag and parameter
    count): the factory and the data's shape."""

    factory: str  # "module:function"
    params: tuple[FactoryParam, ...]  # the factory's hyperparameters; () = the built-in CNN's
    search_dir: str | None  # where the factory's module is imported from first
    input_shape: tuple[int, ...] | None  # None: not known (a backfill, which reads no data)
    num_classes: int


@dataclass(frozen=True)
class TrackingConfig:
    tracking_uri: str
    experiment: str  # MLflow experiment = sweep name
    tensorboard_dir: str  # event files go to <tensorboard_dir>/<trial_id>
    varied: tuple[str, ...] = ()  # config keys a trial's run name shows, after its id
    model: ModelShape | None = None  # None: the built-in CNN on 28x28 images, 10 classes
    # Tags of every trial's run: the model factory and the data source (source_tags).
    tags: tuple[tuple[str, str], ...] = ()


def source_tags(spec: SweepSpec) -> dict[str, str]:
    """The model factory and the data source, as tags of the parent run and every trial's."""
    return {"hpo.model": spec.model.factory, "hpo.data": spec.dataset.config(spec.seed).label}


def version_tags() -> dict[str, str]:
    """torch_version and ray_version: on the parent run and on every trial's run."""
    v = versions()
    return {"torch_version": v["torch"], "ray_version": v["ray"]}


def ensure_store(tracking_uri: str) -> None:
    """Create a new SQLite store under a temporary name, then link it into place: MLflow builds
    its tables in several steps, and a store killed half-way would be unusable for good. The
    link fails when the file exists, so a store another process created meanwhile is kept (and
    used), never replaced with this one."""
    store = NewStore(tracking_uri)
    store.build()
    store.install()


# An empty store of each MLflow version, kept to be copied: MLflow builds a new SQLite store by
# creating its tables and running every schema migration since its first release, 1.2 CPU-s in
# a new process and 0.9-1.5 in one that made a store before; a copy takes 0.5 and 0.03 (MLflow
# still checks its schema). BENCHMARKS.md, "Sweep overhead".
TEMPLATES = Path.home() / ".cache" / "hpo" / "mlflow"


class NewStore:
    """A new SQLite store built beside other work (while Ray starts: run_experiment), and put
    in place only once every check has passed; `discard` removes it otherwise. It is a copy of
    the empty store this MLflow version built before (TEMPLATES), else MLflow builds it and the
    copy is kept for next time. A no-op for other URIs and for a store that exists already."""

    def __init__(self, tracking_uri: str) -> None:
        self.path: Path | None = None
        if tracking_uri.startswith("sqlite:///"):
            path = Path(tracking_uri.removeprefix("sqlite:///"))
            if not path.exists():
                self.path = path
        self.partial = None if self.path is None else self._new_partial(self.path)
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @staticmethod
    def _new_partial(path: Path) -> Path:
        # A new name each time: MLflow caches a store per URI, and a second store built under
        # a name it has seen would not be built at all.
        token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        return path.with_name(f".{path.name}.{token}.partial")

    def build(self) -> None:
        if self.path is None or self.partial is None:
            return
        try:
            if _copy_template(self.partial):
                try:
                    _open(self.partial)
                    return
                except Exception:  # not a store this MLflow can use: MLflow builds one
                    self.partial.unlink(missing_ok=True)
                    self.partial = self._new_partial(self.path)
            _open(self.partial)
            _keep_as_template(self.partial)
        except BaseException as e:  # raised again by install, on the caller's thread
            self.error = e

    def start(self) -> NewStore:
        """Build it on a thread; `install` or `discard` waits for it."""
        if self.partial is not None:
            self.thread = threading.Thread(target=self.build, name="hpo-new-store", daemon=True)
            self.thread.start()
        return self

    def _wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def install(self) -> None:
        if self.path is None or self.partial is None:
            return
        self._wait()
        try:
            if self.error is not None:
                raise self.error
            os.link(self.partial, self.path)
        except FileExistsError:
            pass  # another process's store won the race; ours is dropped
        finally:
            self.partial.unlink(missing_ok=True)
            self.path = None

    def discard(self) -> None:
        self._wait()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)


def _open(path: Path) -> None:
    """Open a SQLite store as MLflow does: a new file gets its tables, any file gets its schema
    checked and MLflow's Default experiment (whose artifacts go to ./mlruns of the working
    folder) if it has none."""
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)


def _template() -> Path:
    return TEMPLATES / f"empty-{MLFLOW_VERSION}.db"


def _copy_template(to: Path) -> bool:
    """Copy this MLflow version's empty store to `to`; False if there is none (yet)."""
    try:
        shutil.copyfile(_template(), to)
        return True
    except OSError:
        to.unlink(missing_ok=True)
        return False


def _keep_as_template(built: Path) -> None:
    """Keep a copy of a store MLflow just built, less its Default experiment (which names the
    folder it was built from; MLflow adds it again to each copy, with the copy's own), for the
    next new store. Best effort: without it, MLflow builds the next one too."""
    template = _template()
    keeping = template.with_name(f".{template.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, keeping)
        with contextlib.closing(sqlite3.connect(keeping)) as db, db:
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(keeping, template)  # whole or not at all, also with another process beside
    except (OSError, sqlite3.Error):
        pass
    finally:
        keeping.unlink(missing_ok=True)


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts (reports) of a SQLite store go beside the database file, in mlartifacts/:
    MLflow's default, ./mlruns of whatever folder the experiment was first created from,
    would scatter them. Other stores keep their server's own default."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    return (db.parent / "mlartifacts" / experiment).absolute().as_uri()


def log_artifact(tracking_uri: str, run_id: str, path: Path, artifact_path: str) -> None:
    MlflowClient(tracking_uri).log_artifact(run_id, str(path), artifact_path=artifact_path)


def find_parent_run(tracking_uri: str, experiment: str, experiment_dir: str) -> str | None:
    """The parent run of the sweep in `experiment_dir`, if one was created (a driver killed
    right after creating it had no time to record its id)."""
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id], filter_string=tag_filter(DIR_TAG, experiment_dir), max_results=1000
    )
    parents = [
        r
        for r in runs
        if PARENT_TAG not in r.data.tags and r.data.tags.get(DIR_TAG) == experiment_dir
    ]
    return str(parents[0].info.run_id) if parents else None


def tag_filter(tag: str, value: str) -> str:
    """An MLflow filter for runs whose `tag` is `value`. MLflow's filter strings have no escape
    for quotes: a value with a single quote goes in double quotes; one with both kinds cannot be
    written, so the filter only asks for the tag, and the caller compares the values."""
    if "'" not in value:
        return f"tags.`{tag}` = '{value}'"
    if '"' not in value:
        return f'tags.`{tag}` = "{value}"'
    return f"tags.`{tag}` != ''"


def find_trial_run(
    client: MlflowClient, experiment_id: str, parent: str, trial_id: str
) -> str | None:
    """The run id of a trial's run under the parent run `parent`, or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"{tag_filter(TRIAL_TAG, trial_id)} and {tag_filter(PARENT_TAG, parent)}",
        max_results=1,
    )
    return str(found[0].info.run_id) if found else None


def start_parent_run(
    cfg: TrackingConfig, params: dict[str, Any], tags: dict[str, str], run_name: str | None = None
) -> str:
    """Create the sweep's experiment (if new) and its parent run; returns the run id."""
    ensure_store(cfg.tracking_uri)
    client = MlflowClient(cfg.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        experiment_id = client.create_experiment(
            cfg.experiment, artifact_location=artifact_location(cfg.tracking_uri, cfg.experiment)
        )
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            # Deleted in the UI but still in the store: a new run there would fail.
            client.restore_experiment(experiment_id)
    run = client.create_run(
        experiment_id, run_name=run_name or cfg.experiment, tags={SWEEP_TAG: cfg.experiment, **tags}
    )
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return str(run.info.run_id)


def delete_sweep_runs(tracking_uri: str, parent_run_id: str) -> None:
    """Soft-delete a sweep's parent run and every trial run under it. A parent run that was
    purged (`mlflow gc`) is gone already, and so are its trial runs."""
    client = MlflowClient(tracking_uri)
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException as e:
        if e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return
        raise
    for run in [*_child_runs(client, parent), parent]:
        if run.info.lifecycle_stage != "deleted":
            client.delete_run(run.info.run_id)


def delete_unsaved_trial_runs(tracking_uri: str, parent_run_id: str, saved: set[str]) -> int:
    """Soft-delete the trial runs under the parent run whose trial Ray's saved state does not
    hold: a driver killed just as it started a trial leaves that trial's run, and Ray, which
    had not saved the trial, creates it again under a new id on resume. Returns how many."""
    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    unsaved = [
        r for r in _child_runs(client, parent) if r.data.tags.get(TRIAL_TAG, "") not in {"", *saved}
    ]
    for run in unsaved:
        client.delete_run(run.info.run_id)
    return len(unsaved)


def _child_runs(client: MlflowClient, parent: Any) -> list[Any]:
    """The runs under the parent run `parent` (its trials' runs), deleted ones left out."""
    return list(
        client.search_runs(
            [parent.info.experiment_id],
            filter_string=tag_filter(PARENT_TAG, parent.info.run_id),
            max_results=50_000,
        )
    )


def foreign_run(tracking_uri: str, run_id: str, folder: Path) -> str | None:
    """Why the MLflow run an experiment record names is not that experiment's own, or None
    when it is (or when there is no such run, or no such SQLite store: nothing to harm, and
    no store is created here). A folder copied from another experiment, or a link to one,
    names the original's run; its folder tag says where the run's experiment lives."""
    sqlite = tracking_uri.startswith("sqlite:///")
    if sqlite and not Path(tracking_uri.removeprefix("sqlite:///")).is_file():
        return None
    try:
        run = MlflowClient(tracking_uri).get_run(run_id)
    except MlflowException as e:
        if e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    owner = run.data.tags.get(DIR_TAG)
    if owner == str(folder.absolute()):  # not resolved: a link to the run's folder is not it
        return None
    where = f"the experiment in {owner}" if owner else "no hpo experiment (it has no folder tag)"
    return f"MLflow run {run_id} belongs to {where}, not to this folder (a copy, or moved?)"


def reopen_run(tracking_uri: str, run_id: str, tags: dict[str, str] | None = None) -> None:
    """A resumed sweep's parent run is running again; `tags` set or updated on it."""
    client = MlflowClient(tracking_uri)
    client.update_run(run_id, status="RUNNING")
    for key, value in (tags or {}).items():
        client.set_tag(run_id, key, value)


def end_run(
    tracking_uri: str, run_id: str, status: str, results: dict[str, float] | None = None
) -> None:
    """End a parent run, with what the experiment found so far as its metrics."""
    log_results(tracking_uri, run_id, results or {})
    MlflowClient(tracking_uri).set_terminated(run_id, status)


def log_results(tracking_uri: str, run_id: str, results: dict[str, float]) -> None:
    """A parent run's own metrics (its best value, a confirm run's mean test accuracy), so
    that MLflow's list of runs shows the results, not only the child runs' epochs. Logged at
    step 0 again on every resume: MLflow shows the latest."""
    if results:
        stamp = int(time.time() * 1000)
        metrics = [Metric(k, float(v), stamp, 0) for k, v in results.items()]
        MlflowClient(tracking_uri).log_batch(run_id, metrics=metrics)
