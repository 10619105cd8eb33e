"""The YAML grammar for one search-space entry: a constant or a one-key distribution.

    dropout: 0.5                          constant
    dropout: {choice: [0.2, 0.5]}         sampled from the list
    dropout: {grid: [0.0, 0.2, 0.5]}      every value, crossed with the other grids
    lr: {uniform: [0.001, 0.01]}          continuous, [low, high)
    lr: {loguniform: [1.0e-4, 1.0e-2]}    continuous on a log scale, low > 0
    conv_layers: {randint: [2, 4]}        integer, both ends inclusive

`parse_entry` is the one pure function that reads an entry (as hydra's optuna sweeper does); it
checks the grammar only. What values a hyperparameter allows is hyperparams.py's business.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

from tune.core.errors import Problem, did_you_mean, show

KINDS = ("choice", "grid", "uniform", "loguniform", "randint")
LISTS = ("choice", "grid")  # a non-empty list of values
RANGES = ("uniform", "loguniform", "randint")  # [low, high]

Scalar = bool | int | float | str

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def as_number(value: Any) -> float | int | None:
    """An int or float, or a string PyYAML left as text ('1e-3' has no dot, so YAML 1.1 reads
    it as a string); None for anything else, booleans included, and for an integer too large
    for a float (a 400-digit literal): every rule compares numbers as floats."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= sys.float_info.max else None
    if isinstance(value, float):
        return value
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return None


@dataclass(frozen=True)
class Distribution:
    kind: str  # one of KINDS
    values: tuple[Scalar, ...]  # the options (choice, grid) or (low, high) (ranges)

    @property
    def low(self) -> float:
        return float(self.values[0])

    @property
    def high(self) -> float:
        return float(self.values[1])

    def describe(self) -> str:
        return f"{self.kind}: [{', '.join(show(v) for v in self.values)}]"

    def contains(self, value: Any) -> bool:
        """Whether `value` is one this entry can give (a bool is never taken for 0 or 1)."""
        if self.kind in LISTS:
            return any(same_value(value, v) for v in self.values)
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number):
            return False
        if self.kind == "randint" and not float(number).is_integer():
            return False
        return self.low <= number <= self.high


def same_value(a: Any, b: Any) -> bool:
    """Equal, and of one kind: numbers (1 and 1.0), bools, or strings; True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def parse_entry(path: str, raw: Any) -> tuple[Scalar | Distribution | None, list[Problem]]:
    """Read one entry of `search:`. Returns the constant or Distribution, or None and why not."""
    if isinstance(raw, list):
        return None, [
            Problem(
                path,
                f"a bare list {show(raw)} is not a value",
                "to search over values write {choice: [...]} or {grid: [...]}",
            )
        ]
    if raw is None:
        return None, [Problem(path, "empty value", "a constant or a one-key distribution")]
    if not isinstance(raw, dict):
        return raw, []
    if len(raw) != 1:
        found = show(list(raw)) if raw else "none"
        return None, [
            Problem(
                path,
                f"a distribution is a mapping with exactly one key, found {len(raw)} ({found})",
                f"one of {', '.join(KINDS)}",
            )
        ]
    ((kind, args),) = raw.items()
    sub = f"{path}.{kind}"
    if kind not in KINDS:
        return None, [
            Problem(
                path,
                f"unknown distribution {show(kind)}",
                f"{did_you_mean(str(kind)[:40], KINDS)}known: {', '.join(KINDS)}",
            )
        ]
    if not isinstance(args, list):
        shape = "a non-empty list of values" if kind in LISTS else "a list [low, high]"
        return None, [Problem(sub, f"expected a list, got {show(args)}", shape)]
    if kind in LISTS:
        return _parse_list(sub, kind, args)
    return _parse_range(sub, kind, args)


def _parse_list(path: str, kind: str, args: list[Any]) -> tuple[Distribution | None, list[Problem]]:
    if not args:
        return None, [Problem(path, "empty list", "at least one value")]
    bad = [a for a in args if isinstance(a, dict | list) or a is None]
    if bad:
        return None, [
            Problem(path, f"{show(bad[0])} is not a single value", "numbers, strings, booleans")
        ]
    seen: list[Any] = []
    for a in args:
        # 1 == 1.0 == True in Python; compare with the type so `[1, true]` is not a duplicate.
        if any(type(a) is type(s) and a == s for s in seen):
            return None, [Problem(path, f"{show(a)} is listed twice", "each value once")]
        seen.append(a)
    return Distribution(kind, tuple(args)), []


def _parse_range(
    path: str, kind: str, args: list[Any]
) -> tuple[Distribution | None, list[Problem]]:
    if len(args) != 2:
        return None, [Problem(path, f"expected [low, high], got {len(args)} values", "two numbers")]
    low, high = as_number(args[0]), as_number(args[1])
    if low is None or high is None:
        bad = args[0] if low is None else args[1]
        return None, [Problem(path, f"{show(bad)} is not a number", "[low, high] as numbers")]
    if not (math.isfinite(low) and math.isfinite(high)):
        return None, [
            Problem(path, f"bounds {show(args)} must be finite", "[low, high] as finite numbers")
        ]
    if kind == "randint" and not (isinstance(low, int) and isinstance(high, int)):
        return None, [Problem(path, f"bounds {show(args)} must be integers", "randint: [2, 4]")]
    if low >= high:
        return None, [
            Problem(
                path,
                f"low {show(low)} >= high {show(high)}",
                "low < high; for one value write a constant",
            )
        ]
    if kind == "loguniform" and low <= 0:
        return None, [Problem(path, f"low {show(low)} <= 0", "loguniform needs 0 < low < high")]
    return Distribution(kind, (low, high)), []
