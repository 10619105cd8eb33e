"""Every trial in MLflow and TensorBoard, written from the driver.

Trials never talk to MLflow: a driver-side Tune callback turns trial events into MLflow runs
(one parent run per sweep, one child run per trial) and TensorBoard scalars. The writes happen
on a background thread, so a slow tracking server never stalls Tune's scheduling loop.

MLflow run status of a trial, with its tag `hpo.outcome`: FINISHED (completed) when it ran all
its epochs; KILLED (stopped_early) when ASHA or the time budget stopped it before that; KILLED
(interrupted) when the sweep was interrupted under it; FAILED (error) when it raised after its
retries.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient
from ray import tune as ray_tune

from tune import hyperparams
from tune.metrics import EPOCH, REPORTED
from tune.record import versions

log = logging.getLogger(__name__)

TRIAL_TAG = "hpo.trial_id"
SWEEP_TAG = "hpo.sweep"
PARENT_TAG = "mlflow.parentRunId"
DIR_TAG = "hpo.experiment_dir"


@dataclass(frozen=True)
class TrackingConfig:
    tracking_uri: str
    experiment: str  # MLflow experiment = sweep name
    tensorboard_dir: str  # event files go to <tensorboard_dir>/<trial_id>


def version_tags() -> dict[str, str]:
    """torch_version and ray_version: on the parent run and on every trial's run."""
    v = versions()
    return {"torch_version": v["torch"], "ray_version": v["ray"]}


def ensure_store(tracking_uri: str) -> None:
    """Create a new SQLite store under a temporary name, then link it into place: MLflow builds
    its tables in several steps, and a store killed half-way would be unusable for good. The
    link fails when the file exists, so a store another process created meanwhile is kept (and
    used), never replaced with this one."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if path.exists():
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    MlflowClient(f"sqlite:///{partial}").search_experiments(max_results=1)
    try:
        os.link(partial, path)
    except FileExistsError:
        pass  # another process's store won the race; ours is dropped
    finally:
        partial.unlink(missing_ok=True)


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
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=tag_filter(PARENT_TAG, parent_run_id),
        max_results=50_000,
    )
    for run in [*children, parent]:
        if run.info.lifecycle_stage != "deleted":
            client.delete_run(run.info.run_id)


def reopen_run(tracking_uri: str, run_id: str) -> None:
    """A resumed sweep's parent run is running again."""
    MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")


def end_run(tracking_uri: str, run_id: str, status: str) -> None:
    MlflowClient(tracking_uri).set_terminated(run_id, status)


class _Writer:
    """Owns the MLflow client and TensorBoard writers; runs jobs in order on one thread."""

    def __init__(self, cfg: TrackingConfig, parent_run_id: str) -> None:
        self.cfg = cfg
        self.parent_run_id = parent_run_id
        self.client = MlflowClient(cfg.tracking_uri)
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        self.run_ids: dict[str, str] = {}
        self.open: set[str] = set()  # trials started and not yet finished
        # Per trial, the last epoch MLflow already holds. A resumed trial replays at most the
        # epoch after its last saved checkpoint, with the same numbers (seeded, RNG restored):
        # it is not logged twice.
        self.logged_epoch: dict[str, int] = {}
        self.boards: dict[str, Any] = {}
        # Jobs are (bound method, args): each is tied to this writer when queued.
        self.jobs: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue()
        self.failures = 0
        self.thread = threading.Thread(target=self._loop, name="hpo-tracking", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            method, args = job
            try:
                method(*args)
            except Exception as e:  # tracking must never take the sweep down
                self.failures += 1
                log.warning("MLflow/TensorBoard write failed: %s", e)

    def submit(self, method: Callable[..., None], *args: Any) -> None:
        self.jobs.put((method, args))

    def close(self, open_outcome: str, timeout: float = 30.0) -> None:
        """Drain the queue, then stop. Trials still open were cut off by an interrupt or the
        time budget (`open_outcome`): say so rather than leave their runs RUNNING forever."""
        self.submit(self.close_open, open_outcome)
        self.jobs.put(None)
        self.thread.join(timeout)
        if self.thread.is_alive():
            # The store is too slow or gone: leave the thread (a daemon) and its writers alone.
            log.warning("tracking: %d writes still queued after %.0f s", self.jobs.qsize(), timeout)
            self.failures += self.jobs.qsize()
            return
        for board in self.boards.values():
            board.close()

    # -- jobs (run on the writer thread) -------------------------------------------------------

    def run_id(self, trial_id: str) -> str:
        """The trial's child run: found again by tag after a resume, else created."""
        if trial_id not in self.run_ids:
            found = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"{tag_filter(TRIAL_TAG, trial_id)} and "
                f"{tag_filter(PARENT_TAG, self.parent_run_id)}",
                max_results=1,
            )
            if found:
                self.run_ids[trial_id] = found[0].info.run_id
            else:
                tags = {
                    TRIAL_TAG: trial_id,
                    PARENT_TAG: self.parent_run_id,
                    SWEEP_TAG: self.cfg.experiment,
                }
                run = self.client.create_run(self.experiment_id, run_name=trial_id, tags=tags)
                self.run_ids[trial_id] = run.info.run_id
        return self.run_ids[trial_id]

    def board(self, trial_id: str) -> Any:
        if trial_id not in self.boards:
            from torch.utils.tensorboard import SummaryWriter

            self.boards[trial_id] = SummaryWriter(str(Path(self.cfg.tensorboard_dir) / trial_id))
        return self.boards[trial_id]

    def start(self, trial_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        run_id = self.run_id(trial_id)
        history = self.client.get_metric_history(run_id, "val_loss")
        self.logged_epoch[trial_id] = max((m.step for m in history), default=0)
        logged = self.client.get_run(run_id).data.params
        params = [Param(k, str(v)) for k, v in config.items() if k not in logged]
        self.client.log_batch(run_id, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
        self.client.update_run(run_id, status="RUNNING")
        self.open.add(trial_id)

    def result(self, trial_id: str, result: dict[str, Any]) -> None:
        run_id = self.run_id(trial_id)
        step = int(result.get(EPOCH, 0))
        if step <= self.logged_epoch.get(trial_id, 0):
            return
        self.logged_epoch[trial_id] = step
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(result[k]), now, step)
            for k in REPORTED
            if isinstance(result.get(k), int | float)
        ]
        tags = [RunTag("device", str(result["device"]))] if "device" in result else []
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        board = self.board(trial_id)
        for m in metrics:
            board.add_scalar(m.key, m.value, step)

    def finish(self, trial_id: str, status: str, outcome: str, epochs: int) -> None:
        run_id = self.run_id(trial_id)
        self.client.set_tag(run_id, "hpo.outcome", outcome)
        if epochs >= 0:
            self.client.set_tag(run_id, "hpo.epochs", str(epochs))
        self.client.set_terminated(run_id, status)
        self.open.discard(trial_id)
        if trial_id in self.boards:
            self.boards.pop(trial_id).close()

    def close_open(self, outcome: str) -> None:
        for trial_id in sorted(self.open):
            self.finish(trial_id, "KILLED", outcome, epochs=-1)


class TrackingCallback(ray_tune.Callback):
    """Tune events -> MLflow runs and TensorBoard scalars, via the writer thread."""

    def __init__(self, cfg: TrackingConfig, parent_run_id: str) -> None:
        self.cfg = cfg
        self.parent_run_id = parent_run_id
        self._writer: _Writer | None = None
        self._versions = version_tags()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment; a thread cannot be pickled, nor resumed.
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    @property
    def writer(self) -> _Writer:
        if self._writer is None:
            self._writer = _Writer(self.cfg, self.parent_run_id)
        return self._writer

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        trial_id, config = trial.trial_id, dict(trial.config)
        tags = {**self._versions, "model_summary": model_summary(config)}
        self.writer.submit(self.writer.start, trial_id, config, tags)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.writer.submit(self.writer.result, trial.trial_id, dict(result))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epochs = int((trial.last_result or {}).get(EPOCH, 0) or 0)
        if epochs >= int(trial.config.get("epochs", 0)):
            status, outcome = "FINISHED", "completed"
        else:
            status, outcome = "KILLED", "stopped_early"
        self.writer.submit(self.writer.finish, trial.trial_id, status, outcome, epochs)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epochs = int((trial.last_result or {}).get(EPOCH, 0) or 0)
        self.writer.submit(self.writer.finish, trial.trial_id, "FAILED", "error", epochs)

    def close(self, open_outcome: str = "interrupted") -> int:
        """Wait for every queued write; returns how many failed. `open_outcome` tags the runs of
        trials that never got their end event: 'interrupted', or 'stopped_early' when the time
        budget ended them (Ray does not report those as completed)."""
        if self._writer is None:
            return 0
        self._writer.close(open_outcome)
        failures = self._writer.failures
        self._writer = None
        return failures


def model_summary(config: dict[str, Any]) -> str:
    import torch

    from models.cnn import CNN, summary

    try:
        # On the meta device: shapes and parameter counts without allocating the weights.
        with torch.device("meta"):
            return summary(CNN(hyperparams.model_config(config)))
    except (KeyError, ValueError) as e:
        return f"unavailable: {e}"
