"""The trials a grid search runs, in the order it runs them (no Ray here: `hpo plan` needs the
same order as the sweep, tune/forecast/)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from tune.space.distributions import Distribution
from tune.space.hyperparams import grid_values
from tune.space.spec import SweepSpec


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid algorithm's trials: every point of the grid, num_samples times, each pass in an
    order shuffled with the sweep's seed (as Optuna's GridSampler does). Ray would enumerate
    the grid with the alphabetically last knob changing slowest, so one whole half of the grid
    (say every model without BatchNorm) would reach ASHA's rungs first and set the cutoffs for
    the other; ASHA assumes trials arrive in no particular order (docs/architecture.md,
    "The search space")."""
    knobs = {k: v for k, v in spec.search.items() if isinstance(v, Distribution)}
    keys = list(knobs)
    grid = list(itertools.product(*(grid_values(value) or () for value in knobs.values())))
    shuffle = random.Random(spec.seed).shuffle
    points: list[dict[str, Any]] = []
    for _ in range(spec.num_samples):
        order = grid[:]
        shuffle(order)
        points += [dict(zip(keys, values, strict=True)) for values in order]
    return points
