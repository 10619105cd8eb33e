"""What a confirm run found, on hand-built trials and records (the integration test is in
tests/tune/report/test_write.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.conftest import NOWHERE
from tune.report.confirmation import confirmation, load_confirmation
from tune.run.trainable import SEED_KEY
from tune.space.spec import SweepSpec
from tune.store import records
from tune.store.records import CANDIDATE_KEY, CONFIRM, Candidate
from tune.store.trials import Trial


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
