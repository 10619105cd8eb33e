"""`hpo confirm`: retrain a sweep's top configurations with fresh seeds, then test them once.

A sweep picks its winner from one run per configuration, so part of the winner's lead may be
the luck of its seed. Confirmation retrains each of the top K configurations S times with new
seeds (seed + 1 .. seed + S: the sweep's own seed gave the numbers that got it selected) to its
full epochs, as a Ray Tune run of its own in `<experiment>/confirm/`, recorded in MLflow under
the sweep's experiment. Each final model is evaluated once on the held-out test set, which no
sweep reads. The report ranks the configurations by their mean metric over the seeds.

The confirm folder holds a record like a sweep's (kind confirm, with the candidates and seeds),
so `hpo status` and `hpo resume` work on it too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import tune as ray_tune

from tune.analysis import leaderboard
from tune.core import trust
from tune.core.errors import InputError, Problem, UsageError
from tune.core.text import fmt_value
from tune.run.aside import set_aside
from tune.run.experiment import Plan, RunResult, is_finished, run_experiment
from tune.run.process import RunOptions
from tune.run.sweep import bound
from tune.run.trainable import SEED_KEY
from tune.run.trial import trial_settings
from tune.space.hyperparams import RULES
from tune.store import records
from tune.store.records import CANDIDATE_KEY, CONFIRM, Candidate, ExperimentRecord
from tune.store.runs import source_tags, version_tags
from tune.store.trials import Trial, load_trials

CONFIRM_OF_TAG = "hpo.confirm_of"  # on the confirm parent run: the sweep's parent run id


def seeds_for(sweep_seed: int, count: int) -> tuple[int, ...]:
    return tuple(sweep_seed + 1 + i for i in range(count))


def pick_candidates(
    trials: list[Trial],
    metric: str,
    mode: str,
    top: int,
    source: str,
    hyperparameters: Collection[str] = RULES,
) -> tuple[Candidate, ...]:
    """The top `top` distinct configurations of the sweep's leaderboard; a configuration is
    its `hyperparameters` (the spec's search keys)."""
    seen: set[str] = set()
    picked: list[Candidate] = []
    for rank, t in enumerate(leaderboard(trials, metric, mode), start=1):
        config = {k: v for k, v in t.config.items() if k in hyperparameters}
        key = repr(sorted((k, fmt_value(v)) for k, v in config.items()))
        if key in seen:
            continue
        seen.add(key)
        picked.append(Candidate(rank, t.trial_id, config, t.best(metric, mode) or 0.0))
        if len(picked) == top:
            return tuple(picked)
    raise InputError(
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


def param_space(candidates: tuple[Candidate, ...], seeds: tuple[int, ...]) -> dict[str, Any]:
    """Every (candidate, seed) pair once; the hyperparameters follow from the candidate, so
    each trial's config (and its MLflow params) is flat and complete."""
    configs = {c.rank: dict(c.config) for c in candidates}
    keys = list(candidates[0].config)
    return {
        CANDIDATE_KEY: ray_tune.grid_search(sorted(configs)),
        SEED_KEY: ray_tune.grid_search(list(seeds)),
        **{k: ray_tune.sample_from(_Pick(k, configs)) for k in keys},
    }


def plan(record: ExperimentRecord, options: RunOptions) -> Plan:
    """Every seed runs its configuration to the end: no searcher, no ASHA, no time budget;
    each trial ends with its one test-set evaluation."""
    settings = replace(trial_settings(record.spec, options), test_at_end=True)
    candidates = ",".join(f"#{c.rank} {c.trial_id}" for c in record.candidates)
    trainable, model = bound(settings)
    return Plan(
        trainable=trainable,
        model=model,
        param_space=param_space(record.candidates, record.seeds),
        checkpoint_metric=False,
        run_name=f"{record.spec.name}-confirm",
        params={
            "top": len(record.candidates),
            "seeds": ",".join(str(s) for s in record.seeds),
            "candidates": candidates,
            "metric": f"{record.metric} ({record.mode})",
        },
        tags={
            **version_tags(),
            **source_tags(record.spec),
            CONFIRM_OF_TAG: str(record.sweep_parent_run_id),
        },
        varied=(CANDIDATE_KEY, SEED_KEY),
    )


def start_or_continue(
    experiment: Path,
    record: ExperimentRecord,
    top: int,
    seeds: int,
    overwrite: bool,
    options: Callable[[], RunOptions],
) -> RunResult | None:
    """`hpo confirm`: start the sweep's confirm run, continue it, or (`overwrite`) replace it;
    None when it is finished already and only the report is due. `options` sets the process up
    for Ray, only when something will run."""
    earlier = records.confirm_record(experiment)
    folder = records.confirm_dir(experiment)
    if earlier is not None and not overwrite:
        if (len(earlier.candidates), len(earlier.seeds)) != (top, seeds):
            raise UsageError(
                f"{folder} already holds a confirm run with --top {len(earlier.candidates)} "
                f"--seeds {len(earlier.seeds)}: run that again to continue it, or add --overwrite"
            )
        if is_finished(folder):
            print(f"hpo: '{record.name}' is confirmed already; writing the report again.")
            return None
        if not started_here(earlier, folder):
            # Continuing unpickles Ray's state in the folder: only by the user's explicit word.
            raise UsageError(
                f"{folder} holds an unfinished confirm run that hpo on this machine did not "
                "start (a folder from elsewhere, copied or moved); continuing it runs what its "
                f"saved state says: if you trust it, `hpo resume {folder}`; or start it again "
                "with --overwrite"
            )
        run = options()
        print(f"hpo: continuing the confirm run in {folder}")
        return run_experiment(earlier, folder, plan(earlier, run), run)
    new = new_confirm(experiment, top, seeds)  # refuses a --top too large
    run = options()
    aside = set_aside(folder, record.spec, run)
    print(
        f"hpo: confirm '{record.name}': the top {top} configurations x {seeds} "
        f"fresh seeds, full epochs, then one test-set evaluation each; results in {folder}",
        flush=True,
    )
    return run_experiment(new, folder, plan(new, run), run, replacing=aside)


def new_confirm(experiment: Path, top: int, seeds: int) -> ExperimentRecord:
    """The record of a new confirm run of the sweep in `experiment`: its top `top` distinct
    configurations, each with `seeds` fresh seeds (InputError when the sweep has fewer)."""
    sweep, trials = load_trials(experiment)
    spec = sweep.spec
    record = records.new_record(
        spec,
        sweep.tracking_uri,
        kind=CONFIRM,
        candidates=pick_candidates(
            trials, spec.metric.name, spec.metric.mode, top, str(experiment), spec.search.keys()
        ),
        seeds=seeds_for(spec.seed, seeds),
        sweep_parent_run_id=sweep.parent_run_id,
    )
    return sealed(record, records.confirm_dir(experiment))


def sealed(record: ExperimentRecord, folder: Path) -> ExperimentRecord:
    """The confirm run's record with this machine's seal (tune/core/trust.py): `hpo confirm` may
    continue it by itself."""
    return replace(record, sealed=trust.seal(folder, record.started))


def started_here(record: ExperimentRecord, folder: Path) -> bool:
    """Whether hpo on this machine started (or was told to resume) the confirm run."""
    return trust.started_here(folder, record.started, record.sealed)
