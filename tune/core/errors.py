"""Problems found in user input, reported all at once, one line each.

The line format is a contract (docs/architecture.md, "The command line"): `FILE: key.path: what is wrong (what is allowed)`.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass

# Exit codes (docs/architecture.md, "The command line").
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl+C
EXIT_TERMINATED = 143  # the shell's code for SIGTERM (tune/core/signals.py)
EXIT_BROKEN_PIPE = 141  # the shell's code for SIGPIPE: the reader of stdout went away


class UsageError(Exception):
    """A bad flag or name: exit 2, one line."""


@dataclass(frozen=True)
class Problem:
    path: str  # dotted key path, e.g. "search.dropout"; "" for the whole file
    message: str  # what is wrong, with the value
    allowed: str = ""  # what is allowed instead

    def format(self, source: str) -> str:
        where = f"{source}: {self.path}: " if self.path else f"{source}: "
        tail = f" ({self.allowed})" if self.allowed else ""
        return f"{where}{self.message}{tail}"


class InUseError(Exception):
    """Another process runs this experiment: exit 2, one line."""


class InputError(Exception):
    """Bad input (a file, a flag, a record, a folder), with every problem it has, one line
    each: exit 2, and nothing has been started or written."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [p.format(self.source) for p in self.problems]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """'did you mean 'dropout'? ' when a known word is close, else ''."""
    known = list(known)
    same_but_case = [k for k in known if k.lower() == word.lower()]
    close = same_but_case or difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def unknown_key(path: str, key: str, known: Iterable[str], what: str = "key") -> Problem:
    """`search.dropuot: unknown hyperparameter (did you mean 'dropout'? known: ...)`: the path
    names the offending key itself."""
    return Problem(f"{path}.{key}" if path else key, f"unknown {what}", _hint(key, known))


def unknown_value(path: str, value: str, known: Iterable[str]) -> Problem:
    """`search_algorithm: unknown value 'bayes' (known: grid, optuna, random)`."""
    return Problem(path, f"unknown value {show(value)}", _hint(value, known))


def _hint(word: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return f"{did_you_mean(word[:40], known)}known: {', '.join(known)}"


SHOW_LIMIT = 80  # characters of a value shown in a message; a message stays one short line
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 3, 8, 8
_REPR.maxstring = _REPR.maxother = SHOW_LIMIT


def show(value: object) -> str:
    """A value as the user wrote it in YAML terms, for messages; at most about SHOW_LIMIT
    characters, whatever the value (a file of aliases can make a value of millions)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _REPR.repr(value)
    return text if len(text) <= SHOW_LIMIT else text[: SHOW_LIMIT - 3] + "..."
