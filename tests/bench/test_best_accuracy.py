"""bench/best_accuracy.py's verdict on the two searchers, from their saved results."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def best_accuracy(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import harness as a sibling
    import best_accuracy

    return best_accuracy


def test_the_better_searcher_is_named_with_whether_the_seeds_tell_them_apart(
    best_accuracy: object,
) -> None:
    compare = best_accuracy.compare  # type: ignore[attr-defined]
    close = {
        "optuna": {"test_accuracy": [0.928, 0.9266, 0.9294]},
        "random": {"test_accuracy": [0.9300, 0.9310, 0.9290]},
    }
    assert compare(close) == (
        "the better confirmed model: random (0.9300 against 0.9280, +0.20 points; "
        "Welch p = 0.12: not distinguishable over these seeds)"
    )
    apart = {**close, "random": {"test_accuracy": [0.9400, 0.9410, 0.9390]}}
    assert compare(apart).endswith(": distinguishable)")
