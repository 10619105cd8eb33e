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
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient
from ray import tune as ray_tune

from tune.core import states
from tune.core.metrics import EPOCH, REPORTED
from tune.space import hyperparams
from tune.store.record import versions
from tune.store.trials import Trial

log = logging.getLogger(__name__)

TRIAL_TAG = "hpo.trial_id"
SWEEP_TAG = "hpo.sweep"
PARENT_TAG = "mlflow.parentRunId"
DIR_TAG = "hpo.experiment_dir"
OUTCOME_TAG = "hpo.outcome"
# How often a writer asks a store that stopped answering whether it is back.
RETRY_S = 10.0
# A queued write: a bound method of the writer and its arguments.
Job = tuple[Callable[..., None], tuple[Any, ...]]


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
    store = NewStore(tracking_uri)
    store.build()
    store.install()


class NewStore:
    """A new SQLite store built beside other work: MLflow takes 1-2 s to create its tables,
    which can happen while Ray starts (run_experiment), and is put in place only once every
    check has passed; `discard` removes it otherwise. A no-op for other URIs and for a store
    that exists already."""

    def __init__(self, tracking_uri: str) -> None:
        self.path: Path | None = None
        if tracking_uri.startswith("sqlite:///"):
            path = Path(tracking_uri.removeprefix("sqlite:///"))
            if not path.exists():
                self.path = path
        self.partial: Path | None = None
        if self.path is not None:
            # A new name each time: MLflow caches a store per URI, and a second store built
            # under a name it has seen would not be built at all.
            token = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
            self.partial = self.path.with_name(f".{self.path.name}.{token}.partial")
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def build(self) -> None:
        if self.partial is None:
            return
        try:
            MlflowClient(f"sqlite:///{self.partial}").search_experiments(max_results=1)
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


def reopen_run(tracking_uri: str, run_id: str) -> None:
    """A resumed sweep's parent run is running again."""
    MlflowClient(tracking_uri).update_run(run_id, status="RUNNING")


def end_run(tracking_uri: str, run_id: str, status: str) -> None:
    MlflowClient(tracking_uri).set_terminated(run_id, status)


@dataclass(frozen=True)
class Flushed:
    """How a sweep's tracking ended: writes the store refused (`failed`: a bad value, counted
    and dropped) and writes it never got because it could not be reached (`missed`: the
    experiment folder has them, and `hpo resume` logs them; see backfill)."""

    failed: int = 0
    missed: int = 0


class _Writer:
    """Owns the MLflow client and TensorBoard writers; runs jobs in order on one thread.

    When a write fails and the store does not answer either, the store is down: that write and
    every later one wait, in order, in `backlog`, and the writer asks the store again every
    RETRY_S seconds. Once it answers, the backlog is written, so tracking catches up with a
    server that comes back. Training never waits for any of it."""

    def __init__(self, cfg: TrackingConfig, parent_run_id: str) -> None:
        self.cfg = cfg
        self.parent_run_id = parent_run_id
        self.client = MlflowClient(cfg.tracking_uri)
        self._experiment_id: str | None = None
        self.run_ids: dict[str, str] = {}
        self.open: set[str] = set()  # trials started and not yet finished
        # Per trial, the last epoch MLflow already holds. A resumed trial replays at most the
        # epoch after its last saved checkpoint, with the same numbers (seeded, RNG restored):
        # it is not logged twice.
        self.logged_epoch: dict[str, int] = {}
        self.boards: dict[str, Any] = {}
        # Jobs are (bound method, args): each is tied to this writer when queued.
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.backlog: deque[Job] = deque()
        self.next_try = 0.0
        self.failures = 0
        self.thread: threading.Thread | None = None  # started by the first submit

    @property
    def experiment_id(self) -> str:
        # Asked on the writer thread, at the first write: a store that is down when the sweep
        # starts its first trial must not stop the sweep.
        if self._experiment_id is None:
            self._experiment_id = self.client.get_run(self.parent_run_id).info.experiment_id
        return self._experiment_id

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=RETRY_S if self.backlog else None)
            except queue.Empty:
                self._catch_up()
                continue
            if job is None:
                self._catch_up()  # one last try before the sweep ends
                return
            if self.backlog:
                self.backlog.append(job)  # keep the order: nothing overtakes a waiting write
                if time.monotonic() >= self.next_try:
                    self._catch_up()
            elif not self._run(job):
                self.backlog.append(job)
                self.next_try = time.monotonic() + RETRY_S
                log.warning(
                    "MLflow at %s cannot be reached; training goes on, writes wait and are "
                    "retried every %.0f s",
                    self.cfg.tracking_uri,
                    RETRY_S,
                )

    def _run(self, job: Job) -> bool:
        """Run one job; False if it failed because the store is unreachable (try it later)."""
        method, args = job
        try:
            method(*args)
            return True
        except Exception as e:  # tracking must never take the sweep down
            if not self._answers():
                return False
            self.failures += 1  # the store is there and refused this write: retrying won't help
            log.warning("MLflow/TensorBoard write failed: %s", e)
            return True

    def _answers(self) -> bool:
        try:
            self.client.search_experiments(max_results=1)
            return True
        except Exception:
            return False

    def _catch_up(self) -> None:
        """Write the backlog in order while the store answers."""
        self.next_try = time.monotonic() + RETRY_S
        if not self.backlog or not self._answers():
            return
        log.warning(
            "MLflow at %s is back; writing %d waiting writes",
            self.cfg.tracking_uri,
            len(self.backlog),
        )
        while self.backlog:
            if not self._run(self.backlog[0]):
                return
            self.backlog.popleft()

    def submit(self, method: Callable[..., None], *args: Any) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="hpo-tracking", daemon=True)
            self.thread.start()
        self.jobs.put((method, args))

    def close(self, open_outcome: str, timeout: float = 30.0) -> Flushed:
        """Drain the queue, then stop. Trials still open were cut off by an interrupt or the
        time budget (`open_outcome`): say so rather than leave their runs RUNNING forever."""
        if self.thread is None:  # nothing was queued: what was written, was written here
            self.close_open(open_outcome)
        else:
            self.submit(self.close_open, open_outcome)
            self.jobs.put(None)
            self.thread.join(timeout)
        if self.thread is not None and self.thread.is_alive():
            # The store is too slow to answer: leave the thread (a daemon) and its writers.
            log.warning("tracking: writes still queued after %.0f s", timeout)
            return Flushed(self.failures, len(self.backlog) + self.jobs.qsize())
        for board in self.boards.values():
            board.close()
        return Flushed(self.failures, len(self.backlog))

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
        step = int(result.get(EPOCH, 0))
        if step <= self.logged_epoch.get(trial_id, 0):
            return
        tags = [RunTag("device", str(result["device"]))] if "device" in result else []
        self.log_epoch(trial_id, result, int(time.time() * 1000), tags)
        self.logged_epoch[trial_id] = step

    def log_epoch(
        self, trial_id: str, result: dict[str, Any], timestamp_ms: int, tags: list[RunTag]
    ) -> None:
        """One epoch's metrics, at step = epoch, in MLflow and TensorBoard."""
        step = int(result[EPOCH])
        metrics = [
            Metric(k, float(result[k]), timestamp_ms, step)
            for k in REPORTED
            if isinstance(result.get(k), int | float)
        ]
        self.client.log_batch(self.run_id(trial_id), metrics=metrics, tags=tags)
        board = self.board(trial_id)
        for m in metrics:
            board.add_scalar(m.key, m.value, step)

    def finish(self, trial_id: str, status: str, outcome: str, epochs: int) -> None:
        run_id = self.run_id(trial_id)
        self.client.set_tag(run_id, OUTCOME_TAG, outcome)
        if epochs >= 0:
            self.client.set_tag(run_id, "hpo.epochs", str(epochs))
        self.client.set_terminated(run_id, status)
        self.open.discard(trial_id)
        if trial_id in self.boards:
            self.boards.pop(trial_id).close()

    def close_open(self, outcome: str) -> None:
        for trial_id in sorted(self.open):
            self.finish(trial_id, "KILLED", outcome, epochs=-1)

    def backfill(self, trial: Trial) -> tuple[int, int]:
        """Log what MLflow lacks of one trial of the experiment folder: its run, params, the
        epochs MLflow has no val_loss for, and its end. Returns (epochs logged, 1 if ended)."""
        ending = ENDINGS.get(trial.state)
        if not trial.history and trial.state != states.ERROR:
            return 0, 0  # not started, or before its first epoch: its own start creates the run
        run_id = self.run_id(trial.trial_id)
        run = self.client.get_run(run_id)
        params = [Param(k, str(v)) for k, v in trial.config.items() if k not in run.data.params]
        tags = [
            RunTag(k, v)
            for k, v in {**version_tags(), "model_summary": model_summary(trial.config)}.items()
            if k not in run.data.tags
        ]
        self.client.log_batch(run_id, params=params, tags=tags)
        logged = {m.step for m in self.client.get_metric_history(run_id, "val_loss")}
        missing = [h for h in trial.history if int(h[EPOCH]) not in logged]
        for h in missing:
            when = int(h.get("timestamp", time.time()) * 1000)  # when the epoch ended
            self.log_epoch(trial.trial_id, h, when, [])
        if ending is None or (run.info.status, run.data.tags.get(OUTCOME_TAG)) == ending:
            return len(missing), 0
        self.finish(trial.trial_id, *ending, epochs=trial.epochs)
        return len(missing), 1


# A trial's run status and outcome tag, by the trial's final state in the experiment folder.
ENDINGS = {
    states.COMPLETED: ("FINISHED", "completed"),
    states.STOPPED_EARLY: ("KILLED", "stopped_early"),
    states.ERROR: ("FAILED", "error"),
}


@dataclass(frozen=True)
class Backfilled:
    epochs: int  # epochs logged that MLflow had missed
    ended: int  # trial runs given the end MLflow had missed


def backfill(
    cfg: TrackingConfig, parent_run_id: str, trials: Iterable[Trial], parent_status: str | None
) -> Backfilled:
    """Make MLflow hold what the experiment folder holds, after a sweep whose tracking server
    was down for part of it (Flushed.missed): `hpo resume` calls this. The folder is the
    record of what happened; what MLflow holds already is left as it is, so this can run any
    number of times. `parent_status`: how the parent run ends if it is still RUNNING (a
    finished experiment's), or None to leave it."""
    writer = _Writer(cfg, parent_run_id)
    epochs = ended = 0
    try:
        for trial in trials:
            logged, closed = writer.backfill(trial)
            epochs, ended = epochs + logged, ended + closed
    finally:
        writer.close("interrupted")
    client = MlflowClient(cfg.tracking_uri)
    if parent_status and client.get_run(parent_run_id).info.status == "RUNNING":
        client.set_terminated(parent_run_id, parent_status)
        ended += 1
    return Backfilled(epochs, ended)


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
        full = epochs >= int(trial.config.get("epochs", 0))
        status, outcome = ENDINGS[states.COMPLETED if full else states.STOPPED_EARLY]
        self.writer.submit(self.writer.finish, trial.trial_id, status, outcome, epochs)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epochs = int((trial.last_result or {}).get(EPOCH, 0) or 0)
        status, outcome = ENDINGS[states.ERROR]
        self.writer.submit(self.writer.finish, trial.trial_id, status, outcome, epochs)

    def close(self, open_outcome: str = "interrupted") -> Flushed:
        """Wait for the queued writes, at most 30 s. `open_outcome` tags the runs of trials
        that never got their end event: 'interrupted', or 'stopped_early' when the time budget
        ended them (Ray does not report those as completed)."""
        if self._writer is None:
            return Flushed()
        flushed = self._writer.close(open_outcome)
        self._writer = None
        return flushed


def model_summary(config: dict[str, Any]) -> str:
    import torch

    from models.cnn import CNN, summary

    try:
        # On the meta device: shapes and parameter counts without allocating the weights.
        with torch.device("meta"):
            return summary(CNN(hyperparams.model_config(config)))
    except (KeyError, ValueError) as e:
        return f"unavailable: {e}"
