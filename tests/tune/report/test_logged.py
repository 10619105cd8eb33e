"""The report's files logged into the sweep's MLflow parent run (a real SQLite store), by the
second process or, in a process with other threads, here: the same outcome either way."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import NOWHERE, SEARCH_SPACES
from tune.report import logged
from tune.report.logged import Logger, Outcome
from tune.report.write import Report
from tune.space.spec import load_spec
from tune.store import records
from tune.store.records import ExperimentRecord
from tune.store.runs import DIR_TAG, TrackingConfig, start_parent_run


def sweep(tmp_path: Path, owner: Path | None = None) -> tuple[ExperimentRecord, Report]:
    """A record whose parent run belongs to `owner` (default: the folder itself), and a
    report of one file."""
    folder = tmp_path / "runs" / "smoke"
    (folder / "report").mkdir(parents=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tag = str((owner or folder).absolute())
    run_id = start_parent_run(TrackingConfig(uri, "smoke", ""), {}, {DIR_TAG: tag})
    record = replace(
        records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), uri), parent_run_id=run_id
    )
    page = folder / "report" / "report.md"
    page.write_text("# smoke\n")
    return record, Report(record, folder / "report", [page], [])


@pytest.fixture(params=["second process", "this process"])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test as a single-threaded `hpo report` (forks) and as a process with other
    threads (does not)."""
    count = 1 if request.param == "second process" else 3
    monkeypatch.setattr(logged.threading, "active_count", lambda: count)
    return str(request.param)


def test_the_report_is_logged_into_the_parent_run(tmp_path: Path, threads: str) -> None:
    record, report = sweep(tmp_path)
    folder = report.folder.parent
    logger = Logger(record, folder)
    assert (logger.process is not None) == (threads == "second process")
    assert logger.finish(report) == Outcome()
    client = MlflowClient(record.tracking_uri)
    names = [a.path for a in client.list_artifacts(str(record.parent_run_id), "report")]
    assert names == ["report/report.md"]


def test_a_copied_folder_or_a_missing_store_is_skipped(tmp_path: Path, threads: str) -> None:
    record, report = sweep(tmp_path, owner=tmp_path / "elsewhere")
    outcome = Logger(record, report.folder.parent).finish(report)
    assert outcome.error is None and "belongs to the experiment in" in str(outcome.skipped)
    gone = replace(record, tracking_uri=NOWHERE)
    outcome = Logger(gone, report.folder.parent).finish(replace(report, record=gone))
    assert outcome == Outcome(skipped=f"its tracking store {NOWHERE} is not on this machine")
    client = MlflowClient(record.tracking_uri)
    assert client.list_artifacts(str(record.parent_run_id), "report") == []


def test_a_report_that_was_not_written_stops_the_second_process(
    tmp_path: Path, threads: str
) -> None:
    record, report = sweep(tmp_path)
    logger = Logger(record, report.folder.parent)
    assert logger.finish(None) == Outcome()
    if logger.process is not None:
        assert not logger.process.is_alive()
    client = MlflowClient(record.tracking_uri)
    assert client.list_artifacts(str(record.parent_run_id), "report") == []
