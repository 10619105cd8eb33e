"""`hpo sweep FILE --warm-start NAME|PATH`: a new sweep that starts from an earlier one.

With Optuna, the new sweep's study is first told every finished trial of the earlier experiment
whose values all lie inside the new space, with its final metric value (Ray's OptunaSearch adds
them as completed trials: `points_to_evaluate` with `evaluated_rewards`); the others are
skipped, and counted. Random and grid search do not learn from results: the earlier best is
only named as the baseline. The earlier folder is read as `hpo status` reads it: plain JSON,
nothing unpickled (docs/architecture.md, "Warm start").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.core import states
from tune.core.errors import UsageError
from tune.space.distributions import Distribution, same_value
from tune.space.spec import SweepSpec
from tune.store.trials import Trial, load_trials

# The trials a warm start may take: those that ran to their end or that ASHA stopped.
FINISHED = (states.COMPLETED, states.STOPPED_EARLY)


@dataclass(frozen=True)
class WarmStart:
    """What the new sweep takes from the earlier experiment."""

    name: str  # the earlier experiment's name
    finished: int  # its finished trials with a final metric value
    points: tuple[dict[str, Any], ...]  # of those inside the new space: the searched values
    values: tuple[float, ...]  # and their final metric values, in the same order
    best: float | None  # the earlier best final value, and its trial
    best_trial: str | None
    told: bool  # whether the searcher learns from them (Optuna), or they are a baseline only

    @property
    def skipped(self) -> int:
        return self.finished - len(self.points)

    def line(self) -> str:
        """The one line `hpo sweep` prints at start."""
        if not self.told:
            best = "none finished" if self.best is None else f"{self.best:.4g} ({self.best_trial})"
            return (
                f"warm start: {self.name}'s best as the baseline: {best}; random and grid "
                "search do not learn from earlier trials"
            )
        return (
            f"warm start: {len(self.points)} of {self.finished} trials of {self.name} reused "
            f"({self.skipped} outside the new space)"
        )

    def params(self) -> dict[str, Any]:
        """The parent run's params."""
        return {
            "warm_start": self.name,
            "warm_start_reused": len(self.points) if self.told else 0,
            "warm_start_skipped": self.skipped if self.told else self.finished,
            "warm_start_baseline": "none" if self.best is None else f"{self.best:.6g}",
        }


def read(folder: Path, spec: SweepSpec) -> WarmStart:
    """The earlier experiment in `folder`, for the new sweep `spec`. UsageError (exit 2) when it
    measured another metric, or in the other direction: its values would mislead the search."""
    record, trials = load_trials(folder)
    if record.is_confirm:
        raise UsageError(f"--warm-start {folder}: a confirm run; name its sweep ({folder.parent})")
    if (record.metric, record.mode) != (spec.metric.name, spec.metric.mode):
        raise UsageError(
            f"--warm-start {record.name}: it measured {record.metric} ({record.mode}), this sweep "
            f"{spec.metric.name} ({spec.metric.mode}); a warm start needs the same metric and mode"
        )
    done = [
        (t, v)
        for t in trials
        if t.state in FINISHED and (v := t.last(spec.metric.name)) is not None
    ]
    inside = [(t, v) for t, v in done if within(spec, t.config)]
    varied = [k for k, v in spec.search.items() if isinstance(v, Distribution)]
    best = _best(done, spec.metric.mode)
    return WarmStart(
        name=record.name,
        finished=len(done),
        points=tuple({k: t.config[k] for k in varied} for t, _ in inside),
        values=tuple(v for _, v in inside),
        best=None if best is None else best[1],
        best_trial=None if best is None else best[0].trial_id,
        told=spec.search_algorithm == "optuna",
    )


def within(spec: SweepSpec, config: dict[str, Any]) -> bool:
    """Whether every hyperparameter of the new space has a value in `config` that the new
    space could give: inside its distribution, or equal to its constant."""
    for key, entry in spec.search.items():
        if key not in config:
            return False
        value = config[key]
        if isinstance(entry, Distribution):
            if not entry.contains(value):
                return False
        elif not same_value(value, entry):
            return False
    return True


def _best(done: list[tuple[Trial, float]], mode: str) -> tuple[Trial, float] | None:
    if not done:
        return None
    pick = max if mode == "max" else min
    return pick(done, key=lambda tv: tv[1])
