"""Every trial in MLflow and TensorBoard, written from the driver.

Trials never talk to MLflow: a driver-side Tune callback turns trial events into MLflow runs
(one child run per trial under the sweep's parent run, tune/store/runs.py) and TensorBoard
scalars. The writes happen on a background thread (tune/core/retry_queue.py), so a slow
tracking server never stalls Tune's scheduling loop.

MLflow run status of a trial, with its tag `hpo.outcome`: FINISHED (completed) when it ran all
its epochs; KILLED (stopped_early) when ASHA or the time budget stopped it before that; KILLED
(interrupted) when the sweep was interrupted under it; FAILED (error) when it raised after its
retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune as ray_tune

from tune.core import states
from tune.core.metrics import EPOCH, REPORTED
from tune.core.retry_queue import RetryQueue
from tune.core.text import fmt_config, fmt_value
from tune.space import hyperparams
from tune.store.runs import (
    OUTCOME_TAG,
    PARENT_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    ModelShape,
    TrackingConfig,
    delete_unsaved_trial_runs,
    find_trial_run,
    version_tags,
)
from tune.store.trials import Trial

log = logging.getLogger(__name__)

# How often the writer asks a store that stopped answering whether it is back.
RETRY_S = 10.0
PARAMETER_COUNT = "parameter_count"  # a trial's model size, a metric at step 0
# The scalars TensorBoard's HParams tab shows beside each trial's hyperparameters.
HPARAM_METRICS = ("val_accuracy", "val_loss", "train_loss", "loss_gap")
RUN_NAME_LIMIT = 100  # characters; MLflow's list of runs shows about this many


def run_name(trial_id: str, config: dict[str, Any], varied: Iterable[str]) -> str:
    """'0a01e_00012 dropout=0.3, lr=0.001': the trial's id and its values of what the search
    varies, so that MLflow's list of runs reads as the configurations tried."""
    shown = fmt_config({k: config[k] for k in varied if k in config})
    name = f"{trial_id} {shown}".strip()
    return name if len(name) <= RUN_NAME_LIMIT else name[: RUN_NAME_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Flushed:
    """How a sweep's tracking ended: writes the store refused (`failed`: a bad value, counted
    and dropped) and writes it never got because it could not be reached (`missed`: the
    experiment folder has them, and `hpo resume` logs them; see backfill)."""

    failed: int = 0
    missed: int = 0


class TrialWriter:
    """The trials' MLflow runs and TensorBoard event files. Its jobs run in order on one
    thread (a RetryQueue): while the store is down they wait, and they catch up with a server
    that comes back. Training never waits for any of it."""

    def __init__(self, cfg: TrackingConfig, parent_run_id: str) -> None:
        self.cfg = cfg
        self.parent_run_id = parent_run_id
        self.client = MlflowClient(cfg.tracking_uri)
        self.queue = RetryQueue(
            self._answers,
            retry_s=RETRY_S,
            label=f"MLflow at {cfg.tracking_uri}",
            thread_name="hpo-tracking",
        )
        self._experiment_id: str | None = None
        self.run_ids: dict[str, str] = {}
        self.open: set[str] = set()  # trials started and not yet finished
        # Per trial, the last epoch MLflow already holds. A resumed trial replays at most the
        # epoch after its last saved checkpoint, with the same numbers (seeded, RNG restored):
        # it is not logged twice.
        self.logged_epoch: dict[str, int] = {}
        self.boards: dict[str, Any] = {}

    @property
    def experiment_id(self) -> str:
        # Asked on the writer thread, at the first write: a store that is down when the sweep
        # starts its first trial must not stop the sweep.
        if self._experiment_id is None:
            self._experiment_id = self.client.get_run(self.parent_run_id).info.experiment_id
        return self._experiment_id

    def _answers(self) -> bool:
        try:
            self.client.search_experiments(max_results=1)
            return True
        except Exception:
            return False

    def submit(self, method: Callable[..., None], *args: Any) -> None:
        self.queue.submit(method, *args)

    def close(self, open_outcome: str, timeout: float = 30.0) -> Flushed:
        """Drain the queue, then stop. Trials still open were cut off by an interrupt or the
        time budget (`open_outcome`): say so rather than leave their runs RUNNING forever."""
        if not self.queue.started:  # nothing was queued: what was written, was written here
            self.close_open(open_outcome)
        else:
            self.submit(self.close_open, open_outcome)
        if not self.queue.close(timeout):
            # The store is too slow to answer: leave the thread (a daemon) and its writers.
            log.warning("tracking: writes still queued after %.0f s", timeout)
            return Flushed(self.queue.refused, self.queue.waiting)
        for board in self.boards.values():
            board.close()
        return Flushed(self.queue.refused, len(self.queue.backlog))

    # -- jobs (run on the writer thread) -------------------------------------------------------

    def run_id(self, trial_id: str, config: dict[str, Any] | None = None) -> str:
        """The trial's child run: found again by tag after a resume, else created (named
        after its config when given)."""
        if trial_id not in self.run_ids:
            found = find_trial_run(self.client, self.experiment_id, self.parent_run_id, trial_id)
            if found is not None:
                self.run_ids[trial_id] = found
            else:
                tags = {
                    TRIAL_TAG: trial_id,
                    PARENT_TAG: self.parent_run_id,
                    SWEEP_TAG: self.cfg.experiment,
                }
                name = run_name(trial_id, config or {}, self.cfg.varied)
                run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
                self.run_ids[trial_id] = run.info.run_id
        return self.run_ids[trial_id]

    def board(self, trial_id: str) -> Any:
        if trial_id not in self.boards:
            from torch.utils.tensorboard import SummaryWriter

            self.boards[trial_id] = SummaryWriter(str(Path(self.cfg.tensorboard_dir) / trial_id))
        return self.boards[trial_id]

    def start(
        self,
        trial_id: str,
        config: dict[str, Any],
        tags: dict[str, str],
        parameter_count: int | None = None,
    ) -> None:
        run_id = self.run_id(trial_id, config)
        history = self.client.get_metric_history(run_id, "val_loss")
        self.logged_epoch[trial_id] = max((m.step for m in history), default=0)
        self.describe(run_id, config, tags, parameter_count)
        self.client.update_run(run_id, status="RUNNING")
        self.hparams(trial_id, config)
        self.open.add(trial_id)

    def describe(
        self, run_id: str, config: dict[str, Any], tags: dict[str, str], parameter_count: int | None
    ) -> None:
        """What the run lacks of the trial's params, tags and parameter count."""
        run = self.client.get_run(run_id)
        params = [Param(k, str(v)) for k, v in config.items() if k not in run.data.params]
        metrics = []
        if parameter_count is not None and PARAMETER_COUNT not in run.data.metrics:
            metrics.append(Metric(PARAMETER_COUNT, parameter_count, int(time.time() * 1000), 0))
        new_tags = [RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]
        self.client.log_batch(run_id, params=params, metrics=metrics, tags=new_tags)

    def hparams(self, trial_id: str, config: dict[str, Any]) -> None:
        """The trial's config for TensorBoard's HParams tab, which shows it beside the latest
        value of each of HPARAM_METRICS (the scalars log_epoch writes to the same folder)."""
        from torch.utils.tensorboard.summary import hparams

        # torch would log a bool as the number 1: as 'true'/'false' it stays a category.
        values = {
            k: v if isinstance(v, int | float | str) and not isinstance(v, bool) else fmt_value(v)
            for k, v in config.items()
        }
        board = self.board(trial_id)
        for summary in hparams(values, {k: 0.0 for k in HPARAM_METRICS}):
            board.file_writer.add_summary(summary)

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
        run_id = self.run_id(trial.trial_id, trial.config)
        run = self.client.get_run(run_id)
        summary, parameter_count = model_facts(trial.config, self.cfg.model)
        tags = {**version_tags(), "model_summary": summary, **dict(self.cfg.tags)}
        missing_tags = {k: v for k, v in tags.items() if k not in run.data.tags}
        self.describe(run_id, trial.config, missing_tags, parameter_count)
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
    unsaved: int = 0  # runs of trials Ray never saved (a driver killed as they started), deleted


def backfill(
    cfg: TrackingConfig, parent_run_id: str, trials: Iterable[Trial], parent_status: str | None
) -> Backfilled:
    """Make MLflow hold what the experiment folder holds, after a sweep whose tracking server
    was down for part of it (Flushed.missed): `hpo resume` calls this. The folder is the
    record of what happened; what MLflow holds already is left as it is, so this can run any
    number of times. `parent_status`: how the parent run ends if it is still RUNNING (a
    finished experiment's), or None to leave it."""
    writer = TrialWriter(cfg, parent_run_id)
    epochs = ended = 0
    saved = set()
    try:
        for trial in trials:
            saved.add(trial.trial_id)
            logged, closed = writer.backfill(trial)
            epochs, ended = epochs + logged, ended + closed
    finally:
        writer.close("interrupted")
    unsaved = delete_unsaved_trial_runs(cfg.tracking_uri, parent_run_id, saved)
    client = MlflowClient(cfg.tracking_uri)
    if parent_status and client.get_run(parent_run_id).info.status == "RUNNING":
        client.set_terminated(parent_run_id, parent_status)
        ended += 1
    return Backfilled(epochs, ended, unsaved)


class TrackingCallback(ray_tune.Callback):
    """Tune events -> MLflow runs and TensorBoard scalars, via the writer thread."""

    def __init__(self, cfg: TrackingConfig, parent_run_id: str) -> None:
        self.cfg = cfg
        self.parent_run_id = parent_run_id
        self._writer: TrialWriter | None = None
        self._versions = version_tags()

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment; a thread cannot be pickled, nor resumed.
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    @property
    def writer(self) -> TrialWriter:
        if self._writer is None:
            self._writer = TrialWriter(self.cfg, self.parent_run_id)
        return self._writer

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        trial_id, config = trial.trial_id, dict(trial.config)
        summary, parameter_count = model_facts(config, self.cfg.model)
        tags = {**self._versions, "model_summary": summary, **dict(self.cfg.tags)}
        self.writer.submit(self.writer.start, trial_id, config, tags, parameter_count)

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


def model_facts(config: dict[str, Any], shape: ModelShape | None) -> tuple[str, int | None]:
    """The model's one-line summary (a tag) and its parameter count (a metric). `shape`:
    the factory and the data (None: the built-in CNN on 28x28 images, 10 classes)."""
    import torch

    from models.cnn import count_parameters, summary
    from models.factory import BUILTIN_MODEL, build_model, parse_ref

    shape = shape or ModelShape(BUILTIN_MODEL, (), None, (1, 28, 28), 10)
    builtin = shape.factory == BUILTIN_MODEL
    if shape.input_shape is None and not builtin:
        return "unavailable: the data's shape is not known here", None
    # The built-in datasets are all 28x28 images of 10 classes.
    input_shape = shape.input_shape or (1, 28, 28)
    params = None if builtin else shape.params
    try:
        kwargs = hyperparams.model_kwargs(config, params)
        ref = parse_ref(shape.factory)
        # On the meta device: shapes and parameter counts without allocating the weights.
        with torch.device("meta"):
            model = build_model(ref, shape.search_dir, input_shape, shape.num_classes, kwargs)
            return summary(model), count_parameters(model)
    except Exception as e:  # the user's factory may not build on the meta device: no tag then
        return f"unavailable: {type(e).__name__}: {e}".splitlines()[0], None
