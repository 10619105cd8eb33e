"""The search-space YAML (docs/architecture.md, "The search space") as typed, frozen dataclasses, validated completely.

`load_spec(path)` returns a SweepSpec or raises InputError with every problem it found, one per
line, before anything has been started or written. Checks go from the shape of each key
(reader.py, on fields.py's typed getters) to the rules between keys and what this machine must
have (checks.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from models.config import DataConfig
from models.factory import BUILTIN_MODEL, Param, digest, module_file, parse_ref
from tune.core.errors import InputError, Problem, show
from tune.space import hyperparams
from tune.space.distributions import Distribution, Scalar
from tune.space.yaml_source import read_yaml

ALGORITHMS = ("random", "grid", "optuna")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # the whole name (fullmatch)
NAME_RULE = "letters, digits, '_', '.', '-'; starting with a letter or digit; at most 100"

DEFAULT_RANDOM_SAMPLES = 10
# Optuna's TPESampler samples this many trials at random before its model takes over (its
# n_startup_trials default); a budget of no more trials than that is random search.
DEFAULT_STARTUP_TRIALS = 10
MAX_SAMPLES = 100_000  # more trials than any machine runs; a typo like 10000000 is caught
MAX_SEED = 2**32 - 1  # what numpy and Optuna accept


@dataclass(frozen=True)
class Code:
    """A user's module, as found when the space was validated: resume compares its digest."""

    file: str  # the module's file, absolute
    digest: str  # its SHA-256 then
    search_dir: str  # the folder it is imported from (the YAML's, or a sys.path entry)


@dataclass(frozen=True)
class DatasetSpec:
    name: str = "fashion_mnist"  # one of models.data.DATASETS, unless another source is set
    root: str | None = None  # built-in: folder with the IDX .gz files; a loader: load(root)
    validation_fraction: float = 0.1  # held out of the training set, split with the sweep seed
    train_steps: int | None = None  # batches per epoch; None = a full pass
    eval_steps: int | None = None  # validation batches per epoch; None = all
    factory: str | None = None  # "module:function", the user's loader
    npz: str | None = None  # an .npz file (absolute): x_train, y_train, x_test, y_test
    folder: str | None = None  # a folder (absolute): train/CLASS/*.png, test/CLASS/*.png
    code: Code | None = None  # the loader's module

    @property
    def builtin(self) -> bool:
        return self.factory is None and self.npz is None and self.folder is None

    def config(self, seed: int, data_dir: str | None = None) -> DataConfig:
        """The data as the trainer's DataConfig: split with `seed`; a built-in dataset looked
        for in `data_dir` too."""
        return DataConfig(
            name=self.name,
            root=self.root,
            data_dir=data_dir,
            validation_fraction=self.validation_fraction,
            seed=seed,
            factory=self.factory,
            npz=self.npz,
            folder=self.folder,
            search_dir=self.code.search_dir if self.code else None,
        )

    @property
    def source_key(self) -> str:
        """The key that names the data: 'dataset.name', 'dataset.factory', ..."""
        for key in ("factory", "npz", "folder"):
            if getattr(self, key) is not None:
                return f"dataset.{key}"
        return "dataset.name"


@dataclass(frozen=True)
class ModelSpec:
    factory: str = BUILTIN_MODEL  # "module:function"
    # The factory's hyperparameters, read from its signature when the file was validated; a
    # record keeps them, so reading one imports nothing. () = the built-in CNN's.
    params: tuple[Param, ...] = ()
    code: Code | None = None  # the factory's module; None for the built-in

    @property
    def builtin(self) -> bool:
        return self.factory == BUILTIN_MODEL

    def hyperparams(self) -> tuple[Param, ...] | None:
        """The factory's parameters; None for the built-in CNN (hyperparams.RULES)."""
        return None if self.builtin else self.params


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
    model: ModelSpec = field(default_factory=ModelSpec)
    metric: MetricSpec = field(default_factory=MetricSpec)
    search_algorithm: str = "random"
    scheduler: AshaSpec | None = field(default_factory=AshaSpec)  # None = run every trial out
    num_samples: int = DEFAULT_RANDOM_SAMPLES
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    max_concurrent_trials: int | None = None  # None = as many as the resources allow
    time_budget_s: float | None = None  # the whole sweep stops after this many seconds
    max_failures: int = 2  # retries of a trial that raised, from its last checkpoint
    seed: int = 0  # fixes the searcher, the validation split and each trial's initialization
    startup_trials: int = DEFAULT_STARTUP_TRIALS  # optuna only: random trials before TPE

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
        search = f"{self.search_algorithm} search"
        if self.search_algorithm == "optuna":
            search = f"optuna search (TPE after {self.startup_trials} random start-up trials)"
        return (
            f"{self.trial_count()} trials of up to {self.max_epochs} epochs, {search}, {stopping}"
        )

    def warnings(self) -> list[Problem]:
        """What is valid but likely not what the user meant; `hpo validate` and `hpo sweep`
        print each as a warning line and go on."""
        if self.search_algorithm == "optuna" and self.startup_trials >= self.num_samples:
            return [
                Problem(
                    "optuna.startup_trials",
                    f"its {self.startup_trials} random start-up trials fill all "
                    f"{self.num_samples} trials: TPE never runs, so this is random search",
                    f"startup_trials below num_samples, e.g. optuna: "
                    f"{{startup_trials: {max(1, self.num_samples // 3)}}}",
                )
            ]
        return []

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
    # reader.py and checks.py build on this module's dataclasses and import it; importing them
    # here, when called, keeps the imports one-way at import time.
    from tune.space.checks import cross_checks
    from tune.space.data_checks import data_checks, shape_checks
    from tune.space.reader import SweepReader

    path = Path(path)
    source = str(path)
    data, problems = read_yaml(path)
    if problems:
        raise InputError(source, problems)
    reader = SweepReader(name_override=name)
    spec = reader.sweep(data, default_name=path.stem, source=source)
    if spec is not None and not reader.problems:
        reader.problems += cross_checks(spec, local=local) + shape_checks(spec)
        if driver and not reader.problems:
            reader.problems += data_checks(spec, data_dir)
    if reader.problems or spec is None:
        raise InputError(source, reader.problems)
    return spec


def as_data(spec: SweepSpec) -> dict[str, Any]:
    """The spec in the YAML's own terms (distributions as one-key mappings): what load_spec
    would read back as the same spec."""
    search = {
        k: {v.kind: list(v.values)} if isinstance(v, Distribution) else v
        for k, v in spec.search.items()
    }
    scheduler = "none" if spec.scheduler is None else {"asha": asdict(spec.scheduler)}
    dataset = {k: v for k, v in asdict(spec.dataset).items() if k != "code" and v is not None}
    if not spec.dataset.builtin:
        del dataset["name"]  # the built-in default, which the user's source replaces
    return {
        "name": spec.name,
        "model": {"factory": spec.model.factory},
        "dataset": dataset,
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
        **(
            {"optuna": {"startup_trials": spec.startup_trials}}
            if spec.search_algorithm == "optuna"
            else {}
        ),
    }


def problems_of(spec: SweepSpec) -> list[Problem]:
    """Every rule a YAML file must pass, applied to a spec that came from elsewhere (an
    experiment record): the same checks, the same messages. This machine's CPUs, GPUs and data
    are not checked: the spec may have run elsewhere."""
    from tune.space.checks import cross_checks  # as in load_spec: they import this module
    from tune.space.reader import SweepReader

    reader = SweepReader(known_params=spec.model.params)
    parsed = reader.sweep(as_data(spec), default_name="", source=spec.source)
    if parsed is not None and not reader.problems:
        reader.problems += cross_checks(parsed, local=False)
    return reader.problems


def user_code(spec: SweepSpec) -> list[tuple[str, str, Code]]:
    """(key, "module:function", Code) of the user's model factory and data loader: one entry
    a module file (both may be in one)."""
    found: list[tuple[str, str, Code]] = []
    for key, factory, code in (
        ("model.factory", spec.model.factory, spec.model.code),
        ("dataset.factory", spec.dataset.factory, spec.dataset.code),
    ):
        if (
            code is not None
            and factory is not None
            and code.file not in {c.file for *_, c in found}
        ):
            found.append((key, factory, code))
    return found


def changed_code(spec: SweepSpec, action: str) -> list[Problem]:
    """The user's modules (model factory, data loader) that are gone or changed since the
    sweep validated them: its trials would not be the same code's. Each is looked for where
    it would be imported now (its folder then, else the Python path: a Ray Job's driver gets
    it in its own runtime_env). `action`: the command, for the hint ('hpo resume')."""
    problems: list[Problem] = []
    hint = f"put it back as it was, or {action} --allow-changed-code to go on with it as it is"
    for key, factory, code in user_code(spec):
        path = module_file(parse_ref(factory), code.search_dir)
        if path is None:
            problems.append(Problem(key, f"{code.file} is gone since the sweep started", hint))
        elif (now := digest(path)) != code.digest:
            then = f"SHA-256 {code.digest[:12]}... then, {now[:12]}... now"
            problems.append(Problem(key, f"{path} changed since the sweep started ({then})", hint))
    return problems


def check_name(name: str) -> Problem | None:
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return None
    return Problem("name", f"{show(name)} is not a valid sweep name", NAME_RULE)


def with_overrides(spec: SweepSpec, **changes: Any) -> SweepSpec:
    """The spec with command-line overrides (name, num_samples, ...) that are not None."""
    return replace(spec, **{k: v for k, v in changes.items() if v is not None})
