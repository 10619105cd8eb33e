"""Typed values read out of loaded YAML, with a Problem recorded for every bad one.

`Fields` knows types, ranges and unknown keys, not the layout of any one file: each getter
returns the value, or the default after recording what is wrong, so reading goes on and one run
of `hpo validate` shows everything to fix. reader.py reads the search space with it, and tells
it where each known key belongs, for the hint on a key put in the wrong section.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from tune.core.errors import Problem, show, unknown_key, unknown_value
from tune.space.distributions import as_number

T = TypeVar("T")

MAX_INT = 2**63 - 1  # an int64: the bound where a setting names none, so 10**400 is refused


def _nowhere(key: str) -> str | None:
    return None


class Fields:
    """The problems found so far, and getters that add to them."""

    def __init__(self, home_of: Callable[[str], str | None] = _nowhere) -> None:
        self.problems: list[Problem] = []
        # The section ('' = top level) where a key unknown to one mapping belongs, None if
        # nowhere: `epochs:` at the top level is told "put it under search:", not "unknown key".
        self.home_of = home_of

    def _bad(self, path: str, value: Any, allowed: str) -> None:
        self.problems.append(Problem(path, f"{show(value)} is not allowed", allowed))

    def document(self, data: Any, keys: tuple[str, ...], needs: str) -> dict[str, Any] | None:
        """A file's top-level mapping, or None when the file holds none. `needs`: what the
        smallest valid file holds, for the message on an empty one."""
        if data is None:
            self.problems.append(Problem("", "the file is empty", needs))
            return None
        if not isinstance(data, dict):
            self.problems.append(
                Problem(
                    "",
                    f"expected a mapping of keys at the top, got {show(data)}",
                    f"keys: {', '.join(keys)}",
                )
            )
            return None
        return self.mapping("", data, keys)

    def mapping(
        self, path: str, raw: Any, keys: tuple[str, ...], what: str = "key"
    ) -> dict[str, Any]:
        """`raw` if it is a mapping (None: an empty one); each key not in `keys` is a problem,
        named `what` ('hyperparameter' under search:)."""
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
            home = self.home_of(key)
            if home is not None and home != path:
                where = f"under {home}:" if home else "at the top level"
                self.problems.append(
                    Problem(_join(path, key), f"'{key}' does not belong here", f"put it {where}")
                )
            else:
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


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
