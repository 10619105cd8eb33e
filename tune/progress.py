"""A compact live progress table in place of Ray's own console output.

Every `interval` seconds, when something changed, it prints one summary line (trials by state,
the best metric so far) and a table of the running trials and the best finished ones.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray import tune

from tune.status import count_states, format_table, rows_from_trials, sort_rows, varying_keys

SHOW_BEST = 5


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressCallback(tune.Callback):
    def __init__(
        self,
        name: str,
        metric: str,
        mode: str,
        total: int,
        interval: float = 10.0,
        out: TextIO | None = None,
    ) -> None:
        self.name, self.metric, self.mode, self.total = name, metric, mode, total
        self.interval = interval
        self.out = out
        self._start = time.monotonic()
        self._last_print = 0.0
        self._last_seen: tuple[Any, ...] = ()
        self.trials: list[Any] = []  # the last list Tune showed us: the final state at the end

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["out"] = None  # a stream cannot be pickled with the experiment
        return state

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self.trials = trials
        now = time.monotonic()
        if now - self._last_print < self.interval:
            return
        seen = tuple((t.trial_id, t.status, (t.last_result or {}).get("epoch")) for t in trials)
        if seen == self._last_seen:
            return
        self._last_print, self._last_seen = now, seen
        self.print(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.trials = trials
        self.print(trials, final=True)

    def print(self, trials: list[Any], final: bool = False) -> None:
        rows = rows_from_trials(trials, self.metric, self.mode)
        counts = count_states(rows)
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        ranked = sort_rows(rows, self.mode)
        best = next((r for r in ranked if r.best is not None), None)
        best_text = (
            f"best {self.metric} {best.best:.4f} ({best.trial_id})"
            if best and best.best is not None
            else "no result yet"
        )
        lines = [
            f"[{_duration(time.monotonic() - self._start)}] {self.name}: {len(rows)}/{self.total} trials: {states} | {best_text}"
        ]
        shown = (
            ranked
            if final
            else [r for r in ranked if r.state == "RUNNING"]
            + [r for r in ranked if r.state != "RUNNING" and r.best is not None][:SHOW_BEST]
        )
        if shown:
            lines.append(format_table(shown, self.metric, keys=varying_keys(rows)))
        stream = self.out or sys.stdout
        print("\n".join(lines), file=stream, flush=True)
