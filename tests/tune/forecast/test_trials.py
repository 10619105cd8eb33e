"""The trials `hpo plan` expects a sweep to create, and what their epochs cost depends on."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from tests.conftest import SEARCH_SPACES
from tune.forecast import trials
from tune.space.grid import grid_points
from tune.space.spec import load_spec


def test_a_grid_is_planned_in_the_order_the_sweep_runs_it() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False)
    planned = trials.configs(spec, random.Random(0))
    assert len(planned) == spec.trial_count() == 24
    assert [{k: c[k] for k in p} for c, p in zip(planned, grid_points(spec), strict=True)] == (
        grid_points(spec)
    )
    assert all(c["filters"] == 32 and c["epochs"] == 12 for c in planned)
    # dropout changes what a trial learns, not what its epoch costs: 6 shapes, not 24.
    assert len({trials.shape(c) for c in planned}) == 6


def test_a_random_space_draws_its_trials_inside_the_space(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_tpe.yaml", local=False)
    spec = replace(spec, num_samples=50)
    planned = trials.configs(spec, random.Random(1))
    assert len(planned) == spec.trial_count() == 50
    assert all(0.0 <= c["dropout"] <= 0.7 and 1e-4 <= c["lr"] <= 1e-2 for c in planned)
    assert {c["conv_layers"] for c in planned} == {2, 3, 4}
    continuous, levels = trials.encode(spec, planned)
    knobs = [k for k in spec.search if hasattr(spec.search[k], "kind")]
    assert continuous == [k in ("dropout", "lr") for k in knobs]
    assert all(0.0 <= x <= 1.0 for row in levels for x, c in zip(row, continuous, strict=True) if c)
