"""The experiment record: what resume, status, report and confirm read back."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tests.conftest import NOWHERE, SEARCH_SPACES
from tune.run.sweep import smoke_variant
from tune.space.spec import load_spec
from tune.store import records
from tune.store.records import CONFIRM, Candidate, RecordError


@pytest.mark.parametrize("path", sorted(SEARCH_SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_spec_round_trips(tmp_path: Path, path: Path) -> None:
    """Resume runs exactly the spec the sweep recorded: every shipped space, and its smoke
    variant, comes back equal."""
    for spec in (load_spec(path), smoke_variant(load_spec(path))):
        record = records.new_record(spec, "sqlite:////abs/mlflow.db")
        records.save(tmp_path, record)
        assert records.load(tmp_path) == record


def test_a_confirm_record_round_trips(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_tpe.yaml")
    candidates = (
        Candidate(1, "a_00003", {"lr": 0.003, "epochs": 12, "dropout": 0.2}, 0.91),
        Candidate(3, "a_00001", {"lr": 0.001, "epochs": 8, "dropout": 0.5}, 0.9),
    )
    record = replace(
        records.new_record(spec, "http://127.0.0.1:5000", kind=CONFIRM, candidates=candidates),
        seeds=(1, 2, 3),
        sweep_parent_run_id="abc",
        parent_run_id="def",
    )
    records.save(tmp_path, record)
    loaded = records.load(tmp_path)
    assert loaded == record
    assert loaded.name == f"{spec.name}/confirm"
    assert (loaded.trial_count, loaded.max_epochs) == (6, 12)


def test_an_extended_warm_started_sweep_round_trips(tmp_path: Path) -> None:
    """What `hpo extend` and `--warm-start` add to a sweep's record comes back; a plain
    sweep's file holds neither key, and a value hpo would not write is refused."""
    spec = load_spec(SEARCH_SPACES / "fashion_tpe.yaml")
    plain = records.new_record(spec, "sqlite:////abs/mlflow.db")
    records.save(tmp_path, plain)
    assert not {"extended", "warm_start"} & set(
        json.loads((tmp_path / records.RECORD_FILE).read_text())
    )
    line = "warm start: 9 of 12 trials of earlier reused (3 outside the new space)"
    record = replace(plain, extended=(4, 2), warm_start=line)
    records.save(tmp_path, record)
    assert records.load(tmp_path) == record
    data = json.loads((tmp_path / records.RECORD_FILE).read_text())
    for key, bad in (("extended", [0]), ("warm_start", "two\nlines")):
        (tmp_path / records.RECORD_FILE).write_text(json.dumps({**data, key: bad}))
        with pytest.raises(RecordError, match=key):
            records.load(tmp_path)


def test_a_planned_sweep_round_trips_and_a_plan_hpo_would_not_write_is_refused(
    tmp_path: Path,
) -> None:
    spec = load_spec(SEARCH_SPACES / "smoke.yaml")
    plain = records.new_record(spec, "sqlite:////abs/mlflow.db")
    records.save(tmp_path, plain)
    assert "plan" not in json.loads((tmp_path / records.RECORD_FILE).read_text())
    record = replace(plain, plan={"slots": 2.0, "wall_s_median": 15.2})
    records.save(tmp_path, record)
    assert records.load(tmp_path) == record
    data = json.loads((tmp_path / records.RECORD_FILE).read_text())
    for bad in (
        {"slots": "2"},
        {"slots": True},
        {"x" * 41: 1.0},
        [1.0],
        {f"k{i}": 1 for i in range(21)},
    ):
        (tmp_path / records.RECORD_FILE).write_text(json.dumps({**data, "plan": bad}))
        with pytest.raises(RecordError, match="plan"):
            records.load(tmp_path)


def test_derived_values_follow_the_spec(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    record = records.new_record(spec, "sqlite:////abs/mlflow.db")
    assert (record.name, record.metric, record.mode) == ("fashion_seed", "val_accuracy", "max")
    assert (record.trial_count, record.max_epochs) == (24, 12)
    assert set(record.versions) >= {"hpo", "torch", "ray", "mlflow"}


def test_a_budget_ended_sweep_has_the_trials_it_created(tmp_path: Path) -> None:
    """Once its time budget ended it, a sweep expects only the trials it created (Optuna
    creates them lazily); the time is kept, and a record without it reads as not ended."""
    spec = load_spec(SEARCH_SPACES / "fashion_best.yaml")
    record = records.new_record(spec, "sqlite:////abs/mlflow.db")
    assert (record.budget_ended, record.expected_trials(16)) == ("", 30)
    ended = replace(record, budget_ended="2026-11-29T19:10:00")
    records.save(tmp_path, ended)
    assert records.load(tmp_path) == ended and ended.expected_trials(16) == 16
    data = json.loads((tmp_path / records.RECORD_FILE).read_text())
    del data["budget_ended"]  # as hpo wrote it before it recorded the budget's end
    (tmp_path / records.RECORD_FILE).write_text(json.dumps(data))
    assert records.load(tmp_path) == record


def old_record(spec_dict: dict[str, object]) -> dict[str, object]:
    """A record as hpo wrote it before the typed record (no format, derived fields kept)."""
    return {
        "name": "fashion_seed", "source": "x.yaml", "metric": "val_accuracy", "mode": "max",
        "max_epochs": 12, "trial_count": 24, "tracking_uri": "sqlite:////abs/mlflow.db",
        "parent_run_id": "0123", "started": "2026-11-27T10:00:00", "spec": spec_dict,
    }  # fmt: skip


def test_a_record_of_the_previous_format_is_read(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    (tmp_path / records.RECORD_FILE).write_text(json.dumps(old_record(asdict(spec))))
    loaded = records.load(tmp_path)
    assert loaded.spec == spec and loaded.parent_run_id == "0123" and loaded.versions == {}


def test_a_record_from_before_optunas_start_up_trials_runs_with_optunas_default(
    tmp_path: Path,
) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_tpe.yaml")
    data = asdict(replace(spec, startup_trials=3))
    records.save(tmp_path, records.new_record(replace(spec, startup_trials=3), NOWHERE))
    assert records.load(tmp_path).spec.startup_trials == 3
    del data["startup_trials"]
    (tmp_path / records.RECORD_FILE).write_text(json.dumps(old_record(data)))
    assert records.load(tmp_path).spec.startup_trials == 10


@pytest.mark.parametrize(
    ("drop", "path"),
    [
        (("spec", "dataset"), "spec.dataset"),
        (("spec", "seed"), "spec.seed"),
        (("tracking_uri",), "tracking_uri"),
    ],
)
def test_a_missing_field_is_one_line_naming_file_and_field(
    tmp_path: Path, drop: tuple[str, ...], path: str
) -> None:
    spec = load_spec(SEARCH_SPACES / "smoke.yaml")
    records.save(tmp_path, records.new_record(spec, "sqlite:////abs/mlflow.db"))
    data = json.loads((tmp_path / records.RECORD_FILE).read_text())
    parent = data
    for key in drop[:-1]:
        parent = parent[key]
    del parent[drop[-1]]
    (tmp_path / records.RECORD_FILE).write_text(json.dumps(data))
    with pytest.raises(RecordError) as e:
        records.load(tmp_path)
    assert e.value.lines() == [
        f"{tmp_path / records.RECORD_FILE}: {path}: missing (a record written by this version "
        "of hpo; start the experiment again)"
    ]


def test_a_corrupt_record_is_one_line(tmp_path: Path) -> None:
    (tmp_path / records.RECORD_FILE).write_text("{not json")
    with pytest.raises(RecordError) as e:
        records.load(tmp_path)
    (line,) = e.value.lines()
    assert line.startswith(f"{tmp_path / records.RECORD_FILE}: cannot be read:")


def test_the_yaml_copy_is_written_once_and_kept(tmp_path: Path) -> None:
    """The sweep's copy of its YAML stays what it started with: saving the record again (as a
    resume does) never copies the file again, edited or not."""
    space = tmp_path / "space.yaml"
    space.write_text("search: {epochs: 2}\n")
    folder = tmp_path / "runs" / "space"
    record = records.new_record(load_spec(space), NOWHERE)
    records.save(folder, record)
    space.write_text("search: {epochs: 3}\n")
    records.save(folder, replace(record, parent_run_id="r"))
    assert (folder / records.SPEC_COPY).read_text() == "search: {epochs: 2}\n"
    assert records.load(folder).parent_run_id == "r"
    assert not list(folder.glob(".*partial"))


def test_locate_by_name_or_path(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "smoke"
    records.save(folder, records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), NOWHERE))
    assert records.locate("smoke", str(tmp_path / "runs")) == folder
    assert records.locate(str(folder), "/nowhere") == folder
    assert records.locate("other", str(tmp_path / "runs")) is None
