"""End to end with real components: a real local Ray, a real MLflow store (SQLite in tmp_path),
the real Fashion-MNIST files and the real trainer, through the `hpo` entry point.

The ASHA test swaps the trainer for a fake trainable with a scripted learning curve, which the
rules allow for testing scheduling logic: it makes 'clearly worse' exact.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray import tune as ray_tune

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import (
    Runner,
    held_trainable,
    hpo,
    hpo_env,
    overlap_recording_trainable,
    runs_of,
    scripted_curve_trainable,
)
from tests.tune.loopback import free_port
from tune.core import states
from tune.run.experiment import is_finished
from tune.run.process import RunOptions
from tune.run.sweep import run_sweep
from tune.space.grid import grid_points
from tune.space.hyperparams import RULES
from tune.space.spec import load_spec
from tune.store.records import load as load_record

pytestmark = pytest.mark.integration


def trial_ids(experiment_dir: Path) -> set[str]:
    ids = set()
    for result in experiment_dir.glob("*/result.json"):
        first = json.loads(result.read_text().splitlines()[0])
        ids.add(first["trial_id"])
    return ids


def test_smoke_sweep_through_the_cli(tmp_path: Path, hpo_here: Runner) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = hpo(
        [
            "sweep",
            str(SEARCH_SPACES / "smoke.yaml"),
            "--storage",
            str(tmp_path / "runs"),
            "--tracking-uri",
            uri,
        ],
        cwd=tmp_path,
        HPO_NO_PLAN="",  # the suite skips the plan; the sweep a user runs starts with one
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Best trial" in result.stdout
        and "mlflow ui" in result.stdout
        and "tensorboard --logdir" in result.stdout
        and "hpo: plan: " in result.stdout
    )

    exp_dir = tmp_path / "runs" / "smoke"
    ids = trial_ids(exp_dir)
    assert len(ids) == 4
    # The plan's figures are in the record (the report's rows: tests/tune/report/test_planned.py).
    plan = json.loads((exp_dir / "hpo_sweep.json").read_text())["plan"]
    assert plan["slots"] >= 1 and plan["peak_mem_mb"] > 0
    assert plan["trial_epochs_p10"] <= plan["trial_epochs_median"] <= plan["trial_epochs_p90"]
    assert 4 <= plan["trial_epochs_median"] <= 8  # 4 trials of 2 epochs, 1 before ASHA can stop

    client = MlflowClient(uri)
    parent, children = runs_of(uri, "smoke")
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["hpo.trial_id"] for r in children} == ids  # exactly one run per trial
    for run in children:
        assert set(RULES) <= set(run.data.params)  # every resolved hyperparameter
        assert run.data.tags["device"] == "cpu"
        assert "torch_version" in run.data.tags and "ray_version" in run.data.tags
        assert run.data.tags["model_summary"].startswith("CNN ")
        # Named by what the search varies; sized by its parameter count.
        name = run.info.run_name
        assert name.startswith(run.data.tags["hpo.trial_id"] + " conv_layers=") and ", lr=" in name
        assert run.data.metrics["parameter_count"] > 1000
        epochs = int(run.data.tags["hpo.epochs"])
        for metric in ("val_accuracy", "val_loss", "train_loss", "loss_gap", "samples_per_s"):
            history = client.get_metric_history(run.info.run_id, metric)
            assert sorted(m.step for m in history) == list(range(1, epochs + 1)), metric
        expected = {"completed": "FINISHED", "stopped_early": "KILLED"}[
            run.data.tags["hpo.outcome"]
        ]
        assert run.info.status == expected
        assert list(
            (exp_dir / "tensorboard" / run.data.tags["hpo.trial_id"]).glob("events.out.tfevents.*")
        )

    status = hpo_here(["status", "smoke", "--storage", str(tmp_path / "runs")], tmp_path)
    assert status.returncode == 0, status.stderr
    assert all(i in status.stdout for i in ids)


@pytest.mark.parametrize(
    ("space", "trials"),
    [("fashion_seed", 8), ("fashion_tpe", 2)],  # grid 2 x 2 x 2; Optuna TPE with 2 samples
)
def test_smoke_flag_runs_each_shipped_space(
    tmp_path: Path, space: str, trials: int, hpo_here: Runner
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["sweep", str(SEARCH_SPACES / f"{space}.yaml"), "--smoke", "--max-concurrent", "1"]
    result = hpo_here([*args, "--storage", str(tmp_path / "runs"), "--tracking-uri", uri], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    _, children = runs_of(uri, f"{space}_smoke")
    assert len(children) == trials
    assert all(int(r.data.params["epochs"]) == 2 for r in children)


# -- ASHA with a scripted learning curve ---------------------------------------------------------

ASHA_SPACE = """\
name: asha_scripted
search:
  dropout: {grid: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}
  epochs: 9
search_algorithm: grid
scheduler: {asha: {grace_period: 1, reduction_factor: 3}}
max_concurrent_trials: 2
"""


def test_asha_stops_clearly_worse_trials_early(tmp_path: Path, ray_session: None) -> None:
    space = tmp_path / "asha.yaml"
    space.write_text(ASHA_SPACE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = tmp_path / "runs" / "asha_scripted"
    options = RunOptions(progress_interval=3600)
    spec = load_spec(space)
    result = run_sweep(spec, folder, uri, options, trainable=scripted_curve_trainable)

    assert len(result.rows) == 8 and result.errors == 0
    # Ray created the trials in the shuffled grid order hpo gave it (trial ids count up).
    created = sorted(result.rows, key=lambda r: r.trial_id)
    assert [r.config["dropout"] for r in created] == [p["dropout"] for p in grid_points(spec)]
    assert result.best is not None and result.best.config["dropout"] == 0.0
    stopped = [r for r in result.rows if r.epochs < 9]
    assert stopped, "ASHA stopped no trial before max_t"
    assert all(r.state == states.STOPPED_EARLY for r in stopped)

    _, children = runs_of(uri, "asha_scripted")
    assert len(children) == 8
    by_trial = {r.data.tags["hpo.trial_id"]: r for r in children}
    for row in result.rows:
        run = by_trial[row.trial_id]
        assert run.data.tags["hpo.epochs"] == str(row.epochs)
        assert run.info.status == ("KILLED" if row.epochs < 9 else "FINISHED")


@pytest.mark.parametrize("algorithm", ["random", "grid", "optuna"])
def test_max_concurrent_trials_holds_for_every_search_algorithm(
    tmp_path: Path, ray_session: None, algorithm: str
) -> None:
    """Ray ignored TuneConfig's limit for the generator hpo passes for random and grid search:
    on 2 CPUs, two trials ran at once with max_concurrent_trials: 1."""
    search = "{grid: [0.0, 0.1, 0.2]}" if algorithm == "grid" else "{uniform: [0.0, 0.5]}"
    space = tmp_path / "one.yaml"
    space.write_text(
        f"name: one_at_a_time\nsearch:\n  dropout: {search}\n  epochs: 2\n"
        f"search_algorithm: {algorithm}\nnum_samples: {1 if algorithm == 'grid' else 3}\n"
        "scheduler: none\nmax_concurrent_trials: 1\n"
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    trainable = ray_tune.with_parameters(overlap_recording_trainable, folder=str(marks))
    spec = load_spec(space)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = RunOptions(progress_interval=3600)
    result = run_sweep(spec, tmp_path / "runs" / spec.name, uri, options, trainable=trainable)

    assert len(result.rows) == 3 and result.errors == 0
    seen = [int(p.name.rsplit("-", 1)[1]) for p in marks.glob("seen-*")]
    assert len(seen) == 3 * 2 and max(seen) == 1, sorted(p.name for p in marks.iterdir())


# Optuna creates a trial only when a slot frees: when the budget ends, 3 of 6 exist (2 running
# on the 2 CPUs, 1 waiting for one) and 3 never will.
BUDGET_SPACE = """\
name: budget
search:
  dropout: {uniform: [0.0, 0.4]}
  epochs: 9
search_algorithm: optuna
num_samples: 6
scheduler: none
max_concurrent_trials: 3
time_budget_s: 20
"""


def test_time_budget_ends_the_sweep_cleanly(
    tmp_path: Path, ray_session: None, hpo_here: Runner
) -> None:
    """Trials report epoch 1 and then wait for a file that never comes: only the time budget
    can end them. Two run, one never starts, whenever the budget runs out; the sweep is then
    finished for status, report and resume, with the trials Optuna never created. The budget
    leaves time for Ray to start trial workers on a busy machine (pytest -n 2, 3): 10 s did not."""
    space = tmp_path / "budget.yaml"
    space.write_text(BUDGET_SPACE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainable = ray_tune.with_parameters(held_trainable, release=str(tmp_path / "never"))
    options = RunOptions(progress_interval=3600)
    folder = tmp_path / "runs" / "budget"
    result = run_sweep(load_spec(space), folder, uri, options, trainable)

    assert result.budget_hit and not result.interrupted, result.rows
    assert {r.state for r in result.rows} <= {states.STOPPED_EARLY, states.NOT_STARTED}
    assert sum(r.state == states.NOT_STARTED for r in result.rows) >= 1, result.rows
    assert len(result.rows) < 6, "Optuna created every trial: nothing tests the lazy searcher"
    assert result.unfinished >= 1 and result.best is not None, result.rows
    _, children = runs_of(uri, "budget")
    # The trials the budget cut say so; none stays RUNNING.
    assert children and all(
        (r.info.status, r.data.tags["hpo.outcome"]) == ("KILLED", "stopped_early") for r in children
    )

    # The budget's end is in the record: what the sweep created is all it will have.
    assert is_finished(folder) and load_record(folder).budget_ended
    created = len(result.rows)
    status = hpo_here(["status", str(folder)], cwd=tmp_path)
    assert f"{created}/{created} trials" in status.stdout, status.stdout
    resume = hpo_here(["resume", str(folder)], cwd=tmp_path)
    assert resume.returncode == 0 and "already finished" in resume.stdout, resume.stdout
    report = hpo_here(["report", str(folder)], cwd=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    text = (folder / "report" / "report.md").read_text()
    assert "Snapshot of an unfinished sweep" not in text
    assert "time budget (20 s) ended it" in text and f"{created} of the 6 trials" in text


ONE_TRIAL = """\
name: one
dataset: {train_steps: 2, eval_steps: 1}
search: {filters: 8, units: 32, epochs: 1}
search_algorithm: grid
scheduler: none
"""


def test_without_address_a_sweep_never_joins_a_cluster_on_the_machine(tmp_path: Path) -> None:
    """A `ray start` cluster of 1 CPU runs here; `hpo sweep` without --address starts its own
    Ray anyway (the README promises an in-process Ray), and says so."""
    ray_bin = Path(sys.executable).parent / "ray"
    # Ray's sockets live under its temp dir, and a socket path has at most 107 characters.
    temp = tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp")
    head = [str(ray_bin), "start", "--head", "--num-cpus", "1", "--port", str(free_port()),
            "--node-ip-address", "127.0.0.3", "--temp-dir", temp,
            "--include-dashboard", "false", "--disable-usage-stats", "--block"]  # fmt: skip
    # Its own process group, killed whole at the end: `ray stop` would stop every Ray on the
    # machine, another test's (pytest -n) or a benchmark's too.
    node = subprocess.Popen(
        head, env=hpo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        said = []
        for line in iter(node.stdout.readline, ""):  # type: ignore[union-attr]
            said.append(line)
            if "Ray runtime started" in line:
                break
        assert node.poll() is None, "".join(said)
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        (tmp_path / "one.yaml").write_text(ONE_TRIAL)  # which Ray it starts is all this tests
        args = ["sweep", str(tmp_path / "one.yaml"), "--storage", str(tmp_path / "runs")]
        result = hpo([*args, "--tracking-uri", uri], cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "hpo: Ray started in this process" in result.stdout
        assert "(1 CPUs" not in result.stdout
    finally:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()
        shutil.rmtree(temp, ignore_errors=True)
