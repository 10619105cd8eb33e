"""`hpo confirm`'s choices and results, on hand-built trials (the integration test is in
tests/tune/report/test_write.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import NOWHERE
from tune.core.errors import InputError
from tune.run.confirm import (
    CANDIDATE_KEY,
    confirmation,
    load_confirmation,
    param_space,
    pick_candidates,
    seeds_for,
)
from tune.run.trainable import SEED_KEY
from tune.space.spec import SweepSpec
from tune.store import records
from tune.store.records import CONFIRM, Candidate
from tune.store.trials import Trial


def trial(tid: str, acc: float, state: str = "TERMINATED", **config: object) -> Trial:
    history = ({"epoch": 1, "val_accuracy": acc - 0.01}, {"epoch": 2, "val_accuracy": acc})
    return Trial(tid, state, {"epochs": 2, "lr": 0.001, **config}, 2, history)


def test_candidates_are_the_top_distinct_configurations() -> None:
    trials = [
        trial("t0", 0.80, dropout=0.5),
        trial("t1", 0.90, dropout=0.0),
        trial("t2", 0.89, dropout=0.0),  # the same configuration as t1 (another repeat)
        trial("t3", 0.85, dropout=0.2, seed_of_ray=7),  # keys that are no hyperparameter
    ]
    picked = pick_candidates(trials, "val_accuracy", "max", 2, "sweep")
    assert picked == (
        Candidate(1, "t1", {"epochs": 2, "lr": 0.001, "dropout": 0.0}, 0.90),
        Candidate(3, "t3", {"epochs": 2, "lr": 0.001, "dropout": 0.2}, 0.85),
    )


def test_too_few_configurations_is_bad_input() -> None:
    trials = [trial("t0", 0.8, dropout=0.0), trial("t1", 0.7, dropout=0.0)]
    with pytest.raises(InputError) as e:
        pick_candidates(trials, "val_accuracy", "max", 2, "runs/x")
    assert e.value.lines() == [
        "runs/x: --top: 2 configurations asked for, but only 1 trial(s) of the sweep reported "
        "val_accuracy (--top at most 1)"
    ]


def test_every_candidate_meets_every_seed() -> None:
    candidates = (Candidate(1, "a", {"lr": 0.1}, 0.9), Candidate(4, "b", {"lr": 0.2}, 0.8))
    space = param_space(candidates, seeds_for(0, 3))
    assert space[CANDIDATE_KEY] == {"grid_search": [1, 4]}
    assert space[SEED_KEY] == {"grid_search": [1, 2, 3]}
    assert space["lr"].func({CANDIDATE_KEY: 4}) == 0.2


def test_confirmation_counts_only_completed_seeds_with_a_test() -> None:
    spec = SweepSpec(name="s", source="s.yaml", search={"epochs": 2}, num_samples=1)
    record = records.new_record(
        spec, NOWHERE, kind=CONFIRM, seeds=(1, 2),
        candidates=(Candidate(1, "a", {"epochs": 2}, 0.9), Candidate(2, "b", {"epochs": 2}, 0.8)),
    )  # fmt: skip

    def seed(tid: str, rank: int, acc: float, state: str = "TERMINATED") -> Trial:
        last = {"epoch": 2, "val_accuracy": acc, "test_accuracy": acc - 0.01, "test_loss": 0.3}
        history = ({"epoch": 1, "val_accuracy": acc - 0.05}, last)
        return Trial(tid, state, {CANDIDATE_KEY: rank, SEED_KEY: 1}, 2, history)

    trials = [
        seed("c0", 1, 0.80), seed("c1", 1, 0.82), seed("c2", 2, 0.88),
        seed("c3", 2, 0.99, state="RUNNING"),  # not finished: left out
    ]  # fmt: skip
    result = confirmation(replace(record, parent_run_id="confirm-run"), trials)
    assert [c.rank for c in result.candidates] == [2, 1]  # the higher mean first
    assert result.candidates[1].metric == [0.80, 0.82]
    assert result.candidates[0].test_accuracy == [0.87]
    assert result.p_value is None  # one seed on a side: no test
    assert result.run_id == "confirm-run"


def test_a_confirm_run_with_no_saved_trials_yet_has_no_results(tmp_path: Path) -> None:
    """Started but killed before Ray saved anything: nothing confirmed yet, not an error."""
    spec = SweepSpec(name="s", source="s.yaml", search={"epochs": 2}, num_samples=1)
    candidates = (Candidate(1, "a", {"epochs": 2}, 0.9),)
    record = records.new_record(spec, NOWHERE, kind=CONFIRM, seeds=(1,), candidates=candidates)
    records.save(records.confirm_dir(tmp_path), record)
    result = load_confirmation(tmp_path)
    assert result is not None and result.candidates == [] and result.winner is None
    assert load_confirmation(tmp_path / "other") is None
