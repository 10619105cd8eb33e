"""`hpo confirm`: retrain a sweep's top configurations with fresh seeds, then test them once.

A sweep picks its winner from one run per configuration, so part of the winner's lead may be
the luck of its seed. Confirmation retrains each of the top K configurations S times with new
seeds (seed + 1 .. seed + S: the sweep's own seed gave the numbers that got it selected) to its
full epochs, as a Ray Tune run of its own in `<experiment>/confirm/`, recorded in MLflow under
the sweep's experiment. Each final model is evaluated once on the held-out test set, which no
sweep reads. The report ranks the configurations by their mean metric over the seeds.

The confirm folder holds an hpo_sweep.json like a sweep's (kind: confirm, with the candidates
and seeds), so `hpo status` and `hpo resume` work on it too.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tune.analysis import COMPLETED, Candidate, Confirmation, Trial, confirm, leaderboard
from tune.errors import Problem, SpecError
from tune.history import load_trials
from tune.hyperparams import RULES
from tune.runner import (
    RunOptions,
    SweepResult,
    _callbacks,
    _Sweep,
    check_cluster,
    quiet_logs,
    restore_tuner,
    start_ray,
    sweep_trainable,
)
from tune.spec import SweepSpec, spec_from_record
from tune.status import CONFIRM_DIR, SWEEP_FILE, fmt_value, read_sweep_record, save_sweep_record
from tune.tracking import (
    DIR_TAG,
    TrackingConfig,
    find_parent_run,
    reopen_run,
    start_parent_run,
    versions,
)
from tune.trainable import SEED_KEY

KIND = "confirm"
CANDIDATE_KEY = "candidate"  # in a confirm trial's config: the sweep rank it retrains
CONFIRM_OF_TAG = "hpo.confirm_of"  # on the confirm parent run: the sweep's parent run id


def confirm_dir(experiment_dir: Path) -> Path:
    return experiment_dir / CONFIRM_DIR


def is_confirm_record(record: dict[str, Any]) -> bool:
    return record.get("kind") == KIND


def seeds_for(spec: SweepSpec, count: int) -> list[int]:
    return [spec.seed + 1 + i for i in range(count)]


def pick_candidates(
    trials: list[Trial], metric: str, mode: str, top: int, source: str
) -> list[dict[str, Any]]:
    """The top `top` distinct configurations of the sweep's leaderboard."""
    seen: set[str] = set()
    picked: list[dict[str, Any]] = []
    for rank, t in enumerate(leaderboard(trials, metric, mode), start=1):
        config = {k: v for k, v in t.config.items() if k in RULES}
        key = repr(sorted((k, fmt_value(v)) for k, v in config.items()))
        if key in seen:
            continue
        seen.add(key)
        picked.append(
            {
                "rank": rank,
                "trial_id": t.trial_id,
                "config": config,
                "sweep_value": t.best(metric, mode),
            }
        )
        if len(picked) == top:
            return picked
    raise SpecError(
        source,
        [
            Problem(
                "--top",
                f"{top} configurations asked for, but only {len(picked)} trial(s) of the sweep reported {metric}",
                f"--top at most {len(picked)}" if picked else "run or resume the sweep first",
            )
        ],
    )


class _Pick:
    """A Ray Tune sample_from function: one hyperparameter of the candidate a trial retrains.
    (A class, not a lambda: Ray pickles the param space with the experiment.)"""

    def __init__(self, key: str, configs: dict[int, dict[str, Any]]) -> None:
        self.key, self.configs = key, configs

    def __call__(self, config: dict[str, Any]) -> Any:
        return self.configs[int(config[CANDIDATE_KEY])][self.key]


def param_space(candidates: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Every (candidate, seed) pair once; the hyperparameters follow from the candidate, so
    each trial's config (and its MLflow params) is flat and complete."""
    from ray import tune

    configs = {int(c["rank"]): dict(c["config"]) for c in candidates}
    keys = list(candidates[0]["config"])
    return {
        CANDIDATE_KEY: tune.grid_search(sorted(configs)),
        SEED_KEY: tune.grid_search(list(seeds)),
        **{k: tune.sample_from(_Pick(k, configs)) for k in keys},
    }


def build_tuner(
    record: dict[str, Any], spec: SweepSpec, folder: Path, callbacks: list[Any], options: RunOptions
) -> Any:
    from ray import tune

    return tune.Tuner(
        sweep_trainable(spec, options, test_at_end=True),
        param_space=param_space(record["candidates"], record["seeds"]),
        tune_config=tune.TuneConfig(
            metric=spec.metric.name,
            mode=spec.metric.mode,
            num_samples=1,
            max_concurrent_trials=spec.max_concurrent_trials,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=folder.name,
            storage_path=str(folder.parent),
            callbacks=_callbacks(callbacks, None),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            verbose=1 if options.verbose else 0,
        ),
    )


def new_record(
    sweep_record: dict[str, Any],
    spec: SweepSpec,
    candidates: list[dict[str, Any]],
    seeds: list[int],
) -> dict[str, Any]:
    return {
        "kind": KIND,
        "name": f"{spec.name}/{CONFIRM_DIR}",
        "source": spec.source,
        "metric": spec.metric.name,
        "mode": spec.metric.mode,
        "max_epochs": max(int(c["config"]["epochs"]) for c in candidates),
        "trial_count": len(candidates) * len(seeds),
        "tracking_uri": sweep_record["tracking_uri"],
        "parent_run_id": None,
        "sweep_parent_run_id": sweep_record.get("parent_run_id"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "top": len(candidates),
        "seeds": seeds,
        "candidates": candidates,
        "spec": asdict(spec),
    }


def run_confirm(experiment_dir: Path, top: int, seeds: int, options: RunOptions) -> SweepResult:
    """Start the confirm run of a sweep (refused by the CLI when one exists already)."""
    sweep_record, trials = load_trials(experiment_dir)
    spec = spec_from_record(sweep_record["spec"])
    candidates = pick_candidates(
        trials, spec.metric.name, spec.metric.mode, top, str(experiment_dir)
    )
    quiet_logs(options.verbose)
    start_ray(options)
    check_cluster(spec)
    folder = confirm_dir(experiment_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record = new_record(sweep_record, spec, candidates, seeds_for(spec, seeds))
    save_sweep_record(folder, record)
    tracking = _tracking(record, spec, folder)
    record["parent_run_id"] = _parent_run(tracking, record, folder)
    save_sweep_record(folder, record)
    sweep = _sweep(record, spec, folder, options, tracking)
    return sweep.fit(lambda: build_tuner(record, spec, folder, sweep.callbacks, options))


def resume_confirm(folder: Path, options: RunOptions) -> SweepResult:
    """Continue an interrupted confirm run where it stopped."""
    from ray import tune

    record = read_sweep_record(folder)
    spec = spec_from_record(record["spec"])
    options = replace(options, tracking_uri=record["tracking_uri"])
    quiet_logs(options.verbose)
    start_ray(options)
    check_cluster(spec)
    tracking = _tracking(record, spec, folder)
    if record["parent_run_id"] is None:
        record["parent_run_id"] = find_parent_run(
            record["tracking_uri"], spec.name, str(folder)
        ) or _parent_run(tracking, record, folder)
        save_sweep_record(folder, record)
    reopen_run(record["tracking_uri"], record["parent_run_id"])
    sweep = _sweep(record, spec, folder, options, tracking)

    def tuner() -> Any:
        if not tune.Tuner.can_restore(str(folder)):
            return build_tuner(record, spec, folder, sweep.callbacks, options)
        trainable = sweep_trainable(spec, options, test_at_end=True)
        return restore_tuner(folder, trainable, sweep.callbacks)

    return sweep.fit(tuner)


def _tracking(record: dict[str, Any], spec: SweepSpec, folder: Path) -> TrackingConfig:
    # The sweep's MLflow experiment; TensorBoard files beside the confirm trials.
    return TrackingConfig(record["tracking_uri"], spec.name, str(folder / "tensorboard"))


def _parent_run(tracking: TrackingConfig, record: dict[str, Any], folder: Path) -> str:
    params = {
        "top": record["top"],
        "seeds": ",".join(str(s) for s in record["seeds"]),
        "candidates": ",".join(f"#{c['rank']} {c['trial_id']}" for c in record["candidates"]),
        "metric": f"{record['metric']} ({record['mode']})",
    }
    tags = {**versions(), DIR_TAG: str(folder), CONFIRM_OF_TAG: str(record["sweep_parent_run_id"])}
    return start_parent_run(tracking, params, tags, run_name=f"{tracking.experiment}-confirm")


def _sweep(
    record: dict[str, Any],
    spec: SweepSpec,
    folder: Path,
    options: RunOptions,
    tracking: TrackingConfig,
) -> _Sweep:
    # No time budget and no early stopping: every seed runs its configuration to the end.
    plain = replace(spec, name=record["name"], time_budget_s=None, scheduler=None)
    return _Sweep(
        plain, folder, options, tracking, record["parent_run_id"], trial_count=record["trial_count"]
    )


def existing(experiment_dir: Path) -> dict[str, Any] | None:
    """The record of the experiment's confirm run, if it has one."""
    path = confirm_dir(experiment_dir) / SWEEP_FILE
    return read_sweep_record(path.parent) if path.is_file() else None


def load_confirmation(experiment_dir: Path) -> Confirmation | None:
    """What the confirm run found so far: per candidate, the metric at the last epoch and the
    test metrics of every seed that completed. None without a confirm run."""
    record = existing(experiment_dir)
    if record is None:
        return None
    try:
        _, trials = load_trials(confirm_dir(experiment_dir))
    except RuntimeError:
        trials = []  # started, but Ray saved nothing yet
    candidates = []
    for c in record["candidates"]:
        done = [
            t
            for t in trials
            if int(t.config.get(CANDIDATE_KEY, -1)) == int(c["rank"])
            and t.state == COMPLETED
            and t.last("test_accuracy") is not None
        ]
        candidates.append(
            Candidate(
                rank=int(c["rank"]),
                trial_id=str(c["trial_id"]),
                config=dict(c["config"]),
                sweep_value=float(c["sweep_value"]),
                metric=[t.last(record["metric"]) or 0.0 for t in done],
                test_accuracy=[t.last("test_accuracy") or 0.0 for t in done],
                test_loss=[t.last("test_loss") or 0.0 for t in done],
            )
        )
    return replace(confirm(candidates, record["mode"]), run_id=record.get("parent_run_id"))
