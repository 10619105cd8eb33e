"""One way to run an experiment, new or resumed: sweeps and confirm runs both come through here.

`run_experiment` takes the record, the folder and a Plan (what the experiment searches and how)
and does the same steps for every kind (docs/architecture.md, "The run path"): start or join
Ray, check that one trial fits the cluster, write the record, find or create the MLflow parent
run, build a Tuner (or restore the one Ray saved in the folder), fit, and read back what Ray
saved. However fit() ends, the parent run gets its status and every tracking write is flushed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ray import tune as ray_tune

from tune.cluster import nodes
from tune.core import signals, states
from tune.core.errors import InputError
from tune.core.files import inside
from tune.run import extend, moved, old_paths, uploads
from tune.run.aside import Aside, discard_runs, put_back
from tune.run.process import RunOptions, preflight
from tune.run.progress import ProgressCallback
from tune.run.scheduling import SchedulerState
from tune.run.tracking import Backfilled, TrackingCallback, backfill
from tune.space.spec import ResourcesSpec, SweepSpec
from tune.store import checkpoints, records, snapshots, storage
from tune.store.records import ExperimentRecord
from tune.store.rows import TrialRow, experiment_rows
from tune.store.runs import (
    DIR_TAG,
    ModelShape,
    NewStore,
    TrackingConfig,
    end_run,
    find_parent_run,
    foreign_run,
    reopen_run,
    source_tags,
    start_parent_run,
)
from tune.store.snapshots import SnapshotBackup
from tune.store.trials import load_trials

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What differs between kinds of experiment: the search, and the MLflow parent run."""

    trainable: Any  # the function Ray runs a trial with, its settings bound
    param_space: dict[str, Any]
    searcher: Any = None  # None: Ray's own (every grid point, num_samples times)
    scheduler: Any = None  # ASHA, or None: every trial runs all its epochs
    num_samples: int = 1
    time_budget_s: float | None = None
    checkpoint_metric: bool = True  # keep the best epoch's checkpoint besides the latest
    run_name: str = ""  # the parent run's name in MLflow
    params: dict[str, Any] = field(default_factory=dict)  # the parent run's params
    tags: dict[str, str] = field(default_factory=dict)  # the parent run's tags
    varied: tuple[str, ...] = ()  # the config keys a trial's run name shows
    model: ModelShape | None = None  # the factory and data shape; None: the built-in CNN's
    fresh_budget: bool = False  # a restored time budget starts whole again (`hpo extend`)


@dataclass(frozen=True)
class RunResult:
    experiment_dir: Path
    parent_run_id: str
    rows: list[TrialRow]  # best first
    best: TrialRow | None
    errors: int
    unfinished: int  # trials left pending or running
    interrupted: bool  # unfinished trials and no time budget to explain them: Ctrl+C
    # A SIGINT or SIGTERM reached fit(), also one that came as its last trial ended: the
    # command exits 130 or 143 whatever its trials' states (which `interrupted` says).
    signalled: bool
    budget_hit: bool  # time_budget_s ran out
    tracking_failures: int  # writes the tracking store refused
    tracking_missed: int  # writes it never got: it could not be reached (a resume logs them)
    caught_up: Backfilled  # what a resume logged that MLflow had missed before
    seconds: float
    # Ray's last copy of its state into the folder failed (a full disk): why. The folder keeps
    # the state before, whose unfinished trials are no interruption; `hpo resume` continues it.
    unsaved: str = ""


def run_experiment(
    record: ExperimentRecord,
    folder: Path,
    plan: Plan,
    options: RunOptions,
    restart_errored: bool = False,
    replacing: Aside | None = None,
) -> RunResult:
    """Run the experiment in `folder`, or continue it where Ray's saved state stopped: finished
    trials stay, unfinished and errored ones go on from their last checkpoint (errored ones from
    scratch with `restart_errored`), and the searcher and ASHA continue their state.
    `replacing`: the experiment --overwrite moved aside; back it goes if this one cannot start."""
    # Ray saved state here: continue it. Else a new experiment, or one killed before Ray saved
    # anything: its trials start afresh.
    storage.pull(folder)  # a bucket's mirror catches up first
    uploads.install()  # a kill during Ray's copy into the folder cuts no file short
    restoring = ray_tune.Tuner.can_restore(storage.ray_path(folder))
    record = _start(record, folder, plan, options, restoring, replacing)
    caught_up = Backfilled(0, 0)
    if restoring:
        caught_up = _catch_up(record, folder, plan.model)
    if nodes.in_job():
        print(nodes.STARTED, flush=True)  # `hpo submit` waits for this line
    tracker = TrackingCallback(
        TrackingConfig(
            record.tracking_uri,
            record.spec.name,
            str(records.tensorboard_dir(folder)),
            varied=plan.varied,
            model=plan.model,
            tags=tuple(source_tags(record.spec).items()),
        ),
        str(record.parent_run_id),
    )
    progress = ProgressCallback(
        record.name, record.metric, record.mode, record.trial_count, options.progress_interval
    )
    ours = [tracker, progress]
    trainable = ray_tune.with_resources(plan.trainable, _resources(record.spec.resources))

    def tuner() -> Any:
        if restoring:
            # A confirm run's space picks each hyperparameter with a function of the trial's
            # candidate (sample_from); Ray forgets the space on restore, so it is given again,
            # or the trials not created yet would get Ray's placeholders as values. A sweep's
            # searcher keeps its own space (and Optuna's refuses a second one).
            space = plan.param_space if plan.searcher is None else None
            # A sweep creates the trials its record counts, extensions included (extend.py).
            count = None if record.is_confirm else record.spec
            return restore_tuner(
                folder, trainable, ours, restart_errored, space, count, plan.fresh_budget
            )
        return _new_tuner(record, folder, plan, trainable, ours, options)

    return replace(_fit(tuner, record, folder, plan, tracker), caught_up=caught_up)


def _start(
    record: ExperimentRecord,
    folder: Path,
    plan: Plan,
    options: RunOptions,
    restoring: bool,
    replacing: Aside | None,
) -> ExperimentRecord:
    """Everything before the Tuner: Ray up and the trial fitting it, Ray's saved state and
    checkpoints repaired and checked (`restoring`), the MLflow store and parent run. Undone if
    any of it fails: the experiment --overwrite moved aside comes back, a new folder goes.
    Once all of it passed, the replaced experiment's MLflow runs are soft-deleted."""
    fresh = not folder.exists()
    # A new SQLite store takes MLflow 1-2 s to build: that happens while Ray starts, and the
    # store is put in place once the checks passed (bench/sweep_overhead.py).
    store = NewStore(record.tracking_uri).start()
    try:
        preflight(record.spec, options, folder.parent)
        if restoring and storage.remote_of(folder) is None:
            repair_snapshot(folder)
            # In a bucket, each trial still checks its own checkpoint before loading it.
            repair_checkpoints(folder)
            check_checkpoints(folder)
        store.install()
        record = _with_parent_run(record, folder, plan)
    except BaseException:
        store.discard()
        if replacing is not None:
            put_back(replacing)
        elif fresh:
            records.forget(folder)  # a start that failed leaves no experiment to trip over
        raise
    if replacing is not None:
        discard_runs(replacing)
    return record


def _with_parent_run(record: ExperimentRecord, folder: Path, plan: Plan) -> ExperimentRecord:
    """The record, saved, with its MLflow parent run. The record is written before the run is
    created and again after: a kill in between leaves a folder that a resume completes, finding
    the run by its folder tag."""
    # Only an experiment that was there before (killed before it recorded its run id) looks
    # its run up by folder: a new one must never adopt the run of an experiment that used the
    # same folder before (moved aside by --overwrite, or deleted by hand).
    existed = records.exists(folder)
    run_id = record.parent_run_id
    if run_id is not None and (foreign := foreign_run(record.tracking_uri, run_id, folder)):
        # A copy of another experiment's folder: its runs stay the original's; this folder
        # becomes an experiment of its own in MLflow (its trials logged anew from the folder).
        print(f"hpo: {foreign}; this folder gets a parent run of its own", flush=True)
        record = replace(record, parent_run_id=None)
        run_id = None
    records.save(folder, record)
    if run_id is None and existed:
        run_id = find_parent_run(record.tracking_uri, record.spec.name, str(folder))
    if run_id is None:
        tracking = TrackingConfig(record.tracking_uri, record.spec.name, "")
        tags = {**plan.tags, DIR_TAG: str(folder)}
        run_id = start_parent_run(tracking, plan.params, tags, run_name=plan.run_name)
    else:
        reopen_run(record.tracking_uri, run_id, _extension_tags(record))
    if run_id != record.parent_run_id:
        record = replace(record, parent_run_id=run_id)
        records.save(folder, record)
    return record


def _extension_tags(record: ExperimentRecord) -> dict[str, str]:
    """An extended sweep's parent run says by how much (MLflow's params cannot change)."""
    if not record.extended:
        return {}
    return {
        "hpo.extended": ", ".join(f"+{n}" for n in record.extended),
        "hpo.num_samples": str(record.spec.num_samples),
    }


def _fit(
    make_tuner: Callable[[], Any],
    record: ExperimentRecord,
    folder: Path,
    plan: Plan,
    tracker: TrackingCallback,
) -> RunResult:
    start = time.monotonic()
    status, open_outcome = "FAILED", "interrupted"
    rows: list[TrialRow] = []
    before = signals.fit_starts()
    try:
        make_tuner().fit()
        # Read back what Ray saved, not its in-memory trials: on Ctrl+C (SIGINT) Ray ends fit()
        # early and marks the trials it stopped TERMINATED in memory, while its saved state
        # (what a resume continues from) keeps them PENDING or RUNNING.
        storage.pull(folder)
        _, rows = experiment_rows(folder)
        unfinished = sum(r.state in states.UNFINISHED for r in rows)
        budget = plan.time_budget_s
        budget_hit = budget is not None and time.monotonic() - start >= budget
        unsaved = str(failure) if (failure := uploads.last_failure()) else ""
        interrupted = unfinished > 0 and not budget_hit and not unsaved
        status = "FAILED" if unsaved else "KILLED" if interrupted else "FINISHED"
        if budget_hit:
            open_outcome = "stopped_early"  # Ray never reports budget-ended trials complete
            # What it created is all it will have: status, report and resume read this.
            record = replace(record, budget_ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
            records.save(folder, record)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        flushed = tracker.close(open_outcome)
        storage.push(folder, records.TENSORBOARD_DIR)
        failed, missed = flushed.failed, flushed.missed
        if missed:
            missed += 1  # the store is down: the parent run's end waits for a resume too
        else:
            failed += _end_parent_run(record, status, rows)
        # Only now: until here Ray's SIGINT handler notes a signal and lets the writes finish.
        signalled = signals.fit_ended(before)
    return RunResult(
        experiment_dir=folder,
        parent_run_id=str(record.parent_run_id),
        rows=rows,
        best=next((r for r in rows if r.best is not None), None),
        errors=sum(r.state == states.ERROR for r in rows),
        unfinished=unfinished,
        interrupted=interrupted,
        signalled=signalled,
        budget_hit=budget_hit,
        tracking_failures=failed,
        tracking_missed=missed,
        caught_up=Backfilled(0, 0),
        seconds=time.monotonic() - start,
        unsaved=unsaved,
    )


def _end_parent_run(record: ExperimentRecord, status: str, rows: list[TrialRow]) -> int:
    """End the parent run with the sweep's results; 1 if the store failed (a warning says)."""
    try:
        results = {} if record.is_confirm else sweep_results(rows, record.metric)
        end_run(record.tracking_uri, str(record.parent_run_id), status, results)
        return 0
    except Exception as e:  # a dead tracking server must not hide how the sweep ended
        log.warning("MLflow: could not end the parent run: %s", e)
        return 1


def sweep_results(rows: list[TrialRow], metric: str) -> dict[str, float]:
    """A sweep parent run's metrics: its best value and how many trials ran all their epochs.
    (A confirm run's are its mean test accuracy and the like, logged with its report.)"""
    if not rows:
        return {}  # fit failed before reading back: leave what an earlier run logged
    best = next((r.best for r in rows if r.best is not None), None)
    results = {"trials_completed": float(sum(r.state == states.COMPLETED for r in rows))}
    return results if best is None else {f"best_{metric}": best, **results}


def _resources(resources: ResourcesSpec) -> dict[str, float]:
    return {"cpu": resources.cpu, "gpu": resources.gpu}


def _callbacks(ours: list[Any], asha: Any, folder: Path) -> list[Any]:
    """Ray's JSON and CSV loggers, ours, ASHA's memory, and (in a folder, not a bucket) the
    copy of Ray's last whole snapshot: always in this order, because Ray restores callback
    states by position (the last one has none)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    local = [SnapshotBackup(folder)] if storage.remote_of(folder) is None else []
    return [JsonLoggerCallback(), CSVLoggerCallback(), *ours, SchedulerState(asha), *local]


def _new_tuner(
    record: ExperimentRecord,
    folder: Path,
    plan: Plan,
    trainable: Any,
    ours: list[Any],
    options: RunOptions,
) -> Any:
    spec = record.spec
    # Keep the best epoch's checkpoint by the metric, besides the latest (which Ray always
    # keeps, for resume); or just the latest.
    score = record.metric if plan.checkpoint_metric else None
    return ray_tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=ray_tune.TuneConfig(
            metric=record.metric,
            mode=record.mode,
            search_alg=plan.searcher,
            scheduler=plan.scheduler,
            num_samples=plan.num_samples,
            max_concurrent_trials=spec.max_concurrent_trials,
            time_budget_s=plan.time_budget_s,
            # A new actor costs ~4 s of start-up per trial; reusing actors cut a sweep's
            # overhead from 8.9x to 2.8x the ideal (BENCHMARKS.md, "Sweep overhead").
            reuse_actors=options.reuse_actors,
        ),
        run_config=ray_tune.RunConfig(
            name=folder.name,
            storage_path=storage.ray_path(folder.parent),
            callbacks=_callbacks(ours, plan.scheduler, folder),
            failure_config=ray_tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=ray_tune.CheckpointConfig(
                num_to_keep=1, checkpoint_score_attribute=score, checkpoint_score_order=record.mode
            ),
            verbose=1 if options.verbose else 0,  # Ray's own status table only with --verbose
        ),
    )


def restore_tuner(
    folder: Path,
    trainable: Any,
    ours: list[Any],
    restart_errored: bool = False,
    param_space: dict[str, Any] | None = None,
    count: SweepSpec | None = None,
    fresh_budget: bool = False,
) -> Any:
    """Ray's Tuner for an experiment folder it saved, with our callbacks in place of the
    pickled copies: finished trials stay, unfinished and errored ones continue. (Its
    checkpoints were repaired and checked by then: run_experiment.) `param_space`: the
    experiment's own, for one whose space holds functions (Ray's saved state has placeholders).
    `count`: the spec whose trial count the searcher is set to, and `fresh_budget`: whether its
    time budget starts whole again (both for `hpo extend`: tune/run/extend.py)."""
    old_paths.install()  # a folder made before tune/ was grouped by layer names old modules
    moved.install()  # a moved or copied folder's later trials go where it is now
    extend.install()  # after moved's: a new iterator copies a spec that points here already
    extend.expect(count, fresh_budget)
    restored = ray_tune.Tuner.restore(
        storage.ray_path(folder),
        trainable=trainable,
        param_space=param_space,
        resume_unfinished=True,
        resume_errored=not restart_errored,
        restart_errored=restart_errored,
    )
    # The restored run config holds unpickled copies of the first run's callbacks; ours must
    # be the ones Ray calls, so that closing them drains their MLflow queue. (Tuner has no
    # public setter; Ray is pinned to 2.60.)
    internal = restored._local_tuner
    if internal is None:
        raise RuntimeError("Tuner.restore gave no local tuner (Ray changed?)")
    asha = internal._tune_config.scheduler  # the restored ASHA; its rungs come back
    internal.get_run_config().callbacks = _callbacks(ours, asha, folder)
    return restored


def repair_snapshot(folder: Path) -> None:
    """A disk that filled up while Ray wrote its snapshot left it cut short: the last whole
    one comes back (tune/store/snapshots.py), before anything reads Ray's state."""
    if storage.remote_of(folder) is None and (whole_again := snapshots.repair(folder)):
        print(f"hpo: Ray's last snapshot was cut short; put back the one before it "
              f"({', '.join(whole_again)})", flush=True)  # fmt: skip


def repair_checkpoints(folder: Path) -> list[str]:
    """Undo what a driver killed mid-step, or a full disk, leaves in the trials Ray goes on
    with (tune/store/checkpoints.py: end_cut_lines, put_back_lost, mark_unreported); returns
    the ids of the trials whose checkpoint it repaired."""
    repaired = []
    for trial in ray_tune.ExperimentAnalysis(str(folder)).trials:
        trial_dir = inside(folder, Path(trial.path).name) if trial.path else None
        if trial_dir is None:
            continue
        # A finished trial is not run again: only its missing checkpoint matters (the check).
        unfinished = trial.status != states.COMPLETED
        if unfinished:
            checkpoints.end_cut_lines(trial_dir)
        if trial.checkpoint is None:
            continue
        path = Path(trial.checkpoint.path)
        if checkpoints.put_back_lost(path) or (unfinished and checkpoints.mark_unreported(path)):
            repaired.append(trial.trial_id)
    return repaired


def check_checkpoints(folder: Path) -> None:
    """Every checkpoint Ray's state points at is there and is the file that was written
    (tune/store/checkpoints.py); else exit 2 with a line for each, before anything runs."""
    problems = [
        replace(p, path=str(Path(p.path).relative_to(folder)))
        for trial in ray_tune.ExperimentAnalysis(str(folder)).trials
        if trial.checkpoint is not None
        and (p := checkpoints.problem(Path(trial.checkpoint.path))) is not None
    ]
    if problems:
        raise InputError(str(folder), problems)


# -- the experiment folder ----------------------------------------------------------------------


def has_saved_state(folder: Path) -> bool:
    """Whether Ray saved the experiment's state in `folder` (a Tuner to restore)."""
    storage.pull(folder)
    return bool(ray_tune.Tuner.can_restore(storage.ray_path(folder)))


def is_finished(folder: Path) -> bool:
    """Whether a resume has nothing left to do: Ray saved its state, every trial the
    experiment will ever have exists (those of num_samples, or the ones it had when its time
    budget ended it), and none is pending, running or errored."""
    if not ray_tune.Tuner.can_restore(storage.ray_path(folder)):
        return False
    storage.pull(folder)
    repair_snapshot(folder)  # asked first by resume and confirm: it reads Ray's state
    record, rows = experiment_rows(folder)
    left = [r for r in rows if r.state in (*states.RESUMABLE, states.ERROR)]
    return not left and len(rows) >= record.expected_trials(len(rows))


def catch_up(
    record: ExperimentRecord, folder: Path, finished: bool, model: ModelShape | None = None
) -> Backfilled:
    """Log into MLflow what the folder holds (a bucket's mirror: pulled by the caller) and
    MLflow missed while it could not be reached (tracking.backfill); a `finished`
    experiment's parent run is ended, if that was missed too. `model`: the factory and the
    data's shape, where the caller read the data (else the record's factory, shape unknown)."""
    _, trials = load_trials(folder)
    tracking = TrackingConfig(
        record.tracking_uri,
        record.spec.name,
        str(records.tensorboard_dir(folder)),
        model=model or recorded_model(record.spec),
        tags=tuple(source_tags(record.spec).items()),
    )
    ending = "FINISHED" if finished else None
    return backfill(tracking, str(record.parent_run_id), trials, parent_status=ending)


def recorded_model(spec: SweepSpec) -> ModelShape:
    """The model factory of a recorded sweep, without its data's shape (no data is read)."""
    code = spec.model.code
    return ModelShape(
        spec.model.factory, spec.model.params, code.search_dir if code else None, None, 10
    )


def _catch_up(record: ExperimentRecord, folder: Path, model: ModelShape | None) -> Backfilled:
    """catch_up before a resume trains: a failure is a warning, never the end of the resume."""
    try:
        return catch_up(record, folder, finished=False, model=model)
    except Exception as e:
        log.warning("MLflow: could not log what it missed before: %s", e)
        return Backfilled(0, 0)
