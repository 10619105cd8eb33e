"""A sweep replayed many times on simulated learning curves: how many trial-epochs ASHA lets
run and how long the whole takes, as percentiles (docs/architecture.md, "Plan").

What is known is measured: each trial's epoch cost (measure.py), the trials and their order
(trials.py), the parallel slots, and the start-up costs of BENCHMARKS.md (Overheads). What is
not known until the sweep runs is how good each trial is, which is what ASHA decides on. That
is modelled from the space's own structure, drawn afresh for every replay:
- each knob matters by a random amount; a categorical knob gives each of its values a random
  effect, shared by every trial with that value; a continuous one a random smooth function of
  the value;
- each trial adds noise of its own that the knobs do not explain;
- how far a trial's standing moves between rungs is drawn from none (the ranking after one
  epoch holds to the end: ASHA stops the most, the optimistic case) to as much as the trials
  differ (the pessimistic case);
- under Optuna, later trials are better by a random drift after its random start-up trials
  (TPE learns), so that more of them pass the rungs.
Ray's ASHA rule is replayed exactly (`Rungs`): at each rung a trial goes on only if it is in the
top 1/reduction_factor of the results recorded there so far, so the first one always does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Asha:
    grace_period: int
    reduction_factor: float
    max_t: int


@dataclass(frozen=True)
class Overheads:
    """Seconds a sweep spends besides its trials' epochs, measured on the 2-CPU machine of
    BENCHMARKS.md (bench/sweep_overhead.py: median of 3)."""

    before_s: float = 11.1  # imports, Ray's start, the data, the Tuner to its first trial
    fresh_worker_s: float = 1.6  # each slot's first trial: a new worker imports and converts
    trial_setup_s: float = 0.4  # a trial on a reused worker, and the slot's switch to it
    report_s: float = 0.23  # the checkpoint and report after each epoch
    after_s: float = 1.0  # MLflow's flush, the summary, Ray's stop
    epoch_noise: float = 0.08  # an epoch's time varies by this much (log-normal sigma)


@dataclass(frozen=True)
class Trial:
    epochs: int  # the epochs it asks for
    epoch_s: float  # one epoch's measured cost, checkpoint included
    levels: tuple[float, ...]  # each knob's level (trials.encode)


@dataclass(frozen=True)
class Percentiles:
    p10: float
    median: float
    p90: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(p10), float(p50), float(p90))


@dataclass(frozen=True)
class Outlook:
    trial_epochs: Percentiles
    wall_s: Percentiles
    replays: int


class Rungs:
    """Ray's ASHA (AsyncHyperBandScheduler, one bracket) deciding on results as they come."""

    def __init__(self, asha: Asha) -> None:
        count = int(math.log(asha.max_t / asha.grace_period) / math.log(asha.reduction_factor) + 1)
        self.factor = asha.reduction_factor
        # Highest milestone first, as Ray's _Bracket.on_result walks them.
        self.rungs: list[tuple[float, dict[Hashable, float]]] = [
            (asha.grace_period * asha.reduction_factor**k, {}) for k in reversed(range(count))
        ]

    def stops(self, trial: Hashable, epoch: int, value: float) -> bool:
        """Whether ASHA stops `trial` on this result (higher is better)."""
        for milestone, recorded in self.rungs:
            if epoch >= milestone and trial in recorded:
                return False
            if epoch < milestone or trial in recorded:
                continue
            stop = bool(recorded) and value < np.nanpercentile(
                list(recorded.values()), (1 - 1 / self.factor) * 100
            )
            recorded[trial] = value
            return bool(stop)
        return False


def outlook(
    trials: Sequence[Trial],
    continuous: Sequence[bool],
    slots: int,
    asha: Asha | None,
    overheads: Overheads,
    *,
    startup_trials: int | None = None,
    time_budget_s: float | None = None,
    replays: int = 400,
    seed: int = 0,
) -> Outlook:
    """Trial-epochs and wall seconds over `replays` replays of the sweep. `startup_trials`:
    Optuna's random start-up trials (None: not Optuna)."""
    rng = random.Random(seed)
    epochs, walls = [], []
    for _ in range(replays):
        quality = _qualities(trials, continuous, startup_trials, rng)
        e, w = _replay(trials, quality, slots, asha, overheads, time_budget_s, rng)
        epochs.append(e)
        walls.append(w)
    return Outlook(Percentiles.of(epochs), Percentiles.of(walls), replays)


def _qualities(
    trials: Sequence[Trial], continuous: Sequence[bool], startup: int | None, rng: random.Random
) -> list[float]:
    """Each trial's standing in this replay, from the knobs' random effects (module docstring)."""
    n = len(trials)
    quality = [0.0] * n
    for j, cont in enumerate(continuous):
        weight = rng.uniform(0.0, 1.0)
        if cont:
            freq, phase = rng.uniform(0.3, 1.0), rng.uniform(0.0, 1.0)
            effect = [weight * math.sin(2 * math.pi * (freq * t.levels[j] + phase)) for t in trials]
        else:
            per_level: dict[float, float] = {}
            effect = [per_level.setdefault(t.levels[j], rng.gauss(0.0, weight)) for t in trials]
        quality = [q + e for q, e in zip(quality, effect, strict=True)]
    own = rng.uniform(0.2, 1.0)
    quality = [q + rng.gauss(0.0, own) for q in quality]
    if startup is not None and n > startup:
        drift = rng.uniform(0.0, 1.0) * float(np.std(quality))
        quality = [q + drift * max(0, i - startup) / (n - startup) for i, q in enumerate(quality)]
    return quality


def _replay(
    trials: Sequence[Trial],
    quality: Sequence[float],
    slots: int,
    asha: Asha | None,
    cost: Overheads,
    budget: float | None,
    rng: random.Random,
) -> tuple[int, float]:
    """One replay: trials start in order as slots free up; each epoch's result goes to ASHA."""
    rungs = Rungs(asha) if asha is not None else None
    moves = rng.uniform(0.0, 1.0) * (float(np.std(quality)) or 1.0)
    last = [min(t.epochs, asha.max_t) if asha else t.epochs for t in trials]

    def epoch_s(i: int) -> float:
        return trials[i].epoch_s * rng.lognormvariate(0.0, cost.epoch_noise) + cost.report_s

    waiting = list(range(len(trials)))
    running: dict[int, tuple[float, int]] = {}  # trial -> (when its epoch ends, that epoch)
    fresh, now, done = slots, 0.0, 0
    end = math.inf if budget is None else budget - cost.before_s
    while waiting or running:
        while waiting and len(running) < slots:
            i = waiting.pop(0)
            start = cost.fresh_worker_s if fresh > 0 else cost.trial_setup_s
            fresh -= 1
            running[i] = (now + start + epoch_s(i), 1)
        i, (at, epoch) = min(running.items(), key=lambda item: item[1][0])
        if at > end:  # the time budget ends the sweep
            return done, cost.before_s + end + cost.after_s
        now, done = at, done + 1
        value = quality[i] + rng.gauss(0.0, moves)
        stopped = rungs is not None and rungs.stops(i, epoch, value)
        if stopped or epoch >= last[i]:
            del running[i]
        else:
            running[i] = (now + epoch_s(i), epoch + 1)
    return done, cost.before_s + now + cost.after_s
