"""The rules between a sweep's keys, and what a machine must have to run it.

They run on a SweepSpec whose every key passed on its own (reader.py), so each rule can take
the spec's values as they are: `cross_checks` for what the file must agree with itself on and,
when the trials run here, this machine's CPUs and GPUs (the data and the model: data_checks.py). `sample_checks` runs again after --num-samples overrides the file.
"""

from __future__ import annotations

import os
from typing import Any

from tune.core.errors import Problem
from tune.space import hyperparams
from tune.space.distributions import Distribution
from tune.space.spec import MAX_SAMPLES, SweepSpec


def cross_checks(spec: SweepSpec, *, local: bool) -> list[Problem]:
    """Rules between keys, run once every key is well-formed on its own."""
    problems: list[Problem] = []
    if spec.scheduler is not None and spec.scheduler.grace_period > spec.max_epochs:
        problems.append(
            Problem(
                "scheduler.asha.grace_period",
                f"{spec.scheduler.grace_period} is more than the {spec.max_epochs} epochs a trial may run",
                f"1..{spec.max_epochs}, at most search.epochs",
            )
        )
    problems += _algorithm_checks(spec)
    problems += sample_checks(spec)
    problems += _normalization_checks(spec)
    if local:
        problems += _local_checks(spec)
    return problems


def _algorithm_checks(spec: SweepSpec) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in spec.search.items():
        if not isinstance(value, Distribution):
            continue
        path = f"search.{key}.{value.kind}"
        if spec.search_algorithm == "optuna" and value.kind == "grid":
            problems.append(
                Problem(
                    path,
                    "grid is not supported by search_algorithm optuna",
                    "use choice: [...], or search_algorithm grid or random",
                )
            )
        if spec.search_algorithm == "grid" and hyperparams.grid_values(value) is None:
            problems.append(
                Problem(
                    path,
                    f"search_algorithm grid cannot enumerate the continuous range {value.describe()}",
                    "use grid: [values], or search_algorithm random or optuna",
                )
            )
    return problems


def is_sampled(value: Any, algorithm: str) -> bool:
    """Whether trials draw this entry at random (so repeats differ), rather than enumerate it."""
    return isinstance(value, Distribution) and value.kind != "grid" and algorithm != "grid"


def _continuous_under_grid(spec: SweepSpec) -> bool:
    """What _algorithm_checks refuses: a range grid cannot enumerate (choice and randint it can)."""
    return spec.search_algorithm == "grid" and any(
        isinstance(v, Distribution) and hyperparams.grid_values(v) is None
        for v in spec.search.values()
    )


def sample_checks(spec: SweepSpec) -> list[Problem]:
    """How many trials: something to search for optuna, no identical repeats, a sane total.
    Run again after --num-samples overrides the file."""
    problems: list[Problem] = []
    distributions = [v for v in spec.search.values() if isinstance(v, Distribution)]
    sampled = any(is_sampled(v, spec.search_algorithm) for v in distributions)
    if spec.search_algorithm == "optuna" and not distributions:
        problems.append(
            Problem(
                "search",
                "search_algorithm optuna needs at least one distribution to search over",
                "e.g. lr: {loguniform: [1.0e-4, 1.0e-2]}",
            )
        )
    elif not sampled and spec.num_samples > 1 and not _continuous_under_grid(spec):
        # (A continuous range under grid is refused on its own line; this one would only add
        # advice that grid cannot take.)
        fix = (
            "num_samples: 1, or search_algorithm random with a choice/uniform/loguniform/randint entry"
            if spec.search_algorithm == "grid"
            else "num_samples: 1, or a choice/uniform/loguniform/randint entry"
        )
        problems.append(
            Problem(
                "num_samples",
                f"{spec.num_samples} repeats would be identical runs: nothing in search is "
                f"sampled and every trial uses seed {spec.seed}",
                fix,
            )
        )
    if spec.trial_count() > MAX_SAMPLES:
        problems.append(
            Problem(
                "num_samples",
                f"would make {spec.trial_count()} trials ({spec.num_samples} x a grid of "
                f"{spec.grid_size()})",
                f"at most {MAX_SAMPLES}: fewer grid values or samples",
            )
        )
    return problems


def _normalization_checks(spec: SweepSpec) -> list[Problem]:
    """BatchNorm cannot train on a batch of one sample (the built-in CNN's; a user's model is
    tried on a batch in data_checks.py)."""
    if not spec.model.builtin:
        return []
    if True in hyperparams.possible_values(spec.search["normalization"]) and (
        min(float(v) for v in hyperparams.possible_values(spec.search["batch_size"])) < 2
    ):
        return [
            Problem(
                "search.batch_size",
                "batch_size 1 cannot train with normalization: BatchNorm needs 2 samples a batch",
                "batch_size >= 2, or normalization: false",
            )
        ]
    return []


def _local_checks(spec: SweepSpec) -> list[Problem]:
    """What this machine must have to run trials: one trial's CPUs and GPUs."""
    problems: list[Problem] = []
    cpus = os.cpu_count() or 1
    if spec.resources.cpu > cpus:
        problems.append(
            Problem(
                "resources.cpu",
                f"{spec.resources.cpu:g} per trial, but this machine has {cpus} CPUs",
                f"at most {cpus}",
            )
        )
    if spec.resources.gpu > 0:
        gpus = local_gpu_count()
        if spec.resources.gpu > gpus:
            has = f"this machine has {gpus} GPU{'s' if gpus != 1 else ''}"
            problems.append(
                Problem(
                    "resources.gpu",
                    f"{spec.resources.gpu:g} per trial, but {has}",
                    f"at most {gpus}, or 0 for CPU only "
                    "(a cluster's: --address; validate --for-cluster)",
                )
            )
    return problems


def local_gpu_count() -> int:
    import torch  # imported late: validation of CPU-only files should not pay for it

    return torch.cuda.device_count()
