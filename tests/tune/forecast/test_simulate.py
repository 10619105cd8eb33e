"""The replay behind `hpo plan`: Ray's ASHA rule, the slots, the start-up costs and the time
budget, on scripted trials (no Ray, no trainer)."""

from __future__ import annotations

import pytest

from tune.forecast.simulate import Asha, Overheads, Rungs, Trial, outlook

EXACT = Overheads(epoch_noise=0.0)  # no noise: a replay's wall time can be computed by hand


def test_the_first_trial_at_a_rung_goes_on_and_later_ones_must_beat_the_cutoff() -> None:
    rungs = Rungs(Asha(grace_period=1, reduction_factor=2, max_t=4))  # rungs at 1, 2 and 4
    assert not rungs.stops(0, 1, 0.5)  # the first result at a rung always goes on
    assert rungs.stops(1, 1, 0.4)  # below the median of those recorded there
    assert not rungs.stops(2, 1, 0.9)
    assert not rungs.stops(2, 1, 0.0)  # recorded at this rung already: not judged again
    assert not rungs.stops(0, 2, 0.1)  # the first at the next rung


def test_without_early_stopping_every_epoch_runs_and_the_slots_share_them() -> None:
    trials = [Trial(epochs=3, epoch_s=2.0, levels=(float(i % 2),)) for i in range(4)]
    seen = outlook(trials, [False], slots=2, asha=None, overheads=EXACT, replays=5)
    assert seen.trial_epochs.p10 == seen.trial_epochs.p90 == 12
    # Two slots, two trials each: a fresh worker's start, then a reused one's set-up.
    per_trial = 3 * (2.0 + EXACT.report_s)
    slot = EXACT.fresh_worker_s + per_trial + EXACT.trial_setup_s + per_trial
    assert seen.wall_s.median == pytest.approx(EXACT.before_s + slot + EXACT.after_s)


def test_asha_runs_fewer_trial_epochs_and_the_percentiles_are_ordered() -> None:
    trials = [Trial(epochs=9, epoch_s=1.0, levels=(float(i % 3), i / 23)) for i in range(24)]
    asha = Asha(grace_period=1, reduction_factor=3, max_t=9)
    seen = outlook(trials, [False, True], slots=2, asha=asha, overheads=EXACT, replays=200)
    te, wall = seen.trial_epochs, seen.wall_s
    assert 24 <= te.p10 <= te.median <= te.p90 < 24 * 9
    assert te.p90 > te.p10  # the curves differ from replay to replay
    assert wall.p10 <= wall.median <= wall.p90
    optuna = outlook(trials, [False, True], 2, asha, EXACT, startup_trials=6, replays=200, seed=0)
    assert optuna.trial_epochs.median >= te.median  # TPE's later trials pass more rungs


def test_a_time_budget_ends_the_replay() -> None:
    trials = [Trial(epochs=10, epoch_s=10.0, levels=()) for _ in range(4)]
    seen = outlook(trials, [], slots=1, asha=None, overheads=EXACT, time_budget_s=60, replays=3)
    assert seen.wall_s.median == pytest.approx(60 + EXACT.after_s)
    assert seen.trial_epochs.median < 40
