"""Trial states: Ray's own, the ones hpo derives from them, and how a person reads each.

Every module that looks at a trial's state uses these names (docs/architecture.md, "States").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# Ray's states.
PENDING = "PENDING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
ERROR = "ERROR"
COMPLETED = "TERMINATED"  # Ray's word for a trial that ran all its epochs
# Derived by hpo: a TERMINATED trial that ASHA (or the time budget) ended before its last
# epoch, one the time budget ended before its first, and, in a report of a running sweep, the
# trials the searcher has not created yet.
STOPPED_EARLY = "STOPPED"
NOT_STARTED = "NOT_STARTED"
NOT_CREATED = "NOT_CREATED"

RESUMABLE = (PENDING, RUNNING, PAUSED)  # what a resume runs on (errored ones too)
UNFINISHED = (*RESUMABLE, NOT_STARTED)  # a sweep that ends with one of these was cut short
DONE = (COMPLETED, STOPPED_EARLY)  # finished: will report nothing more

LABELS = {
    COMPLETED: "completed",
    STOPPED_EARLY: "stopped early",
    NOT_STARTED: "not started",
    NOT_CREATED: "not created yet",
}


def state_of(status: str, epochs: int, max_epochs: int) -> str:
    """Ray's status of a trial, made precise: TERMINATED early is STOPPED or NOT_STARTED."""
    if status == COMPLETED and epochs == 0:
        return NOT_STARTED
    if status == COMPLETED and epochs < max_epochs:
        return STOPPED_EARLY
    return status


def label(state: str) -> str:
    """A state as the report names it for people: 'stopped early', 'error'."""
    return LABELS.get(state, state.lower())


def count(states: Iterable[str]) -> dict[str, int]:
    """How many trials are in each state, states in alphabetical order."""
    return dict(sorted(Counter(states).items()))
