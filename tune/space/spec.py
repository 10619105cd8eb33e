"""The search-space YAML (docs/architecture.md, "The search space") as typed, frozen dataclasses, validated completely.

`load_spec(path)` returns a SweepSpec or raises SpecError with every problem it found, one per
line, before anything has been started or written. Checks go from the shape of each key
(`_Reader`) to the rules between keys (`_cross_checks`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from models.data import DATASETS, DataNotFoundError, find_data_dir
from tune.core.errors import Problem, SpecError, show, unknown_key, unknown_value
from tune.core.metrics import MODES as METRIC_MODES
from tune.space import hyperparams
from tune.space.distributions import Distribution, Scalar, as_number, parse_entry
from tune.space.yaml_source import read_yaml

T = TypeVar("T")

ALGORITHMS = ("random", "grid", "optuna")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # the whole name (fullmatch)
NAME_RULE = "letters, digits, '_', '.', '-'; starting with a letter or digit; at most 100"

TOP_KEYS = (
    "name", "dataset", "metric", "search", "search_algorithm", "scheduler", "num_samples",
    "resources", "max_concurrent_trials", "time_budget_s", "max_failures", "seed",
)  # fmt: skip
DATASET_KEYS = ("name", "root", "validation_fraction", "train_steps", "eval_steps")
ASHA_KEYS = ("grace_period", "reduction_factor")
DEFAULT_RANDOM_SAMPLES = 10
MAX_SAMPLES = 100_000  # more trials than any machine runs; a typo like 10000000 is caught
MAX_INT = 2**63 - 1
MAX_SEED = 2**32 - 1  # what numpy and Optuna accept
RESOURCE_STEP = 0.0001  # Ray's precision for fractional CPUs and GPUs


@dataclass(frozen=True)
class DatasetSpec:
    name: str = "fashion_mnist"  # one of models.data.DATASETS
    root: str | None = None  # folder with the IDX .gz files; None = the usual places
    validation_fraction: float = 0.1  # held out of the training set, split with the sweep seed
    train_steps: int | None = None  # batches per epoch; None = a full pass
    eval_steps: int | None = None  # validation batches per epoch; None = all


@dataclass(frozen=True)
class MetricSpec:
    name: str = "val_accuracy"  # one of METRIC_MODES
    mode: str = "max"  # max | min, must agree with METRIC_MODES


@dataclass(frozen=True)
class AshaSpec:
    grace_period: int = 1  # epochs every trial gets before it can be stopped
    reduction_factor: float = 3.0  # 1/reduction_factor of the trials go on at each rung


@dataclass(frozen=True)
class ResourcesSpec:
    cpu: float = 1.0  # CPUs per trial; the trainer uses that many threads (at least 1)
    gpu: float = 0.0  # GPUs per trial; a fraction packs several trials on one GPU


@dataclass(frozen=True)
class SweepSpec:
    name: str
    source: str  # the YAML file it came from
    search: dict[str, Scalar | Distribution]  # every known hyperparameter, defaults filled in
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    metric: MetricSpec = field(default_factory=MetricSpec)
    search_algorithm: str = "random"
    scheduler: AshaSpec | None = field(default_factory=AshaSpec)  # None = run every trial out
    num_samples: int = DEFAULT_RANDOM_SAMPLES
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    max_concurrent_trials: int | None = None  # None = as many as the resources allow
    time_budget_s: float | None = None  # the whole sweep stops after this many seconds
    max_failures: int = 2  # retries of a trial that raised, from its last checkpoint
    seed: int = 0  # fixes the searcher, the validation split and each trial's initialization

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial may run; ASHA's max_t."""
        epochs = self.search["epochs"]
        if isinstance(epochs, Distribution):
            return int(max(float(v) for v in epochs.values))
        return int(epochs)

    def grid_size(self) -> int:
        """How many points the grid entries (or, for the grid algorithm, all entries) span."""
        size = 1
        for value in self.search.values():
            if not isinstance(value, Distribution):
                continue
            if value.kind == "grid" or self.search_algorithm == "grid":
                size *= len(hyperparams.grid_values(value) or ())
        return size

    def describe(self) -> str:
        """'24 trials of up to 12 epochs, grid search, ASHA'."""
        stopping = "ASHA" if self.scheduler else "no early stopping"
        return (
            f"{self.trial_count()} trials of up to {self.max_epochs} epochs, "
            f"{self.search_algorithm} search, {stopping}"
        )

    def trial_count(self) -> int:
        """Trials the sweep will run: Ray repeats the whole grid num_samples times."""
        if self.search_algorithm == "optuna":
            return self.num_samples
        return self.num_samples * self.grid_size()


def load_spec(
    path: str | Path,
    *,
    local: bool = True,
    driver: bool = True,
    name: str | None = None,
    data_dir: str | None = None,
) -> SweepSpec:
    """Read and validate a search-space file. `local`: the trials run on this machine, so its
    CPUs and GPUs are checked too. `driver`: this process runs the sweep's driver, which reads
    the data files (in `dataset.root`, else `data_dir` or the usual places) and hands them to
    the trials, so they must be here (not so for `hpo submit`: its driver runs on the cluster).
    `name` overrides the file's name."""
    path = Path(path)
    source = str(path)
    data, problems = read_yaml(path)
    if problems:
        raise SpecError(source, problems)
    reader = _Reader(name_override=name)
    spec = reader.sweep(data, default_name=path.stem, source=source)
    if spec is not None and not reader.problems:
        reader.problems += _cross_checks(spec, local=local)
        if driver:
            reader.problems += data_checks(spec, data_dir)
    if reader.problems or spec is None:
        raise SpecError(source, reader.problems)
    return spec


def as_data(spec: SweepSpec) -> dict[str, Any]:
    """The spec in the YAML's own terms (distributions as one-key mappings): what load_spec
    would read back as the same spec."""
    search = {
        k: {v.kind: list(v.values)} if isinstance(v, Distribution) else v
        for k, v in spec.search.items()
    }
    scheduler = "none" if spec.scheduler is None else {"asha": asdict(spec.scheduler)}
    return {
        "name": spec.name,
        "dataset": asdict(spec.dataset),
        "metric": asdict(spec.metric),
        "search": search,
        "search_algorithm": spec.search_algorithm,
        "scheduler": scheduler,
        "num_samples": spec.num_samples,
        "resources": asdict(spec.resources),
        "max_concurrent_trials": spec.max_concurrent_trials,
        "time_budget_s": spec.time_budget_s,
        "max_failures": spec.max_failures,
        "seed": spec.seed,
    }


def problems_of(spec: SweepSpec) -> list[Problem]:
    """Every rule a YAML file must pass, applied to a spec that came from elsewhere (an
    experiment record): the same checks, the same messages. This machine's CPUs, GPUs and data
    are not checked: the spec may have run elsewhere."""
    reader = _Reader()
    parsed = reader.sweep(as_data(spec), default_name="", source=spec.source)
    if parsed is not None and not reader.problems:
        reader.problems += _cross_checks(parsed, local=False)
    return reader.problems


def check_name(name: str) -> Problem | None:
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return None
    return Problem("name", f"{show(name)} is not a valid sweep name", NAME_RULE)


class _Reader:
    """Turns the loaded YAML into dataclasses, collecting a Problem for every bad key instead of
    stopping at the first, so one run of `hpo validate` shows everything to fix."""

    def __init__(self, name_override: str | None = None) -> None:
        self.problems: list[Problem] = []
        self.name_override = name_override  # --name: replaces the file's name before checks

    # -- typed getters: each returns the value or the default, recording what is wrong ------

    def _bad(self, path: str, value: Any, allowed: str) -> None:
        self.problems.append(Problem(path, f"{show(value)} is not allowed", allowed))

    def mapping(self, path: str, raw: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problems.append(
                Problem(path, f"expected a mapping, got {show(raw)}", f"keys: {', '.join(keys)}")
            )
            return {}
        for k in raw:
            if k in keys:
                continue
            # `null:` as a key reads "null"; a long key is shortened like any value
            key = k if isinstance(k, str) and len(k) <= 40 else show(k)
            home = _home_of(key)
            if home is not None and home != path:
                where = f"under {home}:" if home else "at the top level"
                self.problems.append(
                    Problem(_join(path, key), f"'{key}' does not belong here", f"put it {where}")
                )
            else:
                what = "hyperparameter" if path == "search" else "key"
                self.problems.append(unknown_key(path, key, keys, what))
        return raw

    def integer(
        self, path: str, raw: Any, default: T, low: int, *, high: int = MAX_INT, null: bool = False
    ) -> int | T:
        if raw is None and null:
            return default
        if isinstance(raw, int) and not isinstance(raw, bool) and low <= raw <= high:
            return raw
        rule = f"an integer >= {low}" if high == MAX_INT else f"an integer in [{low}, {high}]"
        self._bad(path, raw, rule + (" or null" if null else ""))
        return default

    def number(
        self,
        path: str,
        raw: Any,
        default: T,
        ok: Callable[[float], bool],
        rule: str,
        *,
        null: bool = False,
    ) -> float | T:
        if raw is None and null:
            return default
        n = as_number(raw)
        # .inf passes `> 0`; no setting of ours means infinity (null means "no limit").
        if n is not None and math.isfinite(n) and ok(float(n)):
            return float(n)
        self._bad(path, raw, rule + (" or null" if null else ""))
        return default

    def one_of(self, path: str, raw: Any, default: str, options: tuple[str, ...]) -> str:
        if isinstance(raw, str) and raw in options:
            return raw
        if isinstance(raw, str):
            self.problems.append(unknown_value(path, raw, options))
        else:
            self._bad(path, raw, f"one of {', '.join(options)}")
        return default

    # -- sections ----------------------------------------------------------------------------

    def sweep(self, data: Any, *, default_name: str, source: str) -> SweepSpec | None:
        top = self.top(data)
        if top is None:
            return None
        name = self.name(top.get("name"), default_name)
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
        search = self.search(top.get("search"))
        return SweepSpec(
            name=name,
            source=source,
            search=search,
            dataset=self.dataset(top.get("dataset")),
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
        )

    def top(self, data: Any) -> dict[str, Any] | None:
        """The file's top-level mapping, or None when the file holds none."""
        if data is None:
            self.problems.append(
                Problem("", "the file is empty", "a mapping with at least a `search:` section")
            )
            return None
        if not isinstance(data, dict):
            self.problems.append(
                Problem(
                    "",
                    f"expected a mapping of keys at the top, got {show(data)}",
                    f"keys: {', '.join(TOP_KEYS)}",
                )
            )
            return None
        return self.mapping("", data, TOP_KEYS)

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
        sampled = any(_is_sampled(v, algorithm) for v in search.values())
        default = DEFAULT_RANDOM_SAMPLES if sampled else 1
        return self.integer(
            "num_samples", top.get("num_samples", default), default, 1, high=MAX_SAMPLES
        )

    def search(self, raw: Any) -> dict[str, Scalar | Distribution]:
        resolved: dict[str, Scalar | Distribution] = dict(hyperparams.defaults())
        if raw is None:
            return resolved
        entries = self.mapping("search", raw, tuple(hyperparams.RULES))
        for key, value in entries.items():
            if key not in hyperparams.RULES:
                continue  # reported by mapping()
            path = f"search.{key}"
            parsed, problems = parse_entry(path, value)
            if problems or parsed is None:
                self.problems += problems
            elif isinstance(parsed, Distribution):
                dist, problems = hyperparams.check_distribution(path, key, parsed)
                self.problems += problems
                if dist is not None:
                    resolved[key] = dist
            else:
                checked = hyperparams.check_value(path, key, parsed)
                if isinstance(checked, Problem):
                    self.problems.append(checked)
                else:
                    resolved[key] = checked
        return resolved

    def dataset(self, raw: Any) -> DatasetSpec:
        if isinstance(raw, str):  # `dataset: mnist` is a natural shorthand
            raw = {"name": raw}
        d = self.mapping("dataset", raw, DATASET_KEYS)
        default = DatasetSpec()
        root = d.get("root")
        if root is not None and not isinstance(root, str):
            self._bad("dataset.root", root, "a folder path or null")
            root = None
        return DatasetSpec(
            name=self.one_of("dataset.name", d.get("name", default.name), default.name, DATASETS),
            root=root,
            validation_fraction=self.number(
                "dataset.validation_fraction",
                d.get("validation_fraction", default.validation_fraction),
                default.validation_fraction,
                lambda x: 0 < x < 1,
                "a fraction in (0, 1)",
            ),
            train_steps=self.integer(
                "dataset.train_steps", d.get("train_steps"), None, 1, null=True
            ),
            eval_steps=self.integer("dataset.eval_steps", d.get("eval_steps"), None, 1, null=True),
        )

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


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _home_of(key: str) -> str | None:
    """The section a known key belongs to ('' = top level), for 'put it under search:' hints."""
    if key in hyperparams.RULES:
        return "search"
    if key in DATASET_KEYS and key != "name":
        return "dataset"
    if key in ASHA_KEYS:
        return "scheduler.asha"
    if key in TOP_KEYS:
        return ""
    return None


def _cross_checks(spec: SweepSpec, *, local: bool) -> list[Problem]:
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


def _is_sampled(value: Any, algorithm: str) -> bool:
    """Whether trials draw this entry at random (so repeats differ), rather than enumerate it."""
    return isinstance(value, Distribution) and value.kind != "grid" and algorithm != "grid"


def sample_checks(spec: SweepSpec) -> list[Problem]:
    """How many trials: something to search for optuna, no identical repeats, a sane total.
    Run again after --num-samples overrides the file."""
    problems: list[Problem] = []
    distributions = [v for v in spec.search.values() if isinstance(v, Distribution)]
    sampled = any(_is_sampled(v, spec.search_algorithm) for v in distributions)
    if spec.search_algorithm == "optuna" and not distributions:
        problems.append(
            Problem(
                "search",
                "search_algorithm optuna needs at least one distribution to search over",
                "e.g. lr: {loguniform: [1.0e-4, 1.0e-2]}",
            )
        )
    elif not sampled and spec.num_samples > 1:
        problems.append(
            Problem(
                "num_samples",
                f"{spec.num_samples} repeats would be identical runs: nothing in search is "
                f"sampled and every trial uses seed {spec.seed}",
                "num_samples: 1, or a choice/uniform/loguniform/randint entry",
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
    """BatchNorm cannot train on a batch of one sample."""
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
                    f"at most {gpus}, or 0 for CPU only",
                )
            )
    return problems


def data_checks(spec: SweepSpec, data_dir: str | None) -> list[Problem]:
    """The driver's machine must hold the data files: it reads them for every trial."""
    problems: list[Problem] = []
    if spec.dataset.root is not None and not Path(spec.dataset.root).expanduser().is_dir():
        problems.append(
            Problem(
                "dataset.root",
                f"folder {spec.dataset.root!r} does not exist",
                "a folder with the IDX .gz files, or null",
            )
        )
    else:
        try:
            find_data_dir(spec.dataset.name, spec.dataset.root, data_dir)
        except DataNotFoundError as e:
            problems.append(Problem("dataset", str(e)))
    return problems


def local_gpu_count() -> int:
    import torch  # imported late: validation of CPU-only files should not pay for it

    return torch.cuda.device_count()


def with_overrides(spec: SweepSpec, **changes: Any) -> SweepSpec:
    """The spec with command-line overrides (name, num_samples, ...) that are not None."""
    return replace(spec, **{k: v for k, v in changes.items() if v is not None})
