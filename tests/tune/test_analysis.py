"""The report's pure functions on hand-built trial tables."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tune import analysis
from tune.analysis import Confirmed
from tune.core.text import varying_keys
from tune.store.trials import Trial


def trial(
    tid: str,
    accs: list[float],
    state: str = "TERMINATED",
    max_epochs: int = 3,
    train: list[float] | None = None,
    val: list[float] | None = None,
    start: float = 1000.0,
    **config: Any,
) -> Trial:
    """A trial whose val_accuracy after epoch i is accs[i]; losses optional."""
    history = []
    for i, acc in enumerate(accs):
        h = {"epoch": i + 1, "val_accuracy": acc, "train_seconds": 2.0, "eval_seconds": 1.0}
        h["timestamp"] = start + 3.0 * (i + 1)
        h["time_this_iter_s"] = 3.0
        if train is not None and val is not None:
            h["train_loss"], h["val_loss"] = train[i], val[i]
        history.append(h)
    return Trial(tid, state, dict(config), max_epochs, tuple(history))


def table() -> list[Trial]:
    return [
        trial("t0", [0.80, 0.85, 0.90], dropout=0.0, normalization=True, lr=1e-3),
        trial("t1", [0.70], "STOPPED", dropout=0.5, normalization=True, lr=1e-2),
        trial("t2", [0.75, 0.78], "STOPPED", dropout=0.0, normalization=False, lr=1e-4),
        trial("t3", [0.60], "STOPPED", dropout=0.5, normalization=False, lr=1e-3),
        trial("t4", [], "PENDING", max_epochs=3, dropout=0.5, normalization=False, lr=1e-3),
    ]


def test_leaderboard_orders_by_best_epoch_for_the_mode() -> None:
    trials = table()
    assert [t.trial_id for t in analysis.leaderboard(trials, "val_accuracy", "max")] == [
        "t0",
        "t2",
        "t1",
        "t3",
    ]
    # For a loss (mode min) the lowest value of each trial counts and comes first.
    assert [t.trial_id for t in analysis.leaderboard(trials, "val_accuracy", "min")] == [
        "t3",
        "t1",
        "t2",
        "t0",
    ]


def test_varying_params_and_scales() -> None:
    trials = table()
    assert varying_keys(trials) == ["dropout", "normalization", "lr"]
    assert analysis.scale_of([True, False]) == "discrete"
    assert analysis.scale_of([1e-3, 1e-2], "loguniform") == "log"
    assert analysis.scale_of([0.1 * i for i in range(20)]) == "linear"
    assert analysis.scale_of([1, 2, 3]) == "discrete"


def test_effects_per_value_with_the_common_epoch() -> None:
    rows = analysis.effects(table(), "dropout", "val_accuracy", "max")
    assert [r.value for r in rows] == [0.0, 0.5]
    zero, half = rows
    assert (zero.trials, half.trials) == (2, 2)  # the pending trial reported nothing
    assert zero.mean_best == pytest.approx((0.90 + 0.78) / 2)
    assert zero.best == 0.90
    # Every reporting trial reached epoch 1: the same-budget comparison uses it.
    assert analysis.common_epoch(table()) == 1
    assert zero.mean_at_common == pytest.approx((0.80 + 0.75) / 2)
    assert half.mean_at_common == pytest.approx((0.70 + 0.60) / 2)


def test_trend_on_a_log_scale_is_per_decade() -> None:
    xs = [1e-4, 1e-3, 1e-2]
    line = analysis.trend(xs, [0.5, 0.7, 0.9], log=True)
    assert line is not None
    assert line.slope == pytest.approx(0.2)
    assert line.at(1e-3) == pytest.approx(0.7)
    assert analysis.trend([1.0, 1.0], [0.1, 0.2], log=False) is None


def test_interaction_means_counts_and_empty_cells() -> None:
    trials = [*table(), trial("t5", [0.88], dropout=0.0, normalization=True)]
    data = analysis.interaction(trials, "dropout", "normalization", "val_accuracy", "max")
    assert data.a_values == [0.0, 0.5]
    assert data.b_values == [False, True]
    assert data.counts == [[1, 2], [1, 1]]
    assert data.means[0][1] == pytest.approx((0.90 + 0.88) / 2)
    only = analysis.interaction(trials[:2], "dropout", "normalization", "val_accuracy", "max")
    assert only.means == [[0.90], [0.70]]
    gap = analysis.interaction(
        [trials[0], trials[3]], "dropout", "normalization", "val_accuracy", "max"
    )
    assert gap.means[0][0] is None and gap.counts[0][0] == 0


def test_interaction_pairs_put_normalization_first() -> None:
    scales = {"dropout": "discrete", "conv_layers": "discrete", "normalization": "discrete"}
    scales["lr"] = "log"
    pairs = analysis.interaction_pairs(["dropout", "conv_layers", "normalization", "lr"], scales)
    assert pairs[:2] == [("dropout", "normalization"), ("conv_layers", "normalization")]
    assert ("dropout", "conv_layers") in pairs
    assert all("lr" not in p for p in pairs)


def test_importance_input_takes_finished_trials_and_their_domains() -> None:
    trials = [*table(), trial("t5", [0.88], "RUNNING", dropout=0.2, normalization=True, lr=1e-3)]
    scales = {"dropout": "discrete", "normalization": "discrete", "lr": "log"}
    data = analysis.importance_input(
        trials, ["dropout", "normalization", "lr"], scales, "val_accuracy", "max"
    )
    assert len(data.values) == 4  # t0..t3: not the pending or the running trial
    assert data.values == [0.90, 0.70, 0.78, 0.60]
    assert data.domains["dropout"] == ("categorical", [0.0, 0.5])
    assert data.domains["lr"] == ("log", [1e-4, 1e-2])
    assert data.points[0] == {"dropout": 0.0, "normalization": True, "lr": 1e-3}


def test_importance_finds_the_parameter_that_decides() -> None:
    # normalization alone decides the metric; dropout is noise around it.
    trials = [
        trial(
            f"t{i}",
            [0.9 if i % 2 else 0.6],
            normalization=bool(i % 2),
            dropout=[0.0, 0.5][i // 2 % 2],
        )
        for i in range(12)
    ]
    scales = {"normalization": "discrete", "dropout": "discrete"}
    data = analysis.importance_input(
        trials, ["normalization", "dropout"], scales, "val_accuracy", "max"
    )
    values = analysis.importance(data, "max")
    assert set(values) == {"normalization", "dropout"}
    assert sum(values.values()) == pytest.approx(1.0)
    assert values["normalization"] > 0.9
    too_few = analysis.importance_input(
        trials[:3], ["normalization"], scales, "val_accuracy", "max"
    )
    assert analysis.importance(too_few, "max") == {}


@pytest.mark.parametrize(
    ("train", "val", "label"),
    [
        ([1.0, 0.8], [0.9, 0.8], "too short to judge"),
        ([0.5, 0.3, 0.2, 0.1], [0.5, 0.4, 0.45, 0.5], "overfitting"),  # val turned up 25%
        ([0.5, 0.3, 0.2, 0.1], [0.5, 0.4, 0.3, 0.3], "overfitting"),  # gap 0.2
        ([0.9, 0.8, 0.7, 0.6], [0.6, 0.5, 0.5, 0.5], "underfitting"),  # train above val
        ([0.6, 0.5, 0.45, 0.40], [0.6, 0.5, 0.45, 0.42], "still improving"),  # -7% in 2 epochs
        ([0.6, 0.5, 0.45, 0.44], [0.46, 0.45, 0.445, 0.445], "good fit"),
        ([0.6, 0.5, 0.45, 0.44], [0.6, 0.45, 0.44, 0.445], "good fit"),  # fell, then flat
    ],
)
def test_diagnosis_rule(train: list[float], val: list[float], label: str) -> None:
    t = trial("t", [0.5] * len(train), train=train, val=val, max_epochs=len(train))
    assert analysis.diagnose(t).label == label
    assert label in analysis.DIAGNOSIS_RULE


def test_accounting_adds_up_epochs_states_and_time() -> None:
    trials = table()
    acc = analysis.accounting(trials, trial_count=6, max_epochs=3)
    assert acc.epochs_run == 3 + 1 + 2 + 1 + 0
    # Five trials exist with max 3 epochs each, and one not created yet counts at max_epochs.
    assert acc.epochs_full == 6 * 3
    assert acc.saved == pytest.approx(1 - 7 / 18)
    assert acc.states == {"NOT_CREATED": 1, "PENDING": 1, "STOPPED": 3, "TERMINATED": 1}
    assert acc.trial_count == 6 and acc.trials_seen == 5
    assert acc.wall_seconds == pytest.approx(9.0)  # all start at 1000; t0 ends at 1009
    assert acc.compute_seconds == pytest.approx(7 * 3.0)


def test_summary_uses_students_t() -> None:
    s = analysis.summarize([0.80, 0.82, 0.84])
    assert s.mean == pytest.approx(0.82)
    assert s.std == pytest.approx(0.02)
    half = 4.302653 * 0.02 / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert s.ci_low == pytest.approx(0.82 - half, abs=1e-6)
    assert s.ci_high == pytest.approx(0.82 + half, abs=1e-6)
    one = analysis.summarize([0.5])
    assert (one.n, one.std, one.ci_low) == (1, 0.0, None)


def test_welch_test() -> None:
    assert analysis.welch_p([0.9, 0.9], [0.9, 0.9]) == 1.0
    assert analysis.welch_p([0.9, 0.91, 0.92], [0.5, 0.51, 0.52]) < 0.001
    assert analysis.welch_p([0.9, 0.7, 0.8], [0.85, 0.75, 0.8]) > 0.5
    assert analysis.welch_p([0.9], [0.8, 0.7]) is None


def candidate(rank: int, metric: list[float]) -> Confirmed:
    return Confirmed(
        rank, f"t{rank}", {"dropout": rank / 10}, 0.9, metric, metric, [0.3] * len(metric)
    )


def test_confirmation_ranks_by_mean_over_seeds() -> None:
    # The sweep's #1 was lucky: over three seeds #2 is better on average.
    result = analysis.confirm(
        [candidate(1, [0.80, 0.81, 0.82]), candidate(2, [0.88, 0.87, 0.89])], "max"
    )
    assert result.winner is not None and result.winner.rank == 2
    assert result.p_value is not None and result.distinguishable is True
    # For a loss the lowest mean wins.
    low = analysis.confirm([candidate(1, [0.3, 0.31]), candidate(2, [0.4, 0.2])], "min")
    assert low.winner is not None and low.winner.rank == 2
    assert low.distinguishable is False
    # A candidate with no completed seed is left out; alone, nothing to compare.
    alone = analysis.confirm([candidate(1, [0.8]), candidate(2, [])], "max")
    assert [c.rank for c in alone.candidates] == [1]
    assert alone.p_value is None and alone.distinguishable is None
