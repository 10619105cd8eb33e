"""A sweep's trials read back from its experiment folder (`Trial`: config, state and every
epoch's metrics): state and config from Ray's saved experiment state, the epochs from each
trial's result.json.

Works on a finished, an interrupted and a running sweep (Ray saves its state every few seconds
and appends to result.json after every epoch), so a report can be made at any time.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.core.files import UnreadableFile, inside, read_bounded
from tune.core.metrics import EPOCH, REPORTED, RESULT_FILE, RESULT_LIMIT
from tune.space.distributions import as_number
from tune.store import records, saved_state
from tune.store.records import ExperimentRecord
from tune.store.rows import TrialRow, rows_from_trials

log = logging.getLogger(__name__)

# Per-epoch values worth keeping: the metrics, and when the epoch ended (Ray's fields).
KEEP = (EPOCH, *REPORTED, "timestamp", "time_this_iter_s")


@dataclass(frozen=True)
class Trial:
    """One trial: its config, its state, and what it reported after each epoch.

    The read-back types, each built from the one before: Ray's trial (live, in a callback) or
    saved_state.SavedTrial (its fields read from Ray's JSON) -> rows.TrialRow (one line of a
    table: state, epochs, best value) -> Trial (that row with every epoch, for the analysis)."""

    trial_id: str
    state: str  # one of tune/core/states.py
    config: dict[str, Any]
    max_epochs: int  # the epochs it would run if nobody stopped it
    history: tuple[dict[str, float], ...] = ()  # one entry an epoch, epoch 1 first
    error: str | None = None

    @property
    def epochs(self) -> int:
        return len(self.history)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """The epochs at which `key` was a finite number, and its values there: x and y of a
        curve, always of the same length (a diverged epoch's NaN is left out of both)."""
        pairs = [(int(h[EPOCH]), float(h[key])) for h in self.history if _finite(h.get(key))]
        return [e for e, _ in pairs], [v for _, v in pairs]

    def values(self, key: str) -> list[float]:
        return self.series(key)[1]

    @property
    def diverged_at(self) -> int | None:
        """The first epoch whose training or validation loss was not a finite number."""
        for h in self.history:
            if any(_nonfinite(h.get(k)) for k in ("train_loss", "val_loss")):
                return int(h[EPOCH])
        return None

    def last(self, key: str) -> float | None:
        values = self.values(key)
        return values[-1] if values else None

    def best(self, metric: str, mode: str) -> float | None:
        values = self.values(metric)
        if not values:
            return None
        return max(values) if mode == "max" else min(values)

    def at_epoch(self, key: str, epoch: int) -> float | None:
        epochs, values = self.series(key)
        return values[epochs.index(epoch)] if epoch in epochs else None

    @classmethod
    def from_row(cls, row: TrialRow, history: tuple[dict[str, float], ...]) -> Trial:
        return cls(row.trial_id, row.state, dict(row.config), row.max_epochs, history, row.error)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _nonfinite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def read_history(trial_dir: Path | None) -> tuple[dict[str, float], ...]:
    """One entry an epoch, in epoch order. A trial resumed right after its last epoch may have
    that epoch twice in result.json (Ray echoes it); the first copy is kept. A result.json that
    is a link out of the trial's folder, not a regular file, or over RESULT_LIMIT is not read
    (a warning says so): the trial shows no epochs."""
    if trial_dir is None:
        return ()
    path = inside(trial_dir, RESULT_FILE)
    if path is None or not path.exists():
        return ()
    try:
        text = read_bounded(path, RESULT_LIMIT).decode(errors="replace")
    except UnreadableFile as e:
        log.warning("%s cannot be read: %s; its epochs are left out", path, e)
        return ()
    epochs: dict[int, dict[str, float]] = {}
    for line in text.splitlines():
        try:
            result = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a line cut short by a kill mid-write, or not Ray's
        epoch = result.get(EPOCH) if isinstance(result, dict) else None
        if not isinstance(epoch, int) or epoch < 1 or epoch in epochs:
            continue
        epochs[epoch] = {k: result[k] for k in KEEP if _is_number(result.get(k))}
    return tuple(epochs[e] for e in sorted(epochs))


def _is_number(value: Any) -> bool:
    """A number a trial reported (not a string, a bool, or an integer beyond a float's range)."""
    return isinstance(value, int | float) and as_number(value) is not None


def load_trials(experiment_dir: Path) -> tuple[ExperimentRecord, list[Trial]]:
    """The experiment's record and every trial Ray knows of, in trial id order."""
    record = records.load(experiment_dir)
    saved = saved_state.load(experiment_dir)
    rows = {r.trial_id: r for r in rows_from_trials(saved, record.metric, record.mode)}
    trials = []
    for t in sorted(saved, key=lambda t: t.trial_id):
        history = read_history(Path(t.path) if t.path else None)
        trials.append(Trial.from_row(rows[t.trial_id], history))
    return record, trials
