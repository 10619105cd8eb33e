"""`hpo plan` as a user runs it: the real trainer timed on the real Fashion-MNIST files, in its
own process; it writes nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import hpo
from tune.forecast.plan import ShapeCost, SweepPlan
from tune.forecast.simulate import Percentiles


def test_plan_of_the_smoke_space_prints_its_figures_and_writes_nothing(tmp_path: Path) -> None:
    done = hpo(["plan", str(SEARCH_SPACES / "smoke.yaml"), "--json"], cwd=tmp_path,
               HPO_STORAGE=str(tmp_path / "runs"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("trial_epochs", "wall_s"):
        assert figures[key]["p10"] <= figures[key]["median"] <= figures[key]["p90"]
    assert 4 <= figures["trial_epochs"]["median"] <= figures["max_trial_epochs"] == 8
    assert figures["slots"] >= 1 and figures["peak_mem_mb"] > 0 and figures["trials"] == 4
    assert {s["trials"] for s in figures["shapes"]} and all(
        s["epoch_s"] > 0 for s in figures["shapes"]
    )
    assert "Expected, over" in done.stdout and "trial-epochs" in done.stdout
    assert list(tmp_path.iterdir()) == []  # no experiment folder, no MLflow store


def test_a_bad_space_is_one_line_and_exit_2(tmp_path: Path) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text("search: {dropout: {uniform: [0.0, 2.0]}}\n")
    done = hpo(["plan", str(space)], cwd=tmp_path)
    assert done.returncode == 2
    assert "dropout" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


def test_trials_that_do_not_fit_the_memory_are_warned_of() -> None:
    spread = Percentiles(1.0, 2.0, 3.0)
    plan = SweepPlan(
        name="big", trials=4, max_trial_epochs=8, slots=2, per_machine=2, where="this machine",
        threads=1, shapes=(ShapeCost("", 4, 1.0, 700.0, True),), trial_epochs=spread,
        wall_s=spread, peak_mem_mb=700.0, memory_mb=1000.0, replays=1, measured_s=0.1,
    )  # fmt: skip
    assert plan.lines()[-1] == (
        "warning: 2 trials of 700 MB at once on one machine do not fit in 1000 MB: lower "
        "max_concurrent_trials, or the model"
    )
    assert plan.fits() is False
    assert replace(plan, per_machine=1).fits()  # a cluster whose nodes hold one trial each
    assert not replace(plan, slots=1).lines()[-1].startswith("warning")
