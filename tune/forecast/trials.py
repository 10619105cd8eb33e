"""The trials a sweep will create, as `hpo plan` sees them: their hyperparameters, in the order
the sweep creates them, and the model shape each one trains (what its epoch costs)."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from tune.space.distributions import Distribution, same_value
from tune.space.grid import grid_points
from tune.space.hyperparams import grid_values
from tune.space.spec import SweepSpec

# Hyperparameters that change what a trial learns but not what its epoch costs: trials that
# differ only in these share a measurement. Every other one (conv_layers, filters, batch_size,
# a model factory's own parameters, ...) makes a shape of its own.
COST_NEUTRAL = frozenset({"dropout", "lr", "weight_decay", "epochs", "lr_schedule"})

Shape = tuple[tuple[str, Any], ...]


def configs(spec: SweepSpec, rng: random.Random) -> list[dict[str, Any]]:
    """Every trial's hyperparameters, in creation order: the grid as the sweep enumerates it
    (tune/space/grid.py), or num_samples draws (each grid entry's points crossed with them, as
    Ray does for random search); `rng` draws the ranges and choices."""
    constants = {k: v for k, v in spec.search.items() if not isinstance(v, Distribution)}
    if spec.search_algorithm == "grid":
        return [{**constants, **point} for point in grid_points(spec)]
    knobs = {k: v for k, v in spec.search.items() if isinstance(v, Distribution)}
    grid = (
        []
        if spec.search_algorithm == "optuna"
        else [k for k, v in knobs.items() if v.kind == "grid"]
    )
    points = list(itertools.product(*(grid_values(knobs[k]) or () for k in grid)))
    out = []
    for _ in range(spec.num_samples):
        for values in points:
            config = {**constants, **dict(zip(grid, values, strict=True))}
            config.update({k: draw(v, rng) for k, v in knobs.items() if k not in grid})
            out.append(config)
    return out


def draw(dist: Distribution, rng: random.Random) -> Any:
    """One value of `dist`, as Ray's domains draw it."""
    if dist.kind in ("choice", "grid"):
        return rng.choice(dist.values)
    if dist.kind == "randint":
        return rng.randint(int(dist.low), int(dist.high))
    if dist.kind == "loguniform":
        return math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
    return rng.uniform(dist.low, dist.high)


def shape(config: dict[str, Any]) -> Shape:
    """What a trial's epoch cost depends on: its hyperparameters but the cost-neutral ones."""
    return tuple(sorted((k, v) for k, v in config.items() if k not in COST_NEUTRAL))


def size(s: Shape) -> float:
    """A rough size of a shape, to order shapes and pair an unmeasured one with the nearest
    measured one: the product of its numbers (filters x units x conv_layers x batch_size)."""
    product = 1.0
    for _, v in s:
        if isinstance(v, int | float) and not isinstance(v, bool) and v > 0:
            product *= float(v)
    return product


def encode(spec: SweepSpec, trials: list[dict[str, Any]]) -> tuple[list[bool], list[list[float]]]:
    """The knobs as the curve model sees them (simulate.py): for each knob, whether it is
    continuous; for each trial, each knob's level (a category's index, or the value scaled to
    [0, 1], on a log scale for a loguniform range)."""
    knobs = {k: v for k, v in spec.search.items() if isinstance(v, Distribution)}
    continuous = [v.kind in ("uniform", "loguniform") for v in knobs.values()]
    rows = []
    for config in trials:
        row = []
        for (key, dist), cont in zip(knobs.items(), continuous, strict=True):
            value = config[key]
            if not cont:
                row.append(float(_index(dist, value)))
            elif dist.kind == "loguniform":
                row.append(math.log(value / dist.low) / math.log(dist.high / dist.low))
            else:
                row.append((value - dist.low) / ((dist.high - dist.low) or 1.0))
        rows.append(row)
    return continuous, rows


def _index(dist: Distribution, value: Any) -> int:
    if dist.kind == "randint":
        return int(value) - int(dist.low)
    return next(i for i, v in enumerate(dist.values) if same_value(v, value))
