from __future__ import annotations

from tune.core.states import state_of
from tune.core.text import varying_keys
from tune.store.rows import TrialRow, format_table, sort_rows, summary_line


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


def test_retried_trials_are_named_even_when_they_recovered() -> None:
    from dataclasses import replace

    from tune.store.rows import retried_lines

    assert retried_lines(ROWS) == []
    flaky = replace(ROWS[1], failures=2, failure="OSError: node lost (traceback in x/error.txt)")
    failed = replace(ROWS[0], state="ERROR", failures=3, failure="ValueError: bad")
    lines = retried_lines([flaky, failed, ROWS[2]])
    assert lines == [
        "hpo: 1 trial(s) failed and were retried from a checkpoint:",
        "  a_00001: 2 failure(s), completed; last: OSError: node lost (traceback in x/error.txt)",
    ]  # the one that ended ERROR is reported as failed, not here
    many = [replace(flaky, trial_id=f"a_{i:05d}") for i in range(7)]
    assert retried_lines(many)[-1] == "  ... and 2 more (hpo status)"
