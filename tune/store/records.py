"""The experiment record: what hpo writes beside Ray's state in an experiment folder.

An experiment folder is a Ray Tune experiment plus `hpo_sweep.json`, the record: the spec it
runs (never the YAML file, which may change), where MLflow is, its parent run, and for a confirm
run the configurations and seeds it retrains. `hpo resume`, `status`, `report` and `confirm`
find everything again from it. This module is the only reader and writer of hpo's files in an
experiment folder (docs/architecture.md, "The record").
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from models.factory import PARAM_TYPES, Param
from tune.core.errors import InputError, Problem, show, unknown_key
from tune.core.files import OUTSIDE, UnreadableFile, inside, load_json, write_atomic
from tune.space.distributions import Distribution, Scalar, as_number
from tune.space.hyperparams import check_value, rules_for
from tune.space.spec import (
    DEFAULT_STARTUP_TRIALS,
    MAX_SAMPLES,
    MAX_SEED,
    AshaSpec,
    Code,
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    ResourcesSpec,
    SweepSpec,
    problems_of,
)
from tune.store import storage

# Named here too, as every caller names them: records.lock, records.RECORD_FILE.
from tune.store.locks import CONFIRM_DIR as CONFIRM_DIR
from tune.store.locks import RECORD_FILE as RECORD_FILE
from tune.store.locks import lock as lock
from tune.store.tracking_uri import form_problem

SPEC_COPY = "search_space.yaml"  # the YAML as it was when the sweep started, for people
CANDIDATE_KEY = "candidate"  # in a confirm trial's config: the sweep rank it retrains
REPORT_DIR = "report"  # `hpo report`'s files (and their artifact path in MLflow)
TENSORBOARD_DIR = "tensorboard"  # event files, a folder per trial
SWEEP, CONFIRM = "sweep", "confirm"  # the kinds of experiment
FORMAT = 2  # 1: hpo before the typed record (no "format" key); still read


class RecordError(InputError):
    """An experiment record that cannot be read: exit 2, one line naming the file and field."""


@dataclass(frozen=True)
class Candidate:
    """A configuration `hpo confirm` retrains: one distinct entry of the sweep's leaderboard."""

    rank: int  # its place in the sweep's leaderboard, from 1
    trial_id: str  # the sweep trial it came from
    config: dict[str, Any]  # its hyperparameters
    sweep_value: float  # its best metric in the sweep


@dataclass(frozen=True)
class ExperimentRecord:
    spec: SweepSpec  # what the trials train with; for a confirm run, its sweep's spec
    tracking_uri: str  # MLflow, as an absolute path for SQLite
    kind: str = SWEEP  # SWEEP or CONFIRM
    parent_run_id: str | None = None  # MLflow's parent run; None until it exists
    started: str = ""  # when the experiment first started, local time
    versions: dict[str, str] = field(default_factory=dict)  # of hpo and what it runs on
    # A confirm run only: what it retrains, with which seeds, for which sweep run.
    candidates: tuple[Candidate, ...] = ()
    seeds: tuple[int, ...] = ()
    sweep_parent_run_id: str | None = None
    # When time_budget_s ended the sweep (local time); "" while it has not. From then on the
    # trials it created are all it will ever have: a lazy searcher (Optuna) never creates the
    # rest of num_samples, and a resume has nothing left to do.
    budget_ended: str = ""
    # A confirm run hpo started on this machine: tune/core/trust.py's seal of its folder and start
    # time. `hpo confirm` continues only a sealed run by itself (continuing unpickles).
    sealed: str = ""
    # `hpo extend`: the samples each extension added, in order; spec.num_samples includes them.
    extended: tuple[int, ...] = ()
    warm_start: str = ""  # --warm-start: what the sweep took from an earlier one (its start line)
    plan: dict[str, float] = field(default_factory=dict)  # `hpo plan`'s figures at the start

    @property
    def is_confirm(self) -> bool:
        return self.kind == CONFIRM

    @property
    def name(self) -> str:
        """'fashion_seed', or 'fashion_seed/confirm' for its confirm run."""
        return f"{self.spec.name}/{CONFIRM_DIR}" if self.is_confirm else self.spec.name

    @property
    def metric(self) -> str:
        return self.spec.metric.name

    @property
    def mode(self) -> str:
        return self.spec.metric.mode

    @property
    def trial_count(self) -> int:
        """Trials the experiment will have when it is done."""
        if self.is_confirm:
            return len(self.candidates) * len(self.seeds)
        return self.spec.trial_count()

    def expected_trials(self, created: int) -> int:
        """Trials the experiment will have when it is done, given the `created` ones it has:
        trial_count, or those it created once its time budget ended it."""
        return created if self.budget_ended else self.trial_count

    @property
    def max_epochs(self) -> int:
        """The most epochs any of its trials may run."""
        if self.is_confirm:
            return max(int(c.config["epochs"]) for c in self.candidates)
        return self.spec.max_epochs


def new_record(spec: SweepSpec, tracking_uri: str, **confirm: Any) -> ExperimentRecord:
    """The record of an experiment about to start (a confirm run passes its candidates,
    seeds and sweep_parent_run_id, and kind=CONFIRM)."""
    return ExperimentRecord(
        spec=spec,
        tracking_uri=tracking_uri,
        started=time.strftime("%Y-%m-%dT%H:%M:%S"),
        versions=versions(),
        **confirm,
    )


def versions() -> dict[str, str]:
    """Versions of hpo and the packages an experiment's numbers depend on."""
    out = {}
    for package in ("hpo", "torch", "ray", "mlflow", "optuna"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out


# -- where things are ---------------------------------------------------------------------------


def experiment_dir(where: str, name: str) -> Path:
    """The experiment's folder: in the storage folder, or in a bucket's local mirror."""
    return storage.root(where) / name


def confirm_record(experiment: Path) -> ExperimentRecord | None:
    """The record of the experiment's confirm run, if it has one."""
    folder = confirm_dir(experiment)
    return load(folder) if exists(folder) else None


def confirm_dir(experiment: Path) -> Path:
    return experiment / CONFIRM_DIR


def report_dir(experiment: Path) -> Path:
    return experiment / REPORT_DIR


def tensorboard_dir(experiment: Path) -> Path:
    return experiment / TENSORBOARD_DIR


def exists(folder: Path) -> bool:
    return (folder / RECORD_FILE).is_file()


def names_in(where: str) -> list[str]:
    """The experiments in a storage (a folder, or a bucket), by name."""
    return storage.folders_in(where, RECORD_FILE)


def locate(name_or_path: str, where: str) -> Path | None:
    """An experiment folder given directly, or a name under the storage (a bucket's mirror is
    brought up to date first)."""
    for candidate in (Path(name_or_path), experiment_dir(where, name_or_path)):
        storage.pull(candidate)
        if exists(candidate):
            return candidate.resolve()
    return None


# -- reading and writing ------------------------------------------------------------------------


def save(folder: Path, record: ExperimentRecord) -> None:
    """Written whole, flushed to disk, then renamed into place (tune/core/files.py): a kill or a
    power cut mid-write never leaves half a record.
    A new sweep's folder also gets a copy of its YAML, for people; it stays as the sweep
    started (a resume never copies the file again: the file may have changed since)."""
    first = not exists(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(record.spec.source)
    if first and not record.is_confirm and source.is_file():
        (folder / SPEC_COPY).write_text(source.read_text())
    data = {"format": FORMAT, **asdict(record)}
    if not record.is_confirm:
        for key in ("candidates", "seeds", "sweep_parent_run_id", "sealed"):
            del data[key]
    for key in ("extended", "warm_start", "plan"):
        if not data[key]:
            del data[key]
    write_atomic(folder / RECORD_FILE, json.dumps(data, indent=2))
    storage.push(folder, *(f for f in (RECORD_FILE, SPEC_COPY) if (folder / f).is_file()))


RECORD_LIMIT = 1_000_000  # bytes: a record is a few KB; the YAML it came from is at most 1 MB
RECORD_DEPTH = 32  # levels of nesting, as for the YAML
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # MLflow's run ids are 32 hex digits


def forget(folder: Path) -> None:
    """Remove what `save` wrote into a new folder, and the folder if nothing else is in it:
    an experiment that failed to start (its MLflow parent run could not be made) leaves
    nothing that a new `hpo sweep` would take for an experiment to resume."""
    for name in (RECORD_FILE, SPEC_COPY):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty: hpo deletes only what it made


def load(folder: Path) -> ExperimentRecord:
    """The record in an experiment folder; RecordError naming the file and what is wrong. The
    folder may come from someone else: the file is read only if it is a regular file inside the
    folder, of at most RECORD_LIMIT bytes, and its values pass the rules a YAML file must pass."""
    path = folder / RECORD_FILE
    if not path.exists() and not path.is_symlink():
        raise RecordError(
            str(path), [Problem("", "missing", "an experiment folder of hpo")]
        ) from None
    try:
        if inside(folder, RECORD_FILE) is None:
            raise UnreadableFile(OUTSIDE)
        data = load_json(path, RECORD_LIMIT, RECORD_DEPTH)
    except UnreadableFile as e:
        raise RecordError(
            str(path), [Problem("", f"cannot be read: {e}", "a record hpo wrote")]
        ) from None
    reader = _Reader(str(path))
    record = reader.record(data)
    reader.check(record, data)
    return record


ALLOWED = "a record written by this version of hpo; start the experiment again"


class _Reader:
    """JSON -> ExperimentRecord, naming the first field that is missing or of the wrong type."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, what: str) -> RecordError:
        return RecordError(self.source, [Problem(path, what, ALLOWED)])

    def get(self, data: Any, path: str, key: str, kind: type | tuple[type, ...]) -> Any:
        where = f"{path}.{key}" if path else key
        if not isinstance(data, dict):
            raise self.fail(path, "is not a mapping")
        if key not in data:
            raise self.fail(where, "missing")
        if not isinstance(data[key], kind):
            raise self.fail(where, f"{data[key]!r} has the wrong type")
        return data[key]

    def dataclass(self, cls: type, data: Any, path: str, newer: tuple[str, ...] = ()) -> Any:
        """A flat dataclass of the spec; every field must be there (old records had them all)
        but those in `newer`, which records before them lack: their defaults."""
        return cls(
            **{
                f.name: self.get(data, path, f.name, object)
                for f in fields(cls)
                if f.name not in newer or (isinstance(data, dict) and f.name in data)
            }
        )

    def code(self, data: Any, path: str) -> Code | None:
        if data is None:
            return None
        return Code(*(self.get(data, path, k, str) for k in ("file", "digest", "search_dir")))

    def model(self, data: Any) -> ModelSpec:
        """The model factory and its parameters; records before `model:` ran the built-in CNN."""
        if data is None:
            return ModelSpec()
        factory = self.get(data, "spec.model", "factory", str)
        params = []
        for i, p in enumerate(self.get(data, "spec.model", "params", list)):
            where = f"spec.model.params.{i}"
            name, kind = self.get(p, where, "name", str), self.get(p, where, "type", str)
            default = self.get(p, where, "default", (bool, int, float, str))
            options = tuple(self.get(p, where, "options", list))
            if not name.isidentifier() or kind not in PARAM_TYPES:
                raise self.fail(where, f"{show(name)}: {show(kind)} is not a hyperparameter")
            params.append(Param(name, kind, default, options))
        return ModelSpec(factory, tuple(params), self.code(data.get("code"), "spec.model.code"))

    def record(self, data: Any) -> ExperimentRecord:
        kind = data.get("kind", SWEEP) if isinstance(data, dict) else SWEEP
        if kind not in (SWEEP, CONFIRM):
            raise self.fail("kind", f"unknown value {show(kind)} (known: {SWEEP}, {CONFIRM})")
        confirm = kind == CONFIRM
        return ExperimentRecord(
            spec=self.spec(self.get(data, "", "spec", dict)),
            tracking_uri=self.get(data, "", "tracking_uri", str),
            kind=kind,
            parent_run_id=self.get(data, "", "parent_run_id", (str, type(None))),
            started=str(data.get("started", "")),
            versions=self.versions(data.get("versions") or {}),
            candidates=tuple(
                self.candidate(c, f"candidates.{i}")
                for i, c in enumerate(self.get(data, "", "candidates", list) if confirm else [])
            ),
            seeds=tuple(
                self.seed(s, f"seeds.{i}")
                for i, s in enumerate(self.get(data, "", "seeds", list) if confirm else [])
            ),
            sweep_parent_run_id=self.run_id(data.get("sweep_parent_run_id"), "sweep_parent_run_id"),
            budget_ended=self.short(data.get("budget_ended", ""), "budget_ended"),
            sealed=self.short(data.get("sealed", ""), "sealed"),
            warm_start=self.short(data.get("warm_start", ""), "warm_start", "a line", 300),
            extended=tuple(self.samples(data.get("extended") or [])),
            plan=_figures(data.get("plan") or {}, self.fail),
        )

    # -- values: the record may come from someone else ------------------------------------------

    def check(self, record: ExperimentRecord, data: dict[str, Any]) -> None:
        """The values of a record read in whole: the spec passes every rule of a YAML file,
        and the rest is what hpo writes. RecordError with every problem otherwise."""
        problems = [replace(p, path=f"spec.{p.path}" if p.path else "spec")
                    for p in problems_of(record.spec)]  # fmt: skip
        if (bad_uri := form_problem(record.tracking_uri)) is not None:
            problems.append(Problem("tracking_uri", bad_uri))
        self.run_id(record.parent_run_id, "parent_run_id")
        self.short(record.started, "started")
        if record.is_confirm:
            problems += self.confirm_problems(record)
        if problems:
            allowed = "a record hpo wrote; start the experiment again"
            raise RecordError(self.source, [replace(p, allowed=p.allowed or allowed)
                                            for p in problems])  # fmt: skip

    def confirm_problems(self, record: ExperimentRecord) -> list[Problem]:
        problems = []
        if not record.candidates or not record.seeds:
            problems.append(Problem("candidates", "a confirm run without candidates or seeds"))
        rules = rules_for(record.spec.model.hyperparams())
        for i, c in enumerate(record.candidates):
            for key, value in c.config.items():
                where = f"candidates.{i}.config.{key}"
                if key not in rules:
                    problems.append(
                        unknown_key(f"candidates.{i}.config", key, rules, "hyperparameter")
                    )
                elif isinstance(checked := check_value(where, key, value, rules), Problem):
                    problems.append(checked)
            if "epochs" not in c.config:
                problems.append(Problem(f"candidates.{i}.config.epochs", "missing"))
        return problems

    def versions(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail("versions", f"{show(value)} is not a mapping of package versions")
        return dict(value)

    def seed(self, value: Any, path: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
            raise self.fail(path, f"{show(value)} is not a seed (an integer in [0, {MAX_SEED}])")
        return value

    def samples(self, values: Any) -> Iterator[int]:
        """`extended`: the samples each `hpo extend` added."""
        for i, n in enumerate(values if isinstance(values, list) else [values]):
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SAMPLES:
                raise self.fail(f"extended.{i}", f"{show(n)} is not a number of samples")
            yield n

    def run_id(self, value: Any, path: str) -> str | None:
        if value is not None and not (isinstance(value, str) and RUN_ID.fullmatch(value)):
            raise self.fail(path, f"{show(value)} is not an MLflow run id")
        return value

    def short(self, value: Any, path: str, what: str = "a time hpo wrote", most: int = 100) -> str:
        if not isinstance(value, str) or len(value) > most or "\n" in value:
            raise self.fail(path, f"{show(value)} is not {what}")
        return value

    def candidate(self, data: Any, path: str) -> Candidate:
        rank = self.get(data, path, "rank", int)
        if isinstance(rank, bool) or not 1 <= rank <= MAX_SAMPLES:
            raise self.fail(f"{path}.rank", f"{show(rank)} is not a rank (1..{MAX_SAMPLES})")
        trial_id = self.get(data, path, "trial_id", str)
        if not 0 < len(trial_id) <= 200:
            raise self.fail(f"{path}.trial_id", f"{show(trial_id)} is not a trial id")
        value = self.get(data, path, "sweep_value", (int, float))
        if not math.isfinite(value):
            raise self.fail(f"{path}.sweep_value", f"{show(value)} is not a finite number")
        return Candidate(rank, trial_id, dict(self.get(data, path, "config", dict)), float(value))

    def dataset(self, data: dict[str, Any]) -> DatasetSpec:
        newer = ("factory", "npz", "folder", "code")  # records before a user's own data
        spec: DatasetSpec = self.dataclass(DatasetSpec, data, "spec.dataset", newer)
        return replace(spec, code=self.code(data.get("code"), "spec.dataset.code"))

    def spec(self, data: dict[str, Any]) -> SweepSpec:
        search: dict[str, Scalar | Distribution] = {}
        for key, value in self.get(data, "spec", "search", dict).items():
            if isinstance(value, dict):
                path = f"spec.search.{key}"
                kind = self.get(value, path, "kind", str)
                search[key] = Distribution(kind, tuple(self.get(value, path, "values", list)))
            else:
                search[key] = value
        scheduler = self.get(data, "spec", "scheduler", (dict, type(None)))
        return SweepSpec(
            name=self.get(data, "spec", "name", str),
            source=self.get(data, "spec", "source", str),
            search=search,
            dataset=self.dataset(self.get(data, "spec", "dataset", dict)),
            model=self.model(data.get("model")),
            metric=self.dataclass(
                MetricSpec, self.get(data, "spec", "metric", dict), "spec.metric"
            ),
            search_algorithm=self.get(data, "spec", "search_algorithm", str),
            scheduler=None
            if scheduler is None
            else self.dataclass(AshaSpec, scheduler, "spec.scheduler"),
            num_samples=self.get(data, "spec", "num_samples", int),
            resources=self.dataclass(
                ResourcesSpec, self.get(data, "spec", "resources", dict), "spec.resources"
            ),
            max_concurrent_trials=self.get(
                data, "spec", "max_concurrent_trials", (int, type(None))
            ),
            time_budget_s=self.get(data, "spec", "time_budget_s", (int, float, type(None))),
            max_failures=self.get(data, "spec", "max_failures", int),
            seed=self.get(data, "spec", "seed", int),
            # Records from before `optuna.startup_trials` ran with Optuna's default.
            startup_trials=self.get(
                {"startup_trials": DEFAULT_STARTUP_TRIALS, **data},
                "spec",
                "startup_trials",
                int,
            ),
        )


def _figures(value: Any, fail: Callable[[str, str], RecordError]) -> dict[str, float]:
    """A recorded plan's figures: at most 20 short names, each a finite number."""
    if not isinstance(value, dict) or len(value) > 20:
        raise fail("plan", "not the figures `hpo plan` records")
    for key, number in value.items():
        plain = isinstance(number, int | float) and as_number(number) is not None  # no bool
        if len(key) > 40 or not plain or not math.isfinite(number):
            raise fail(f"plan.{key[:40]}", f"{show(number)} is not a number")
    return {k: float(v) for k, v in value.items()}
