from __future__ import annotations

from tune.states import state_of
from tune.status import TrialRow, duration, format_table, sort_rows, summary_line, varying_keys


def row(trial_id: str, state: str, epochs: int, best: float | None, dropout: float) -> TrialRow:
    config = {"dropout": dropout, "optimizer": "adam", "normalization": True}
    return TrialRow(trial_id, state, epochs, 12, best, config)


ROWS = [
    row("a_00000", "STOPPED", 1, 0.70, 0.5),
    row("a_00001", "TERMINATED", 12, 0.91, 0.0),
    row("a_00002", "PENDING", 0, None, 0.2),
]


def test_terminated_before_its_last_epoch_is_stopped_early() -> None:
    assert state_of("TERMINATED", 3, 12) == "STOPPED"
    assert state_of("TERMINATED", 12, 12) == "TERMINATED"
    assert state_of("RUNNING", 3, 12) == "RUNNING"


def test_sort_puts_the_best_first_and_no_result_last() -> None:
    assert [r.trial_id for r in sort_rows(ROWS, "max")] == ["a_00001", "a_00000", "a_00002"]
    assert [r.trial_id for r in sort_rows(ROWS, "min")] == ["a_00000", "a_00001", "a_00002"]


def test_table_shows_only_the_keys_that_vary() -> None:
    assert varying_keys(ROWS) == ["dropout"]
    lines = format_table(sort_rows(ROWS, "max"), "val_accuracy").splitlines()
    assert lines[0].split() == ["trial", "state", "epochs", "best", "val_accuracy", "dropout"]
    assert lines[1].split() == ["a_00001", "TERMINATED", "12/12", "0.9100", "0"]
    assert lines[3].split() == ["a_00002", "PENDING", "0/12", "-", "0.2"]


def test_summary_line() -> None:
    text = summary_line(sort_rows(ROWS, "max"), "val_accuracy", total=3)
    assert (
        text
        == "3/3 trials: 1 pending, 1 stopped, 1 terminated | best val_accuracy 0.9100 (a_00001)"
    )


def test_duration() -> None:
    assert duration(None) == "-"
    assert duration(250.4) == "4 min 10 s"
    assert duration(3 * 3600 + 125) == "3 h 02 min"
