"""Read a sweep's trials back from its experiment folder: state and config from Ray's saved
experiment state, every epoch's metrics from each trial's result.json.

Works on a finished, an interrupted and a running sweep (Ray saves its state every few seconds
and appends to result.json after every epoch), so a report can be made at any time.
"""

from __future__ import annotations

import json
from pathlib import Path

from tune import record as records
from tune import saved_state
from tune.analysis import Trial
from tune.metrics import EPOCH, REPORTED
from tune.record import ExperimentRecord
from tune.status import rows_from_trials

RESULT_FILE = "result.json"
# Per-epoch values worth keeping: the metrics, and when the epoch ended (Ray's fields).
KEEP = (EPOCH, *REPORTED, "timestamp", "time_this_iter_s")


def read_history(trial_dir: Path | None) -> tuple[dict[str, float], ...]:
    """One entry an epoch, in epoch order. A trial resumed right after its last epoch may have
    that epoch twice in result.json (Ray echoes it); the first copy is kept."""
    if trial_dir is None:
        return ()
    path = trial_dir / RESULT_FILE
    if not path.is_file():
        return ()
    epochs: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        try:
            result = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill mid-write
        epoch = result.get(EPOCH)
        if not isinstance(epoch, int) or epoch < 1 or epoch in epochs:
            continue
        epochs[epoch] = {k: result[k] for k in KEEP if isinstance(result.get(k), int | float)}
    return tuple(epochs[e] for e in sorted(epochs))


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
