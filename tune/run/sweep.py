"""A sweep: from a validated SweepSpec to the Ray Tune pieces that search it.

The param space (our YAML's distributions as Ray Tune domains), the searcher, ASHA, the
settings every trial shares and the MLflow parent run's params; tune/run/experiment.py runs them.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import tune as ray_tune

from models.data import read_raw
from models.factory import CodeError
from models.sources import DataError
from tune.core.errors import InputError, Problem
from tune.run.aside import Aside
from tune.run.experiment import Plan, RunResult, run_experiment
from tune.run.process import RunOptions
from tune.run.scheduling import scheduler
from tune.run.trainable import train_trial
from tune.run.trial import TrialSettings, trial_settings
from tune.run.warm_start import WarmStart
from tune.space.distributions import Distribution
from tune.space.grid import grid_points
from tune.space.hyperparams import grid_values
from tune.space.spec import SweepSpec
from tune.store import records
from tune.store.runs import ModelShape, source_tags, version_tags

# --smoke: every trial path once, in seconds.
SMOKE = {"epochs": 2, "train_steps": 5, "eval_steps": 2, "num_samples": 2, "grid_values": 2}


def smoke_variant(spec: SweepSpec) -> SweepSpec:
    """The same sweep cut to a quick end-to-end check: 2 short epochs of 5 batches, at most 2
    samples, every grid cut to its first 2 values, ASHA's grace period within the 2 epochs."""

    def shrink(value: Any) -> Any:
        if isinstance(value, Distribution) and (
            value.kind == "grid" or spec.search_algorithm == "grid"
        ):
            values = grid_values(value) or value.values
            return Distribution("grid", tuple(values[: SMOKE["grid_values"]]))
        return value

    search = {key: shrink(value) for key, value in spec.search.items()}
    search["epochs"] = min(spec.max_epochs, SMOKE["epochs"])
    return replace(
        spec,
        name=f"{spec.name}_smoke",
        search=search,
        dataset=replace(
            spec.dataset, train_steps=SMOKE["train_steps"], eval_steps=SMOKE["eval_steps"]
        ),
        num_samples=min(spec.num_samples, SMOKE["num_samples"]),
        scheduler=spec.scheduler and replace(spec.scheduler, grace_period=1),
    )


# -- Ray Tune pieces ---------------------------------------------------------------------------


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Every hyperparameter as a constant or a Ray Tune domain. randint is inclusive in our
    YAML and exclusive in Ray, hence high + 1. The grid algorithm enumerates every entry."""
    space: dict[str, Any] = {}
    for key, value in spec.search.items():
        if not isinstance(value, Distribution):
            space[key] = value
        elif value.kind == "grid" or spec.search_algorithm == "grid":
            space[key] = ray_tune.grid_search(list(grid_values(value) or ()))
        elif value.kind == "choice":
            space[key] = ray_tune.choice(list(value.values))
        elif value.kind == "uniform":
            space[key] = ray_tune.uniform(value.low, value.high)
        elif value.kind == "loguniform":
            space[key] = ray_tune.loguniform(value.low, value.high)
        elif value.kind == "randint":
            space[key] = ray_tune.randint(int(value.low), int(value.high) + 1)
    return space


def searcher(spec: SweepSpec, warm: WarmStart | None = None) -> Any:
    if spec.search_algorithm == "optuna":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        # Ray's default sampler is this one with Optuna's 10 start-up trials; the YAML sets them.
        sampler = TPESampler(n_startup_trials=spec.startup_trials, seed=spec.seed)
        if warm is not None and warm.points:
            # The earlier trials, added to the study as completed ones before it asks for any.
            # Seeded as the earlier sweep was, the sampler's random start-up trials would repeat
            # its first ones (seen: 2 of 2 were copies), so it gets a seed of its own.
            seed = zlib.crc32(f"{spec.seed} warm-started from {warm.name}".encode())
            sampler = TPESampler(n_startup_trials=spec.startup_trials, seed=seed)
            return OptunaSearch(
                sampler=sampler,
                points_to_evaluate=[dict(p) for p in warm.points],
                evaluated_rewards=list(warm.values),
            )
        return OptunaSearch(sampler=sampler)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # Ray applies TuneConfig's max_concurrent_trials to a Searcher (Optuna's), but ignores it,
    # with a warning, for a generator passed in: the generator keeps to it itself.
    limit = spec.max_concurrent_trials or 0  # 0: as many as the resources allow
    if spec.search_algorithm == "grid":
        # Ray runs the given points first, one trial each, and samples no more once
        # num_samples (plan: the points' count) trials exist.
        return BasicVariantGenerator(
            points_to_evaluate=grid_points(spec), random_state=spec.seed, max_concurrent=limit
        )
    return BasicVariantGenerator(random_state=spec.seed, max_concurrent=limit)


# -- the sweep ---------------------------------------------------------------------------------


def adapter(settings: TrialSettings) -> Any:
    """The adapter with the sweep-wide settings and the data bound, as Ray runs it."""
    return bound(settings)[0]


def bound(settings: TrialSettings) -> tuple[Any, ModelShape]:
    """The adapter, and the model's shape for the driver's MLflow tags. The driver reads the
    dataset here, once; Ray puts it into its object store when the Tuner starts, and every
    trial on every node reads it from there (tune/run/trainable.py)."""
    try:
        data = read_raw(settings.data, test=settings.test_at_end)
    except (DataError, CodeError) as e:  # changed since it was checked (a resume, a confirm)
        raise InputError(settings.data.label, [Problem("dataset", str(e))]) from None
    shape = ModelShape(
        settings.model,
        settings.model_params,
        settings.model_dir,
        data.input_shape,
        data.num_classes,
    )
    return ray_tune.with_parameters(train_trial, settings=settings, data=data), shape


def plan(
    spec: SweepSpec, options: RunOptions, trainable: Any = None, warm: WarmStart | None = None
) -> Plan:
    """How a sweep searches. `trainable` replaces the real adapter, for tests: scripted
    learning curves, or the adapter with test-only settings (TrialSettings.fault). `warm`: what
    it takes from an earlier experiment (tune/run/warm_start.py)."""
    model = None
    if trainable is None:
        trainable, model = bound(trial_settings(spec, options))
    return Plan(
        trainable=trainable,
        model=model,
        param_space=param_space(spec),
        searcher=searcher(spec, warm),
        scheduler=scheduler(spec),
        # The grid algorithm's searcher holds every trial as a point (grid_points).
        num_samples=spec.trial_count() if spec.search_algorithm == "grid" else spec.num_samples,
        time_budget_s=spec.time_budget_s,
        run_name=spec.name,
        params={**_sweep_params(spec), **(warm.params() if warm else {})},
        tags={**version_tags(), "hpo.source": spec.source, **source_tags(spec)},
        varied=tuple(k for k, v in spec.search.items() if isinstance(v, Distribution)),
    )


def run_sweep(
    spec: SweepSpec,
    folder: Path,
    tracking_uri: str,
    options: RunOptions,
    trainable: Any = None,
    replacing: Aside | None = None,
    warm: WarmStart | None = None,
    planned: dict[str, float] | None = None,
) -> RunResult:
    """Start the sweep in `folder`, which holds no experiment (or one moved aside: `replacing`),
    warm-started from an earlier one (`warm`), with `hpo plan`'s figures (`planned`) recorded."""
    record = records.new_record(
        spec, tracking_uri, warm_start=warm.line() if warm else "", plan=planned or {}
    )
    return run_experiment(
        record, folder, plan(spec, options, trainable, warm), options, replacing=replacing
    )


def _sweep_params(spec: SweepSpec) -> dict[str, Any]:
    """The parent run's params: how the sweep searched, not what each trial got."""
    params: dict[str, Any] = {
        "search_algorithm": spec.search_algorithm,
        "num_samples": spec.num_samples,
        "trial_count": spec.trial_count(),
        "metric": f"{spec.metric.name} ({spec.metric.mode})",
        "scheduler": "none"
        if spec.scheduler is None
        else f"asha grace_period={spec.scheduler.grace_period} reduction_factor={spec.scheduler.reduction_factor:g}",
        "dataset": spec.dataset.config(spec.seed).label,
        "model": spec.model.factory,
        "validation_fraction": spec.dataset.validation_fraction,
        "train_steps": spec.dataset.train_steps,
        "eval_steps": spec.dataset.eval_steps,
        "resources": f"cpu={spec.resources.cpu:g} gpu={spec.resources.gpu:g}",
        "seed": spec.seed,
        **(
            {"optuna_startup_trials": spec.startup_trials}
            if spec.search_algorithm == "optuna"
            else {}
        ),
    }
    for key, value in spec.search.items():
        params[f"search.{key}"] = value.describe() if isinstance(value, Distribution) else value
    return params
