"""`hpo extend`: a finished Optuna sweep given more trials, then an extension killed and resumed;
real `hpo` processes, a real local Ray, a real MLflow store (SQLite) and the real trainer on
Fashion-MNIST, tiny. And its refusals, which start nothing."""

from __future__ import annotations

import csv
import os
import pickle
import signal
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.tune.conftest import Runner, hpo_started, runs_of, wait_for
from tune.space.spec import load_spec
from tune.store import records

NAME = "grows"
EPOCHS = 3
SPACE = f"""\
name: {NAME}
dataset: {{name: fashion_mnist, validation_fraction: 0.1, train_steps: 5, eval_steps: 2}}
search:
  dropout: {{uniform: [0.0, 0.6]}}
  filters: 8
  units: 32
  lr: {{loguniform: [1.0e-3, 1.0e-2]}}
  epochs: {EPOCHS}
search_algorithm: optuna
optuna: {{startup_trials: 2}}
scheduler: {{asha: {{grace_period: 1, reduction_factor: 2}}}}
num_samples: 4
max_concurrent_trials: 1  # one trial process: parallel trials are not what this tests
seed: 0
"""


def trial_dirs(folder: Path) -> list[Path]:
    """The trial folders with results. (A SIGKILL can leave the folder of a trial Ray had not
    saved yet, with no results: Ray creates that trial again.)"""
    return sorted(p.parent for p in folder.glob("train_trial_*/result.json"))


def snapshot(trials: list[Path]) -> dict[str, bytes]:
    """Every file of the given trial folders, by path: what must stay byte for byte."""
    return {str(p): p.read_bytes() for t in trials for p in sorted(t.rglob("*")) if p.is_file()}


def newest(folder: Path, pattern: str) -> Any:
    """The newest of Ray's pickled state files (this test trusts the folder it made)."""
    with sorted(folder.glob(pattern))[-1].open("rb") as f:
        return pickle.load(f)


def assert_each_epoch_logged_once(uri: str, trials: int) -> None:
    parent, children = runs_of(uri, NAME)
    assert parent.info.status == "FINISHED"
    assert len(children) == trials, [c.info.run_name for c in children]
    client = MlflowClient(uri)
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert steps == sorted(set(steps)) and steps[0] == 1, (child.info.run_name, steps)


@pytest.mark.integration
def test_an_optuna_sweep_extended_then_an_extension_killed_and_resumed(
    tmp_path: Path, hpo_here: Runner
) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = ["--storage", str(tmp_path / "runs")]
    folder = tmp_path / "runs" / NAME
    swept = hpo_here(["sweep", "space.yaml", "--tracking-uri", uri, *where], tmp_path)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    first = trial_dirs(folder)
    before = snapshot(first)
    assert len(first) == 4

    grown = hpo_here(["extend", NAME, "--num-samples", "4", *where], tmp_path)
    assert grown.returncode == 0, grown.stdout + grown.stderr
    assert f"extending '{NAME}'" in grown.stdout and "from 4 to 8 trials" in grown.stdout
    assert len(trial_dirs(folder)) == 8
    assert snapshot(first) == before  # the earlier trials, byte for byte
    assert_each_epoch_logged_once(uri, 8)
    record = records.load(folder)
    assert record.spec.num_samples == 8 and record.extended == (4,)
    parent, _ = runs_of(uri, NAME)
    assert parent.data.tags["hpo.extended"] == "+4" and parent.data.params["num_samples"] == "4"
    # TPE was told every trial, the first four included; ASHA's first rung holds all eight.
    study = newest(folder, "searcher-state-*.pkl")["_ot_study"]
    assert len([t for t in study.trials if t.state.name == "COMPLETE"]) == 8
    callbacks = newest(folder, "callback-states-*.pkl")
    asha = next(s["scheduler"] for s in callbacks.values() if s and "scheduler" in s)
    rung_1 = next(recorded for milestone, recorded in asha["_brackets"][0]._rungs if milestone == 1)
    assert len(rung_1) == 8
    # status, report and confirm read every trial.
    status = hpo_here(["status", NAME, *where], tmp_path)
    assert status.returncode == 0 and "8/8 trials" in status.stdout, status.stdout
    report = hpo_here(["report", NAME, *where], tmp_path, MLFLOW_TRACKING_URI=uri)
    assert report.returncode == 0, report.stderr
    with (folder / "report" / "trials.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8

    # An extension killed once its first new trial trained an epoch; `hpo resume` finishes it.
    eight = trial_dirs(folder)
    killed = hpo_started(["extend", NAME, "--num-samples", "2", *where], tmp_path)
    wait_for(
        "a ninth trial with an epoch",
        lambda: (
            killed.poll() is not None
            or any(
                (t / "result.json").stat().st_size > 0 for t in set(trial_dirs(folder)) - set(eight)
            )
        ),
    )
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert records.load(folder).spec.num_samples == 10
    resumed = hpo_here(["resume", NAME, *where], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(trial_dirs(folder)) == 10
    assert snapshot(first) == before
    assert_each_epoch_logged_once(uri, 10)


def recorded(tmp_path: Path, yaml: str) -> Path:
    """An experiment folder with only a record: enough for what is refused before Ray."""
    (tmp_path / "space.yaml").write_text(yaml)
    folder = tmp_path / "runs" / "refused"
    records.save(folder, records.new_record(load_spec(tmp_path / "space.yaml"), "sqlite:///m.db"))
    return folder


def test_a_grid_is_refused_in_one_line(tmp_path: Path, hpo_here: Runner) -> None:
    folder = recorded(tmp_path, "name: refused\nsearch: {dropout: {grid: [0.0, 0.5]}}\n"
                      "search_algorithm: grid\n")  # fmt: skip
    kept = (folder / records.RECORD_FILE).read_bytes()
    done = hpo_here(["extend", str(folder), "--num-samples", "2"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"hpo extend: {folder}: a grid runs each point once; use --warm-start with a new space"
    ]
    assert (folder / records.RECORD_FILE).read_bytes() == kept


@pytest.mark.parametrize("n", ["0", "-1", "two"])
def test_fewer_than_one_sample_is_refused(tmp_path: Path, hpo_here: Runner, n: str) -> None:
    folder = recorded(tmp_path, "name: refused\nsearch: {dropout: {uniform: [0.0, 0.5]}}\n")
    done = hpo_here(["extend", str(folder), "--num-samples", n], tmp_path)
    assert done.returncode == 2 and "--num-samples" in done.stderr


def test_a_running_experiment_is_refused(tmp_path: Path, hpo_here: Runner) -> None:
    folder = recorded(tmp_path, "name: refused\nsearch: {dropout: {uniform: [0.0, 0.5]}}\n")
    with records.lock(folder):  # as a running sweep holds it
        done = hpo_here(["extend", str(folder), "--num-samples", "2"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"hpo extend: experiment refused is in use by process {os.getpid()} "
        f"on {socket.gethostname()}"
    ]


def test_a_sweep_ray_never_saved_is_refused(tmp_path: Path, hpo_here: Runner) -> None:
    folder = recorded(tmp_path, "name: refused\nsearch: {dropout: {uniform: [0.0, 0.5]}}\n")
    done = hpo_here(["extend", str(folder), "--num-samples", "2"], tmp_path)
    assert done.returncode == 2
    assert "Ray saved no trials of it yet; `hpo resume refused` starts them" in done.stderr


def test_the_smoke_space_extends_by_its_own_unit(tmp_path: Path) -> None:
    """--num-samples counts as num_samples does: a sample of a space with grid entries is a
    trial per grid point."""
    from tune.run.extend import extended

    space = tmp_path / "space.yaml"
    space.write_text("search: {dropout: {uniform: [0.0, 0.5]}, normalization: {grid: [false, true]}}\n"
                     "num_samples: 3\n")  # fmt: skip
    spec = load_spec(space)
    record = extended(records.new_record(spec, "sqlite:///m.db"), 2, created=6)
    assert (spec.trial_count(), record.trial_count, record.extended) == (6, 10, (2,))


def test_a_sweep_its_budget_ended_gets_the_samples_added_to_those_it_made(tmp_path: Path) -> None:
    """Optuna creates a trial when a slot frees: a sweep its time budget ended at 3 of 20 trials
    extended by 2 runs 5 in all (not 22), with the budget whole again."""
    from tune.run.extend import extended

    space = tmp_path / "space.yaml"
    space.write_text("search: {dropout: {uniform: [0.0, 0.5]}}\nsearch_algorithm: optuna\n"
                     "num_samples: 20\ntime_budget_s: 60\n")  # fmt: skip
    ended = replace(records.new_record(load_spec(space), "sqlite:///m.db"), budget_ended="x")
    record = extended(ended, 2, created=3)
    assert (record.trial_count, record.budget_ended, record.extended) == (5, "", (2,))


def test_an_extension_gets_the_whole_time_budget_again() -> None:
    from ray.tune.stopper import CombinedStopper, TimeoutStopper

    from tune.run.extend import _renew_budget

    spent = TimeoutStopper(60)
    spent._budget = -1.0  # as Ray restores a sweep its budget ended
    _renew_budget(CombinedStopper(TimeoutStopper(5), spent))
    assert spent._budget == 60 and not spent.stop_all()


def test_random_search_draws_on_and_numbers_on(tmp_path: Path) -> None:
    """Ray's own generator (random search, here with a grid entry), raised by one sample once it
    created its trials: one trial per grid point more, ids numbered on, values drawn on from
    the same random state (none repeated)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from tune.run.extend import set_count
    from tune.run.sweep import param_space, searcher

    space = tmp_path / "space.yaml"
    space.write_text("search: {dropout: {uniform: [0.0, 0.5]}, normalization: {grid: [false, true]}}\n"
                     "num_samples: 2\n")  # fmt: skip
    spec = load_spec(space)
    generator = searcher(spec)
    assert isinstance(generator, BasicVariantGenerator)
    generator.add_configurations(
        {
            "x": {
                "run": lambda config: None,
                "config": param_space(spec),
                "num_samples": 2,
                "storage_path": str(tmp_path),
            }
        }
    )

    def created() -> list[Any]:
        return list(iter(generator.next_trial, None))

    first = created()
    assert len(first) == 4 and generator.is_finished()
    assert set_count(generator, replace(spec, num_samples=3)) is True
    more = created()
    prefix = first[0].trial_id[:-5]
    assert [t.trial_id for t in more] == [f"{prefix}00004", f"{prefix}00005"]
    assert sorted(t.config["normalization"] for t in more) == [False, True]
    assert len({t.config["dropout"] for t in first + more}) == 6
    assert set_count(generator, replace(spec, num_samples=3)) is False  # as many as it has


def test_the_restore_hooks_are_installed_once_however_often_ray_is_restored() -> None:
    """Each restore installs moved.py's hook and then extend.py's: Ray's TuneController.resume
    is wrapped once, whatever the number of restores in one process (before, each restore
    wrapped it twice more), and calls moved's hook before extend's."""
    from ray.tune.execution.tune_controller import TuneController

    from tune.run import extend, moved, resume_hooks

    for _ in range(3):
        moved.install()
        extend.install()
    resume, wrappers = TuneController.resume, 0
    while hasattr(resume, "__wrapped__"):
        resume, wrappers = resume.__wrapped__, wrappers + 1
    assert wrappers == 1
    assert list(resume_hooks._HOOKS) == ["moved", "extend"]
