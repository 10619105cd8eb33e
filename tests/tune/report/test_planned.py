"""The plan a sweep recorded, beside what happened, in the report's Compute table."""

from __future__ import annotations

from tune.report import planned


def test_a_recorded_plan_gives_two_rows_and_none_without_one() -> None:
    plan = {
        "trial_epochs_p10": 63.0, "trial_epochs_median": 86.0, "trial_epochs_p90": 116.4,
        "wall_s_p10": 110.0, "wall_s_median": 147.0, "wall_s_p90": 195.0, "slots": 2.0,
    }  # fmt: skip
    rows = planned.rows(plan)
    assert [r[1] for r in rows] == ["63 / 86 / 116", "1 min 50 s / 2 min 27 s / 3 min 15 s"]
    assert planned.rows({}) == []
    assert planned.rows({"slots": 2.0}) == []  # another version's figures: not misread
