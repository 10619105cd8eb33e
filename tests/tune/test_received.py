"""A folder someone sends you: `hpo status` and `hpo report` read nothing outside it, delete
nothing they did not write, never hang on it, and turn a bad record into one line and exit 2.
Each folder here is crafted by hand, as an attacker or a broken disk would leave it: no Ray runs.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import NOWHERE, SEARCH_SPACES
from tests.tune.store.test_saved_state import Evil
from tune.cli import main
from tune.core import trust
from tune.run.experiment import Plan, _with_parent_run
from tune.space.spec import load_spec
from tune.store import records
from tune.store.records import CONFIRM, Candidate
from tune.store.runs import DIR_TAG, PARENT_TAG, TrackingConfig, start_parent_run

SECRET = "hunter2-do-not-print"


def trial(
    tid: str,
    folder: str | None,
    status: str = "TERMINATED",
    error: str | None = None,
    best: float = 0.5,
) -> list[str]:
    """One trial of Ray's saved state, the two JSON documents Ray writes."""
    state = {
        "trial_id": tid, "status": status, "relative_logdir": folder,
        "config": {"dropout": 0.1, "epochs": 2},
    }  # fmt: skip
    metadata = {
        "last_result": {"epoch": 1, "val_accuracy": best},
        "metric_analysis": {"val_accuracy": {"max": best, "min": best, "last": best}},
        "error_filename": error,
    }
    return [json.dumps(state), json.dumps(metadata)]


def crafted(root: Path, *trials: list[str], tracking_uri: str = NOWHERE) -> Path:
    """An experiment folder holding a sweep record and Ray's state with `trials`; each trial
    named `train_trial_<id>` gets a folder with one epoch in result.json."""
    folder = root / "runs" / "smoke"
    records.save(folder, records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), tracking_uri))
    for state, _ in trials:
        logdir = json.loads(state)["relative_logdir"]
        if isinstance(logdir, str) and logdir.startswith("train_trial_"):
            (folder / logdir).mkdir()
            (folder / logdir / "result.json").write_text(
                json.dumps({"epoch": 1, "val_accuracy": 0.5}) + "\n"
            )
    data = {"trial_data": list(trials), "runner_data": {}}
    (folder / "experiment_state-2026-11-28_10-00-00.json").write_text(json.dumps(data))
    return folder


def outside_files(root: Path) -> Path:
    """A folder beside the experiment with a secret, and a result.json that is not the
    experiment's: nothing of it may reach hpo's output or report."""
    outside = root / "outside"
    outside.mkdir()
    (outside / "credentials").write_text(f"[default]\naws_secret_access_key = {SECRET}\n")
    (outside / "result.json").write_text(json.dumps({"epoch": 7, "val_accuracy": 0.987}) + "\n")
    return outside


def snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# -- item 4: reading only inside the folder -----------------------------------------------------


def test_status_and_report_read_nothing_outside_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = outside_files(tmp_path)
    folder = crafted(
        tmp_path,
        trial("a_00000", "train_trial_a_00000", "ERROR", error=str(outside / "credentials")),
        trial("a_00001", str(outside), best=0.987),  # an absolute trial folder
        trial("a_00002", "../../outside", best=0.987),
        trial("a_00003", "train_trial_a_00003", "ERROR", error="../../../outside/credentials"),
    )
    (folder / "train_trial_a_00003" / "error.txt").symlink_to(outside / "credentials")
    before = snapshot(outside)
    code, out, err = run(["status", str(folder)], capsys)
    assert code == 0, err
    assert SECRET not in out + err
    assert "a_00000 failed: failed (no error file)" in out
    code, out, err = run(["report", str(folder)], capsys)
    assert code == 0, err  # not logged: the record's store is not here
    text = (folder / "report" / "report.md").read_text() + (
        folder / "report" / "trials.csv"
    ).read_text()
    assert SECRET not in text + out + err
    assert "0.987" not in text  # the outside result.json was not read as a trial's epochs
    assert snapshot(outside) == before


# -- items 2 and 3: deleting and writing only what hpo wrote ------------------------------------


def test_report_deletes_only_files_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = crafted(tmp_path, trial("a_00000", "train_trial_a_00000"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / "report").mkdir()
    for names in ([str(victim)], ["../../../victim.txt"], ["plots/../../../victim.txt"], {"a": 1}):
        (folder / "report" / ".hpo-report.json").write_text(json.dumps(names))
        code, _, err = run(["report", str(folder)], capsys)
        assert code == 2, err
        (line,) = err.splitlines()
        assert line.startswith(f"{folder / 'report' / '.hpo-report.json'}: ")
        assert victim.read_text() == "keep me"
    # A listed name that is a link: the link's target stays.
    (folder / "report" / "report.md").symlink_to(victim)
    (folder / "report" / ".hpo-report.json").write_text(json.dumps(["report.md"]))
    assert run(["report", str(folder)], capsys)[0] == 2
    assert victim.read_text() == "keep me"


def test_a_linked_report_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = crafted(tmp_path, trial("a_00000", "train_trial_a_00000"))
    mine = tmp_path / "my-project"
    (mine / "plots").mkdir(parents=True)
    (mine / "plots" / "figure.png").write_bytes(b"my figure")
    before = snapshot(mine)
    (folder / "report").symlink_to(mine)
    code, _, err = run(["report", str(folder)], capsys)
    assert (code, err) == (2, f"{folder / 'report'}: is a link (a folder inside the experiment)\n")
    assert snapshot(mine) == before
    # A real report folder whose plots/ is a link.
    (folder / "report").unlink()
    (folder / "report").mkdir()
    (folder / "report" / "plots").symlink_to(mine / "plots")
    code, _, err = run(["report", str(folder)], capsys)
    assert code == 2 and "plots: is a link" in err
    assert snapshot(mine) == before


# -- item 10: the record's values ---------------------------------------------------------------


def spec_of(data: dict[str, Any]) -> dict[str, Any]:
    return data["spec"]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: spec_of(d).update(num_samples=-5), "spec.num_samples"),
        (lambda d: spec_of(d).update(num_samples=10**400), "spec.num_samples"),
        (lambda d: spec_of(d)["metric"].update(name="accuracy_of_doom"), "spec.metric.name"),
        (lambda d: spec_of(d).update(name="../../etc"), "spec.name"),
        (lambda d: spec_of(d)["search"].update(dropout=7), "spec.search.dropout"),
        (lambda d: d.update(kind="confirm", candidates=[], seeds=["x"]), "seeds.0"),
        (lambda d: d.update(parent_run_id="../x"), "parent_run_id"),
        (lambda d: d.update(kind="rm -rf"), "kind"),
    ],
)
def test_a_record_with_bad_values_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, key: str
) -> None:
    folder = crafted(tmp_path, trial("a_00000", "train_trial_a_00000"))
    path = folder / records.RECORD_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    for command in ("status", "report"):
        code, _, err = run([command, str(folder)], capsys)
        assert code == 2, err
        (line,) = err.splitlines()
        assert line.startswith(f"{path}: {key}: "), line
        assert len(line) < 400


def test_a_deeply_nested_or_huge_record_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = crafted(tmp_path, trial("a_00000", "train_trial_a_00000"))
    path = folder / records.RECORD_FILE
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(["status", str(folder)], capsys)
    assert (code, err) == (
        2,
        f"{path}: cannot be read: nested more than 32 levels deep (a record hpo wrote)\n",
    )
    with path.open("r+") as f:
        f.truncate(200_000_000)  # sparse: costs no disk
    code, _, err = run(["status", str(folder)], capsys)
    assert code == 2 and "200 MB, more than the 1 MB hpo reads" in err


# -- item 12: files that would hang or flood a reader -------------------------------------------


def test_links_loops_fifos_and_huge_files_neither_hang_nor_flood(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder = crafted(
        tmp_path,
        trial("a_00000", "train_trial_a_00000"),
        trial("a_00001", "train_trial_a_00001"),
        trial("a_00002", "train_trial_a_00002", "ERROR", error="error.txt"),
        trial("a_00003", "loop"),
    )
    (folder / "train_trial_a_00000" / "result.json").unlink()
    (folder / "train_trial_a_00000" / "result.json").symlink_to("result.json")  # a loop
    with (folder / "train_trial_a_00001" / "result.json").open("r+") as f:
        f.truncate(200_000_000)
    os.mkfifo(folder / "train_trial_a_00002" / "error.txt")  # nobody ever writes to it
    (folder / "loop").symlink_to(folder / "loop")
    results: list[tuple[int, str, str]] = []

    def both() -> None:
        results.append(run(["status", str(folder)], capsys))
        results.append(run(["report", str(folder)], capsys))

    worker = threading.Thread(target=both, daemon=True)
    worker.start()
    worker.join(timeout=300)  # a hang guard only
    assert not worker.is_alive(), "status or report hung on the folder"
    (status, out, err), (report, _, report_err) = results
    assert status == 0, err
    assert "a_00002 failed: failed (cannot read" in out
    assert report == 0, report_err
    assert "200 MB, more than the 64 MB hpo reads; its epochs are left out" in caplog.text
    assert "Traceback" not in err + report_err


# -- item 1: confirm continues only a run this machine's hpo started -----------------------------


def test_confirm_never_continues_a_run_it_did_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A received sweep whose confirm/ holds an unfinished run with a crafted tuner.pkl: `hpo
    confirm` must not restore it (Ray would unpickle the file), whatever seal it claims."""
    marker = tmp_path / "code-ran"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = crafted(tmp_path, trial("a_00000", "train_trial_a_00000"), tracking_uri=uri)
    folder = records.confirm_dir(sweep)
    candidate = Candidate(1, "a_00000", {"dropout": 0.1, "epochs": 2}, 0.5)
    record = records.new_record(
        records.load(sweep).spec, uri, kind=CONFIRM, candidates=(candidate,), seeds=(1,)
    )
    (folder / "train_trial_b_00000").mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(pickle.dumps(Evil(marker)))
    state = {"trial_data": [trial("b_00000", "train_trial_b_00000", "PENDING")], "runner_data": {}}
    (folder / "experiment_state-2026-11-28_10-00-00.json").write_text(json.dumps(state))
    elsewhere = trust.seal(tmp_path / "somewhere-else", record.started)
    for seal in ("", "0" * 64, elsewhere):
        records.save(folder, replace(record, sealed=seal))
        code, _, err = run(["confirm", str(sweep), "--top", "1", "--seeds", "1"], capsys)
        assert code == 2, err
        (line,) = err.splitlines()
        assert "did not start" in line and f"hpo resume {folder}" in line
        assert not marker.exists()
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started


def test_the_seal_is_this_machines_and_this_folders(tmp_path: Path) -> None:
    seal = trust.seal(tmp_path / "a", "2026-12-01T10:00:00")
    assert trust.started_here(tmp_path / "a", "2026-12-01T10:00:00", seal)
    assert not trust.started_here(tmp_path / "b", "2026-12-01T10:00:00", seal)  # a copy
    assert not trust.started_here(tmp_path / "a", "2026-12-01T10:00:01", seal)
    assert not trust.started_here(tmp_path / "a", "2026-12-01T10:00:00", "")
    assert oct(trust.KEY_FILE.stat().st_mode & 0o777) == "0o600"


# -- item 5: a copy of another experiment's folder ----------------------------------------------


def copied_experiment(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """An experiment with its parent run and one trial run in a real MLflow store, and a copy
    of its folder (as `cp -r` makes it): (original, copy, tracking URI, parent run id)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    original = crafted(
        tmp_path / "theirs", trial("a_00000", "train_trial_a_00000"), tracking_uri=uri
    )
    run_id = start_parent_run(TrackingConfig(uri, "smoke", ""), {}, {DIR_TAG: str(original)})
    client = MlflowClient(uri)
    client.create_run(client.get_run(run_id).info.experiment_id, tags={PARENT_TAG: run_id})
    records.save(original, replace(records.load(original), parent_run_id=run_id))
    copy = tmp_path / "runs" / "smoke"
    shutil.copytree(original, copy)
    return original, copy, uri, run_id


def active_runs(uri: str, run_id: str) -> int:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_run(run_id).info.experiment_id])
    return sum(r.info.lifecycle_stage == "active" for r in runs)


def test_overwrite_of_a_copy_or_a_link_leaves_the_originals_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, copy, uri, run_id = copied_experiment(tmp_path)
    capsys.readouterr()  # MLflow's lines while it made the store
    smoke = str(SEARCH_SPACES / "smoke.yaml")
    sweep = ["sweep", smoke, "--tracking-uri", uri, "--overwrite", "--storage"]
    code, _, err = run([*sweep, str(copy.parent)], capsys)
    assert (code, err) == (
        2,
        f"{copy / records.RECORD_FILE}: MLflow run {run_id} belongs to the experiment in "
        f"{original}, not to this folder (a copy, or moved?) (move this folder away yourself, "
        "or use --name NEW)\n",
    )
    assert active_runs(uri, run_id) == 2 and records.exists(copy)
    linked = tmp_path / "linked" / "smoke"
    linked.parent.mkdir()
    linked.symlink_to(original)
    code, _, err = run([*sweep, str(linked.parent)], capsys)
    assert code == 2 and f"{linked}: is a link to {original}" in err
    assert active_runs(uri, run_id) == 2 and linked.is_symlink() and records.exists(original)


def test_report_of_a_copy_is_not_logged_into_the_originals_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, copy, uri, run_id = copied_experiment(tmp_path)
    capsys.readouterr()  # MLflow's lines while it made the store
    code, out, err = run(["report", str(copy)], capsys)
    assert code == 0, err
    assert (
        f"hpo report: not logged to MLflow: MLflow run {run_id} belongs to the experiment in {original}"
        in out
    )
    assert (copy / "report" / "report.html").is_file()
    assert MlflowClient(uri).list_artifacts(run_id) == []
    code, out, err = run(["report", str(original)], capsys)  # the original's own report is
    assert code == 0, err
    assert [a.path for a in MlflowClient(uri).list_artifacts(run_id)] == ["report"]


def test_a_resumed_copy_gets_a_parent_run_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, copy, uri, run_id = copied_experiment(tmp_path)
    capsys.readouterr()  # MLflow's lines while it made the store
    plan = Plan(trainable=None, param_space={}, run_name="smoke")
    record = _with_parent_run(records.load(copy), copy, plan)
    assert record.parent_run_id not in (None, run_id)
    assert records.load(copy).parent_run_id == record.parent_run_id
    assert MlflowClient(uri).get_run(str(record.parent_run_id)).data.tags[DIR_TAG] == str(copy)
    assert f"MLflow run {run_id} belongs to the experiment in {original}" in capsys.readouterr().out
    assert _with_parent_run(records.load(original), original, plan).parent_run_id == run_id
