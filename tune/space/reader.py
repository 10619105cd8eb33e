"""The search-space YAML's sections, each read into its spec.py dataclass (`model:` and
`dataset:` in sources_reader.py).

`SweepReader` checks every key on its own (its type, its range, that it is known and in the
right section) and records a Problem for each bad one; the rules between keys come after, in
checks.py, once every key is well-formed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from models.factory import Param
from tune.core.errors import Problem, show
from tune.core.metrics import MODES as METRIC_MODES
from tune.space import hyperparams
from tune.space.checks import is_sampled
from tune.space.distributions import Distribution, Scalar, parse_entry
from tune.space.sources_reader import DATASET_KEYS, SourcesReader
from tune.space.spec import (
    ALGORITHMS,
    DEFAULT_RANDOM_SAMPLES,
    DEFAULT_STARTUP_TRIALS,
    MAX_SAMPLES,
    MAX_SEED,
    NAME_RULE,
    AshaSpec,
    MetricSpec,
    ResourcesSpec,
    SweepSpec,
    check_name,
)

TOP_KEYS = (
    "name", "model", "dataset", "metric", "search", "search_algorithm", "scheduler",
    "num_samples", "resources", "max_concurrent_trials", "time_budget_s", "max_failures", "seed",
    "optuna",
)  # fmt: skip
ASHA_KEYS = ("grace_period", "reduction_factor")
RESOURCE_STEP = 0.0001  # Ray's precision for fractional CPUs and GPUs
STARTUP = DEFAULT_STARTUP_TRIALS


class SweepReader(SourcesReader):
    """Turns the loaded YAML into a SweepSpec, collecting a Problem for every bad key instead of
    stopping at the first, so one run of `hpo validate` shows everything to fix."""

    def __init__(
        self, name_override: str | None = None, known_params: tuple[Param, ...] | None = None
    ) -> None:
        super().__init__(_home_of, known_params)
        self.name_override = name_override  # --name: replaces the file's name before checks

    def sweep(self, data: Any, *, default_name: str, source: str) -> SweepSpec | None:
        top = self.document(data, TOP_KEYS, "a mapping with at least a `search:` section")
        if top is None:
            return None
        name = self.name(top.get("name"), default_name)
        here = str(Path(source).expanduser().absolute().parent)  # the YAML's own folder
        model = self.model(top.get("model"), here)
        if "search" not in top:
            self.problems.append(
                Problem(
                    "search",
                    "missing",
                    "a mapping of hyperparameters to constants or distributions",
                )
            )
        algorithm = self.one_of(
            "search_algorithm", top.get("search_algorithm", "random"), "random", ALGORITHMS
        )
        # A factory that could not be read leaves the hyperparameters unknown: none is judged.
        search = self.search(None if self.model_failed else top.get("search"), model.hyperparams())
        return SweepSpec(
            name=name,
            source=source,
            search=search,
            dataset=self.dataset(top.get("dataset"), here),
            model=model,
            metric=self.metric(top.get("metric")),
            search_algorithm=algorithm,
            scheduler=self.scheduler(top.get("scheduler", "asha")),
            num_samples=self.num_samples(top, search, algorithm),
            resources=self.resources(top.get("resources")),
            max_concurrent_trials=self.integer(
                "max_concurrent_trials", top.get("max_concurrent_trials"), None, 1, null=True
            ),
            time_budget_s=self.number(
                "time_budget_s",
                top.get("time_budget_s"),
                None,
                lambda x: x > 0,
                "seconds > 0",
                null=True,
            ),
            max_failures=self.integer("max_failures", top.get("max_failures", 2), 2, 0),
            seed=self.integer("seed", top.get("seed", 0), 0, 0, high=MAX_SEED),
            startup_trials=self.optuna(top.get("optuna"), algorithm),
        )

    def optuna(self, raw: Any, algorithm: str) -> int:
        """`optuna: {startup_trials: N}`, only under search_algorithm optuna (elsewhere it
        would silently do nothing)."""
        if raw is not None and algorithm != "optuna":
            why = f"is for search_algorithm optuna, not {algorithm}"
            self.problems.append(
                Problem("optuna", why, "remove it, or set search_algorithm: optuna")
            )
        value = self.mapping("optuna", raw, ("startup_trials",)).get("startup_trials", STARTUP)
        return self.integer("optuna.startup_trials", value, STARTUP, 1, high=MAX_SAMPLES)

    def name(self, raw: Any, default_name: str) -> str:
        """--name, else the file's `name:` (unless null), else the file's stem; each must be a
        valid name (`name: ""` or `name: false` is an error, not the stem)."""
        name = self.name_override or (default_name if raw is None else raw)
        if (bad_name := check_name(name)) is not None:
            if name == default_name and not self.name_override:
                bad_name = Problem(
                    "name",
                    f"{show(name)} (taken from the file name) is not a valid sweep name",
                    f"{NAME_RULE}; set name: in the file or --name",
                )
            self.problems.append(bad_name)
        return name if isinstance(name, str) else default_name

    def num_samples(
        self, top: dict[str, Any], search: dict[str, Scalar | Distribution], algorithm: str
    ) -> int:
        """Repeats of a space where nothing is sampled would be identical runs: default to one."""
        sampled = any(is_sampled(v, algorithm) for v in search.values())
        default = DEFAULT_RANDOM_SAMPLES if sampled else 1
        return self.integer(
            "num_samples", top.get("num_samples", default), default, 1, high=MAX_SAMPLES
        )

    def search(
        self, raw: Any, params: tuple[Param, ...] | None
    ) -> dict[str, Scalar | Distribution]:
        """Every hyperparameter of the model factory (`params`; None: the built-in CNN) and of
        the trainer, the file's value or distribution, else its default."""
        rules = hyperparams.rules_for(params)
        resolved: dict[str, Scalar | Distribution] = dict(hyperparams.defaults(params))
        if raw is None:
            return resolved
        entries = self.mapping("search", raw, tuple(rules), what="hyperparameter")
        for key, value in entries.items():
            if key not in rules:
                continue  # reported by mapping()
            path = f"search.{key}"
            parsed, problems = parse_entry(path, value)
            if problems or parsed is None:
                self.problems += problems
            elif isinstance(parsed, Distribution):
                dist, problems = hyperparams.check_distribution(path, key, parsed, rules)
                self.problems += problems
                if dist is not None:
                    resolved[key] = dist
            else:
                checked = hyperparams.check_value(path, key, parsed, rules)
                if isinstance(checked, Problem):
                    self.problems.append(checked)
                else:
                    resolved[key] = checked
        return resolved

    def metric(self, raw: Any) -> MetricSpec:
        if isinstance(raw, str):  # `metric: val_loss` is a natural shorthand
            raw = {"name": raw}
        m = self.mapping("metric", raw, ("name", "mode"))
        name = self.one_of(
            "metric.name", m.get("name", "val_accuracy"), "val_accuracy", tuple(METRIC_MODES)
        )
        natural = METRIC_MODES[name]
        mode = self.one_of("metric.mode", m.get("mode", natural), natural, ("max", "min"))
        if mode != natural:
            self.problems.append(
                Problem(
                    "metric.mode",
                    f"{mode} would search for the worst {name}",
                    f"{name} needs mode: {natural}",
                )
            )
        return MetricSpec(name, mode)

    def scheduler(self, raw: Any) -> AshaSpec | None:
        if raw is None or raw == "none":
            return None
        if raw == "asha":
            return AshaSpec()
        if not isinstance(raw, dict) or list(raw) != ["asha"]:
            self._bad(
                "scheduler", raw, "none, asha, or {asha: {grace_period: 1, reduction_factor: 3}}"
            )
            return None
        a = self.mapping("scheduler.asha", raw["asha"], ASHA_KEYS)
        default = AshaSpec()
        return AshaSpec(
            grace_period=self.integer(
                "scheduler.asha.grace_period", a.get("grace_period", default.grace_period), 1, 1
            ),
            reduction_factor=self.number(
                "scheduler.asha.reduction_factor",
                a.get("reduction_factor", default.reduction_factor),
                default.reduction_factor,
                lambda x: x > 1,
                "a number > 1",
            ),
        )

    def resources(self, raw: Any) -> ResourcesSpec:
        r = self.mapping("resources", raw, ("cpu", "gpu"))
        default = ResourcesSpec()
        return ResourcesSpec(
            cpu=self.number(
                "resources.cpu",
                r.get("cpu", default.cpu),
                default.cpu,
                lambda x: x > 0 and _in_steps(x),
                f"CPUs > 0, in steps of {RESOURCE_STEP}",
            ),
            gpu=self.number(
                "resources.gpu",
                r.get("gpu", default.gpu),
                default.gpu,
                lambda x: x == 0 or (0 < x <= 1 and _in_steps(x)) or (x > 1 and x.is_integer()),
                f"0, a fraction in (0, 1] in steps of {RESOURCE_STEP}, or a whole number of GPUs",
            ),
        )


def _in_steps(x: float) -> bool:
    """Ray counts fractional resources in units of RESOURCE_STEP; finer values cannot be met."""
    units = x / RESOURCE_STEP
    return math.isfinite(units) and units >= 1 and abs(units - round(units)) < 1e-6


def _home_of(key: str) -> str | None:
    """The section a known key belongs to ('' = top level), for 'put it under search:' hints."""
    if key in hyperparams.RULES:  # (a user factory's own parameters are not known here)
        return "search"
    if key in DATASET_KEYS and key != "name":
        return "dataset"
    if key in ASHA_KEYS:
        return "scheduler.asha"
    if key in TOP_KEYS:
        return ""
    return None
