"""The hyperparameters a search space may name: their type, their allowed values, their default,
and how a trial's resolved values become the trainer's typed configs.

They are the model factory's keyword-only parameters (models/factory.py) and the trainer's.
Defaults come from models' config dataclasses and the factory's signature, so the trainer, the
model and the search space cannot disagree about them. The built-in CNN's parameters have ranges
of their own (RULES); a user's factory gives types and, with Literal[...], options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, cast

from models.config import (
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    ModelConfig,
    TrainConfig,
)
from models.factory import Param, builtin_params
from tune.core.errors import Problem, show
from tune.space.distributions import Distribution, Scalar, as_number

IMAGE_SIZE = 28  # both built-in datasets are 28x28


@dataclass(frozen=True)
class Rule:
    """One hyperparameter: its type and the values it allows."""

    type: type  # bool, int, float or str
    low: float | None = None
    low_inclusive: bool = True
    high: float | None = None
    high_inclusive: bool = True
    options: tuple[Scalar, ...] = ()  # the only values allowed (str's always; Literal's)

    def describe(self) -> str:
        if self.options:
            return "one of " + ", ".join(o if isinstance(o, str) else show(o) for o in self.options)
        if self.type is bool:
            return "true or false"
        kind = "an integer" if self.type is int else "a number"
        if self.low is not None and self.high is not None:
            lo = "[" if self.low_inclusive else "("
            hi = "]" if self.high_inclusive else ")"
            return f"{kind} in {lo}{self.low:g}, {self.high:g}{hi}"
        if self.low is not None:
            return f"{kind} {'>=' if self.low_inclusive else '>'} {self.low:g}"
        return kind

    def contains(self, x: float, *, open_high_ok: bool = False) -> bool:
        """Whether x is allowed. `open_high_ok`: x is the open end of a uniform range, so a high
        that the rule excludes is fine (dropout uniform [0, 1) never draws 1)."""
        if self.low is not None and (x < self.low or (x == self.low and not self.low_inclusive)):
            return False
        if self.high is not None:
            if x > self.high:
                return False
            if x == self.high and not self.high_inclusive and not open_high_ok:
                return False
        return True


# The built-in CNN's and the trainer's hyperparameters. conv_layers' bound here is a sanity
# bound; the images' side sets the real one (data_checks.py, shape_checks).
RULES: dict[str, Rule] = {
    "dropout": Rule(float, low=0.0, high=1.0, high_inclusive=False),
    "normalization": Rule(bool),
    "conv_layers": Rule(int, low=1, high=30),
    "filters": Rule(int, low=1, high=1024),
    "units": Rule(int, low=1, high=8192),
    "lr": Rule(float, low=0.0, low_inclusive=False),
    "weight_decay": Rule(float, low=0.0),
    "batch_size": Rule(int, low=1, high=60000),
    "optimizer": Rule(str, options=OPTIMIZERS),
    "epochs": Rule(int, low=1, high=10000),
    "precision": Rule(str, options=PRECISIONS),
    "lr_schedule": Rule(str, options=LR_SCHEDULES),
    "augment": Rule(bool),
}
MODEL_KEYS = ("conv_layers", "filters", "units", "dropout", "normalization")
TRAIN_KEYS = (
    "lr",
    "weight_decay",
    "batch_size",
    "optimizer",
    "epochs",
    "precision",
    "lr_schedule",
    "augment",
)
# Which distributions make sense for each type.
KINDS_FOR = {
    bool: ("choice", "grid"),
    str: ("choice", "grid"),
    int: ("choice", "grid", "randint"),
    float: ("choice", "grid", "uniform", "loguniform"),
}


TRAIN_RULES = {k: RULES[k] for k in TRAIN_KEYS}


def is_builtin(params: tuple[Param, ...] | None) -> bool:
    return params is None or params == builtin_params()


def rules_for(params: tuple[Param, ...] | None = None) -> dict[str, Rule]:
    """The hyperparameters a space may name: the model factory's `params` (None: the built-in
    CNN's), then the trainer's."""
    if is_builtin(params):
        return RULES
    assert params is not None
    model = {p.name: Rule(p.python_type, options=p.options) for p in params}
    return {**model, **TRAIN_RULES}


def defaults(params: tuple[Param, ...] | None = None) -> dict[str, Scalar]:
    """Every hyperparameter's default: the model factory's (None: the built-in CNN's, from
    ModelConfig) and the trainer's, from TrainConfig."""
    out: dict[str, Scalar] = {}
    if is_builtin(params):
        for f in fields(ModelConfig):
            if f.name in MODEL_KEYS:
                out[f.name] = cast(Scalar, f.default)
    else:
        assert params is not None
        out.update({p.name: p.default for p in params})
    for f in fields(TrainConfig):
        if f.name in TRAIN_KEYS:
            out[f.name] = cast(Scalar, f.default)
    return out


def check_value(
    path: str, name: str, value: Any, rules: dict[str, Rule] = RULES
) -> Scalar | Problem:
    """A constant (or one listed option) for `name`, converted to its type, or the problem."""
    rule = rules[name]
    wrong = Problem(path, f"{show(value)} is not allowed", rule.describe())
    if rule.type is bool:
        ok = isinstance(value, bool) and (not rule.options or value in rule.options)
        return value if ok else wrong
    if rule.type is str:
        ok = isinstance(value, str) and (not rule.options or value in rule.options)
        return value if ok else wrong
    number = as_number(value)
    if number is None or (rule.type is int and not isinstance(number, int)):
        return wrong
    if rule.type is float:
        number = float(number)
    if not math.isfinite(number) or not rule.contains(number):
        return wrong
    if rule.options and number not in rule.options:
        return wrong
    return number


def check_distribution(
    path: str, name: str, dist: Distribution, rules: dict[str, Rule] = RULES
) -> tuple[Distribution | None, list[Problem]]:
    """Whether every value `dist` can produce is allowed for `name`."""
    rule = rules[name]
    # Options are listed, never drawn from a range.
    kinds = ("choice", "grid") if rule.options else KINDS_FOR[rule.type]
    if dist.kind not in kinds:
        return None, [
            Problem(
                f"{path}.{dist.kind}",
                f"{dist.kind} does not fit {name}, which takes {rule.describe()}",
                f"use one of {', '.join(kinds)}",
            )
        ]
    sub = f"{path}.{dist.kind}"
    if dist.kind in ("choice", "grid"):
        values: list[Scalar] = []
        for v in dist.values:
            checked = check_value(sub, name, v, rules)
            if isinstance(checked, Problem):
                return None, [checked]
            if checked in values:  # 1e-3 and 0.001: two spellings, one value, identical trials
                return None, [
                    Problem(sub, f"{show(v)} is {show(checked)} again", "each value once")
                ]
            values.append(checked)
        return Distribution(dist.kind, tuple(values)), []
    # A range: both ends must be allowed; uniform's high end is never drawn.
    open_high = dist.kind in ("uniform", "loguniform")
    if not (rule.contains(dist.low) and rule.contains(dist.high, open_high_ok=open_high)):
        return None, [
            Problem(
                sub,
                f"range [{dist.low:g}, {dist.high:g}] is not within the allowed values",
                rule.describe(),
            )
        ]
    return dist, []


def possible_values(value: Scalar | Distribution) -> tuple[Scalar, ...]:
    """The values an entry can take (a range by its two ends), for rules between entries."""
    if isinstance(value, Distribution):
        return value.values
    return (value,)


def grid_values(dist: Distribution) -> tuple[Scalar, ...] | None:
    """The values a grid search enumerates for `dist`, or None if it is continuous."""
    if dist.kind in ("choice", "grid"):
        return dist.values
    if dist.kind == "randint":
        return tuple(range(int(dist.low), int(dist.high) + 1))
    return None


def model_kwargs(config: dict[str, Any], params: tuple[Param, ...] | None) -> dict[str, Any]:
    """A trial's model hyperparameters, as the factory's keyword arguments, of their types."""
    if is_builtin(params):
        return {k: v for k, v in vars(model_config(config)).items() if k in MODEL_KEYS}
    assert params is not None
    return {p.name: p.python_type(config[p.name]) for p in params}


def model_config(config: dict[str, Any]) -> ModelConfig:
    """The typed model config of a trial's resolved hyperparameters."""
    return ModelConfig(
        conv_layers=int(config["conv_layers"]),
        filters=int(config["filters"]),
        units=int(config["units"]),
        dropout=float(config["dropout"]),
        normalization=bool(config["normalization"]),
        image_size=IMAGE_SIZE,
    )


def train_config(config: dict[str, Any], **settings: Any) -> TrainConfig:
    """The typed trainer config of a trial's hyperparameters plus the sweep-wide settings
    (train_steps, eval_steps, seed, threads, device)."""
    return TrainConfig(
        lr=float(config["lr"]),
        weight_decay=float(config["weight_decay"]),
        batch_size=int(config["batch_size"]),
        optimizer=str(config["optimizer"]),
        epochs=int(config["epochs"]),
        # Absent from the trials of experiments made before they existed: their defaults.
        precision=str(config.get("precision", TrainConfig.precision)),
        lr_schedule=str(config.get("lr_schedule", TrainConfig.lr_schedule)),
        augment=bool(config.get("augment", TrainConfig.augment)),
        **settings,
    )
