"""A compact live progress table in place of Ray's own console output.

Every `interval` seconds, when something changed, it prints one summary line (trials by state,
the best metric so far) and a table of the running trials and the best finished ones.
"""

from __future__ import annotations

import time
from typing import Any

from ray import tune as ray_tune

from tune.core import states
from tune.core.metrics import EPOCH
from tune.core.text import duration, varying_keys
from tune.store.rows import format_table, rows_from_trials, sort_rows, summary_line

SHOW_BEST = 5


class ProgressCallback(ray_tune.Callback):
    def __init__(
        self,
        name: str,
        metric: str,
        mode: str,
        total: int,
        interval: float = 10.0,
    ) -> None:
        self.name, self.metric, self.mode, self.total = name, metric, mode, total
        self.interval = interval
        self._start = time.monotonic()
        self._last_print = 0.0
        self._last_seen: tuple[Any, ...] = ()

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        self._start = time.monotonic()  # a resumed sweep counts from its own start

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now - self._last_print < self.interval:
            return
        seen = tuple((t.trial_id, t.status, (t.last_result or {}).get(EPOCH)) for t in trials)
        if seen == self._last_seen:
            return
        self._last_print, self._last_seen = now, seen
        self.print(trials)

    def print(self, trials: list[Any]) -> None:
        rows = sort_rows(rows_from_trials(trials, self.metric, self.mode), self.mode)
        running = [r for r in rows if r.state == states.RUNNING]
        leaders = [r for r in rows if r.state != states.RUNNING and r.best is not None]
        elapsed = duration(time.monotonic() - self._start)
        lines = [f"[{elapsed}] {self.name}: {summary_line(rows, self.metric, self.total)}"]
        if running or leaders:
            shown = running + leaders[:SHOW_BEST]
            lines.append(format_table(shown, self.metric, keys=varying_keys(rows)))
        print("\n".join(lines), flush=True)
