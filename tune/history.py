"""Read a sweep's trials back from its experiment folder: state and config from Ray's saved
experiment state, every epoch's metrics from each trial's result.json.

Works on a finished, an interrupted and a running sweep (Ray saves its state every few seconds
and appends to result.json after every epoch), so a report can be made at any time.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tune import record as records
from tune import saved_state
from tune.analysis import Trial
from tune.distributions import as_number
from tune.files import UnreadableFile, inside, read_bounded
from tune.metrics import EPOCH, REPORTED, RESULT_FILE, RESULT_LIMIT
from tune.record import ExperimentRecord
from tune.status import rows_from_trials

log = logging.getLogger(__name__)

# Per-epoch values worth keeping: the metrics, and when the epoch ended (Ray's fields).
KEEP = (EPOCH, *REPORTED, "timestamp", "time_this_iter_s")


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
        row = rows[t.trial_id]
        history = read_history(Path(t.path) if t.path else None)
        trials.append(
            Trial(
                trial_id=t.trial_id,
                state=row.state,
                config=dict(t.config),
                max_epochs=row.max_epochs,
                history=history,
                error=row.error,
            )
        )
    return record, trials
