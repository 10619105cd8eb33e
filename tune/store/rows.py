"""One row a trial: id, state, epochs, best metric, config. Shared by the live progress table,
the end-of-sweep summary and `hpo status`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.core import states
from tune.core.files import UnreadableFile, read_tail
from tune.core.metrics import EPOCH
from tune.core.text import columns, fmt_value, varying_keys
from tune.store import records, saved_state
from tune.store.records import ExperimentRecord

ERROR_TAIL = 65536  # bytes of an error file read for its last line


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    state: str  # one of tune/core/states.py
    epochs: int  # epochs reported so far
    max_epochs: int  # epochs this trial would run if nobody stopped it
    best: float | None  # best value of the sweep's metric over its epochs
    config: dict[str, Any]
    error: str | None = None  # for a failed trial: the traceback's last line and its file
    # Times it failed, retries that recovered included, and then its last error as `error` says.
    failures: int = 0
    failure: str | None = None


def best_of(values: dict[str, Any] | None, mode: str) -> float | None:
    """Ray's per-metric summary {'max':, 'min':, 'last':, ...} -> the best value for `mode`."""
    if not values:
        return None
    value = values.get(mode)
    return float(value) if isinstance(value, int | float) and not math.isnan(value) else None


def rows_from_trials(trials: Iterable[Any], metric: str, mode: str) -> list[TrialRow]:
    """Rows from ray.tune Trial objects (live ones, in a callback) or the same fields read from
    disk (saved_state.SavedTrial)."""
    rows = []
    for t in trials:
        last = t.last_result or {}
        epochs = _count(last.get(EPOCH))
        max_epochs = _count(t.config.get("epochs")) or epochs
        summary = t.metric_analysis.get(metric)
        failures = int(getattr(t.run_metadata, "num_failures", 0) or 0)
        rows.append(
            TrialRow(
                trial_id=t.trial_id,
                state=states.state_of(t.status, epochs, max_epochs),
                epochs=epochs,
                max_epochs=max_epochs,
                best=best_of(summary, mode),
                config=dict(t.config),
                error=_error_of(t) if t.status == states.ERROR else None,
                failures=failures,
                failure=_error_of(t) if failures else None,
            )
        )
    return rows


def _count(value: Any) -> int:
    """A count of epochs Ray or the config gives (an int, or a float Ray made of one); 0 for
    anything else a damaged state file may hold."""
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _error_of(trial: Any) -> str:
    """'RuntimeError: boom (traceback in .../error.txt)' from Ray's error file of a trial."""
    # trial.error_file would need a running Ray; the storage path does not.
    name = trial.run_metadata.error_filename
    if not name or not trial.path:
        return "failed (no error file)"
    path = Path(trial.path, name)  # read from disk: checked to be inside its trial folder
    try:  # the last line is all it shows: a huge error file costs no more than its tail
        tail = read_tail(path, ERROR_TAIL).decode(errors="replace")
    except UnreadableFile:
        return f"failed (cannot read {path})"
    lines = [line for line in tail.splitlines() if line.strip()]
    return f"{lines[-1].strip() if lines else 'unknown error'} (traceback in {path})"


def retried_lines(rows: Sequence[TrialRow], most: int = 5) -> list[str]:
    """What `hpo status` and a sweep's summary say of trials that failed and were retried,
    those that recovered too: a retry that succeeds can hide a flaky node or a real bug."""
    retried = [r for r in rows if r.failures and r.state != states.ERROR]
    if not retried:
        return []
    lines = [f"hpo: {len(retried)} trial(s) failed and were retried from a checkpoint:"]
    for r in sorted(retried, key=lambda r: r.trial_id)[:most]:
        lines.append(
            f"  {r.trial_id}: {r.failures} failure(s), {states.label(r.state)}; last: {r.failure}"
        )
    if len(retried) > most:
        lines.append(f"  ... and {len(retried) - most} more (hpo status)")
    return lines


def sort_rows(rows: Sequence[TrialRow], mode: str) -> list[TrialRow]:
    """Best first; trials without a result last, in id order."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(rows, key=lambda r: (r.best is None, sign * (r.best or 0.0), r.trial_id))


def format_table(rows: Sequence[TrialRow], metric: str, keys: Sequence[str] | None = None) -> str:
    """A plain-text table, columns padded to their widest cell."""
    keys = list(keys) if keys is not None else varying_keys(rows)
    header = ["trial", "state", "epochs", f"best {metric}", *keys]
    body = [
        [
            r.trial_id,
            r.state,
            f"{r.epochs}/{r.max_epochs}",
            "-" if r.best is None else f"{r.best:.4f}",
            *(fmt_value(r.config.get(k, "")) for k in keys),
        ]
        for r in rows
    ]
    return columns(header, body)


def summary_line(rows: Sequence[TrialRow], metric: str, total: int | None = None) -> str:
    """'24/24 trials: 21 stopped, 3 terminated | best val_accuracy 0.9080 (d9eb9_00012)';
    `rows` best first."""
    counts = ", ".join(f"{n} {s.lower()}" for s, n in states.count(r.state for r in rows).items())
    best = next((r for r in rows if r.best is not None), None)
    best_text = f"best {metric} {best.best:.4f} ({best.trial_id})" if best else "no result yet"
    of = f"/{total}" if total is not None else ""
    return f"{len(rows)}{of} trials: {counts} | {best_text}"


def experiment_table(record: ExperimentRecord, rows: Sequence[TrialRow]) -> str:
    """`hpo status`'s view: the summary line, then one row a trial."""
    summary = summary_line(rows, record.metric, record.expected_trials(len(rows)))
    return f"{record.name}: {summary}\n{format_table(rows, record.metric)}"


def experiment_rows(folder: Path) -> tuple[ExperimentRecord, list[TrialRow]]:
    """Rows of a finished or interrupted experiment, read from Ray's saved state."""
    record = records.load(folder)
    rows = rows_from_trials(saved_state.load(folder), record.metric, record.mode)
    return record, sort_rows(rows, record.mode)
