"""`hpo confirm`'s choices and results, on hand-built trials (the integration test is in
tests/tune/report/test_write.py)."""

from __future__ import annotations

import pytest

from tune.core.errors import InputError
from tune.run.confirm import param_space, pick_candidates, seeds_for
from tune.run.trainable import SEED_KEY
from tune.store.records import CANDIDATE_KEY, Candidate
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
