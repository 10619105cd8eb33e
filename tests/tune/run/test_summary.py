"""What a run says at its end, on a hand-built result."""

from __future__ import annotations

from pathlib import Path

from tune.core.errors import EXIT_FAILURE, EXIT_OK
from tune.run.experiment import RunResult, sweep_results
from tune.run.summary import exit_code, summary_lines
from tune.run.tracking import Backfilled
from tune.store.rows import TrialRow

ROW = TrialRow("t_00000", "TERMINATED", 2, 2, 0.9, {"lr": 0.1})


def result(tmp_path: Path, **changes: object) -> RunResult:
    fields: dict[str, object] = dict(
        experiment_dir=tmp_path, parent_run_id="p", rows=[ROW], best=ROW, errors=0,
        unfinished=0, interrupted=False, signalled=False, budget_hit=False,
        tracking_failures=0, tracking_missed=0, caught_up=Backfilled(0, 0), seconds=48.2,
    )  # fmt: skip
    return RunResult(**{**fields, **changes})  # type: ignore[arg-type]


def test_it_says_which_time_it_reports(tmp_path: Path) -> None:
    """A user saw "Finished in 48 s" after a 94 s command: the trials' time, unnamed."""
    lines = summary_lines(result(tmp_path), "val_accuracy", "sqlite:///x.db", command_s=94.4)
    (finished,) = [line for line in lines if line.startswith("Finished in")]
    assert finished.startswith("Finished in 94 s (48 s of trials; the rest: start-up, Ray")
    alone = summary_lines(result(tmp_path), "val_accuracy", "sqlite:///x.db")
    assert any(line.startswith("Finished in 48 s of trials.") for line in alone)


def test_the_exit_code_follows_the_result(tmp_path: Path) -> None:
    assert exit_code(result(tmp_path)) == EXIT_OK
    assert exit_code(result(tmp_path, errors=1)) == EXIT_FAILURE
    assert exit_code(result(tmp_path, best=None)) == EXIT_FAILURE
    assert exit_code(result(tmp_path, unsaved="No space left on device")) == EXIT_FAILURE


def test_a_state_ray_could_not_save_is_a_failure_with_resume_named(tmp_path: Path) -> None:
    """A full disk kept Ray's last state out of the folder: the trials still running there
    are no interruption; the line says why and how to go on."""
    unsaved = result(tmp_path, unfinished=2, unsaved="[Errno 28] No space left on device")
    lines = summary_lines(unsaved, "val_accuracy", "sqlite:///x.db")
    assert any("could not save its last state" in line and "Errno 28" in line for line in lines)
    assert f"  hpo resume {tmp_path}" in lines
    assert not any("interrupted" in line for line in lines)


def test_a_confirm_run_names_no_single_best_trial(tmp_path: Path) -> None:
    """A confirm run's best trial is one seed's luck: its summary leaves it out (the confirmed
    recommendation is printed after the report)."""
    lines = "\n".join(summary_lines(result(tmp_path), "val_accuracy", "sqlite:///x.db"))
    assert "Best trial t_00000: val_accuracy 0.9000 after 2 epochs" in lines
    confirm = summary_lines(result(tmp_path), "val_accuracy", "sqlite:///x.db", best_trial=False)
    assert "Best trial" not in "\n".join(confirm) and "config: lr" not in "\n".join(confirm)


def test_a_sweeps_parent_run_gets_its_best_value_and_completed_trials() -> None:
    stopped = TrialRow("t_00001", "STOPPED", 1, 2, 0.5, {"lr": 0.2})
    assert sweep_results([ROW, stopped], "val_accuracy") == {
        "best_val_accuracy": 0.9,
        "trials_completed": 1.0,
    }
    assert sweep_results([], "val_accuracy") == {}  # nothing read back: nothing overwritten
