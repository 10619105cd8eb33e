"""Interrupted sweeps resume with nothing lost or counted twice: real `hpo` processes, killed
for real (SIGKILL, SIGINT), a real local Ray and a real MLflow store."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.tune.conftest import MlflowServer, hpo_in_process, hpo_started, wait_for
from tune.run.experiment import RunResult
from tune.run.process import RunOptions, stop_ray
from tune.run.sweep import adapter, run_sweep
from tune.run.trainable import FAULT_MESSAGE, Fault
from tune.run.trial import trial_settings
from tune.space.spec import load_spec
from tune.store.checkpoints import CHECKPOINT_FILE, FIX
from tune.store.trials import read_history

pytestmark = pytest.mark.integration

EPOCHS = 4
# Small and quick, but an epoch takes long enough (~0.5 s at 40 steps) to be caught mid-trial.
# Random search with a continuous entry, so that a resume must continue the searcher's own state.
# The sweeps with injected faults run in this process and are never stopped mid-epoch: 3 trials
# of 10 steps (each failed trial costs a new trial process).
FAULTY = {"samples": 3, "steps": 10}
SPACE = f"""\
name: {{name}}
dataset: {{{{train_steps: {{steps}}, eval_steps: 4}}}}
search:
  dropout: {{{{uniform: [0.0, 0.5]}}}}
  filters: 8
  units: 32
  epochs: {EPOCHS}
search_algorithm: random
num_samples: {{samples}}
max_concurrent_trials: 2
scheduler: none
max_failures: {{failures}}
"""


class Sweep:
    """An experiment folder, its MLflow store and `hpo` run as a user would run it. A sweep
    that is never stopped mid-epoch can have fewer, shorter trials (`samples`, `steps`)."""

    def __init__(
        self, tmp_path: Path, name: str, failures: int = 2, samples: int = 5, steps: int = 40
    ) -> None:
        self.cwd, self.name, self.samples = tmp_path, name, samples
        self.space = tmp_path / f"{name}.yaml"
        self.space.write_text(
            SPACE.format(name=name, failures=failures, samples=samples, steps=steps)
        )
        self.exp_dir = tmp_path / "runs" / name
        self.uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def start(self) -> subprocess.Popen[str]:
        """`hpo sweep` in its own process, for a test that stops it."""
        return hpo_started(["sweep", str(self.space)], self.cwd, MLFLOW_TRACKING_URI=self.uri)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`hpo ARGS` to its end, run by this process (nothing here signals it)."""
        return hpo_in_process(list(args), self.cwd, MLFLOW_TRACKING_URI=self.uri)

    def run_with_fault(self, fault: Fault) -> RunResult:
        """The sweep in this process, every trial failing once before `fault.epoch`."""
        spec = load_spec(self.space)
        options = RunOptions(progress_interval=3600)
        settings = replace(trial_settings(spec, options), fault=fault)
        return run_sweep(spec, self.exp_dir, self.uri, options, trainable=adapter(settings))

    def results(self) -> dict[str, list[tuple[int, float]]]:
        """Per trial folder, (epoch, val_accuracy) of each line of Ray's result.json. A trial
        that had run its last epoch just as the sweep stopped is restored finished, and Ray
        then logs its final result once more, identical down to training_iteration: that line
        is Ray's echo, not a second epoch, and is collapsed here. A trial that really started
        again would repeat an epoch under a new training_iteration and still be caught."""
        out = {}
        for path in self.exp_dir.glob("*/result.json"):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            unique = {(r["epoch"], r["training_iteration"]): r["val_accuracy"] for r in rows}
            out[path.parent.name] = [(epoch, acc) for (epoch, _), acc in unique.items()]
        return out

    def epochs(self) -> dict[str, list[int]]:
        return {folder: [e for e, _ in rows] for folder, rows in self.results().items()}

    def wait_for(
        self, condition: Callable[[dict[str, list[int]]], bool], timeout: float = 120
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition(self.epochs()):
                    return
            except (OSError, ValueError):
                pass  # a result.json being written
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting; epochs so far: {self.epochs()}")

    def mlflow_runs(self) -> tuple[list[object], dict[str, list[int]]]:
        """All runs of the experiment, and per trial run the steps its val_loss was logged at."""
        client = MlflowClient(self.uri)
        exp = client.get_experiment_by_name(self.name)
        assert exp is not None
        runs = client.search_runs([exp.experiment_id])
        steps = {
            r.data.tags["hpo.trial_id"]: sorted(
                m.step for m in client.get_metric_history(r.info.run_id, "val_loss")
            )
            for r in runs
            if "hpo.trial_id" in r.data.tags
        }
        return runs, steps


def two_done_one_midway(epochs: dict[str, list[int]]) -> bool:
    done = sum(len(e) == EPOCHS for e in epochs.values())
    midway = sum(0 < len(e) < EPOCHS for e in epochs.values())
    return done >= 2 and midway >= 1


def assert_complete(sweep: Sweep, before: dict[str, list[tuple[int, float]]] | None = None) -> None:
    """Every one of the trials ran epochs 1..4 once, in Ray's results and in MLflow, with one
    MLflow run per trial plus the parent; trials finished before the kill kept their results."""
    epochs = sweep.epochs()
    assert len(epochs) == sweep.samples, epochs  # the searcher continued: num_samples trials
    assert all(e == list(range(1, EPOCHS + 1)) for e in epochs.values()), epochs
    runs, steps = sweep.mlflow_runs()
    assert len(runs) == sweep.samples + 1, [r.info.run_name for r in runs]  # type: ignore[attr-defined]
    assert all(s == list(range(1, EPOCHS + 1)) for s in steps.values()), steps
    assert all(r.info.status == "FINISHED" for r in runs)  # type: ignore[attr-defined]
    if before is not None:
        results = sweep.results()
        for folder, finished in before.items():
            if len(finished) == EPOCHS:
                assert results[folder] == finished  # same epochs, same numbers


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["SIGKILL", "SIGINT", "SIGTERM"]
)
def test_killed_sweep_resumes_to_a_complete_experiment(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM is turned into SIGINT at once (tune/core/signals.py), so after its own exit code,
    hint and KILLED parent run, its resume would repeat SIGINT's case: not run twice."""
    sweep = Sweep(tmp_path, f"killed_{sig.name.lower()}")
    proc = sweep.start()
    sweep.wait_for(two_done_one_midway)
    before = sweep.results()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    if sig != signal.SIGKILL:
        # A graceful stop: the shell's exit code, the exact command to go on, the parent run
        # ended KILLED (not FAILED).
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], output
        assert f"hpo resume {sweep.exp_dir}" in output
        runs, _ = sweep.mlflow_runs()
        parent = next(r for r in runs if "hpo.trial_id" not in r.data.tags)  # type: ignore[attr-defined]
        assert parent.info.status == "KILLED"  # type: ignore[attr-defined]
    status = sweep.run("status", sweep.name)
    assert status.returncode == 0, status.stderr
    if sig == signal.SIGTERM:
        return

    resumed = sweep.run("resume", sweep.name)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(sweep, before)

    again = sweep.run("resume", sweep.name)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_a_sweep_outlives_its_tracking_server_and_resume_logs_what_it_missed(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    """A real `mlflow server` is killed after the first epoch reached it. The sweep trains to
    the end anyway, says what MLflow missed and how to log it; once the server is back,
    `hpo resume` logs it, and MLflow holds the whole experiment."""
    sweep = Sweep(tmp_path, "untracked")
    sweep.uri = mlflow_server.uri
    store = MlflowClient(mlflow_server.store)  # the server's database, read directly

    def an_epoch_logged() -> bool:
        exp = store.get_experiment_by_name(sweep.name)
        runs = store.search_runs([exp.experiment_id]) if exp else []
        return any("val_loss" in r.data.metrics for r in runs)

    proc = sweep.start()
    wait_for("an epoch in MLflow", an_epoch_logged)
    mlflow_server.kill()
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    assert "Best trial" in output and "Traceback" not in output
    assert "could not be reached for" in output and f"hpo resume {sweep.exp_dir}" in output
    assert all(e == list(range(1, EPOCHS + 1)) for e in sweep.epochs().values())

    mlflow_server.start()
    resumed = sweep.run("resume", sweep.name)  # finished: Ray never starts
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "already finished" in resumed.stdout
    assert f"MLflow at {mlflow_server.uri} had missed" in resumed.stdout
    assert_complete(sweep)
    # MLflow's own links, printed each time a run ends on a server, stay out of hpo's output.
    assert "View run" not in output + resumed.stdout
    again = sweep.run("resume", sweep.name)
    assert again.returncode == 0 and "had missed" not in again.stdout


def test_failed_trials_retry_from_their_checkpoint(tmp_path: Path, ray_session: None) -> None:
    """Every trial raises once before epoch 2 (test-only fault injection); with retries it
    goes on from its epoch-1 checkpoint, never from epoch 1 again."""
    sweep = Sweep(tmp_path, "flaky", **FAULTY)
    result = sweep.run_with_fault(Fault(epoch=2, marker_dir=str(tmp_path)))
    assert result.errors == 0 and not result.interrupted, result.rows
    assert len(list(tmp_path.glob("*_0000*"))) == sweep.samples  # every trial did fail once
    assert_complete(sweep)
    # Recovered, but said: in the summary and in `hpo status`, with the error line.
    assert all(r.failures == 1 for r in result.rows)
    stop_ray()
    status = sweep.run("status", sweep.name)
    assert (
        f"hpo: {sweep.samples} trial(s) failed and were retried from a checkpoint:" in status.stdout
    )
    assert status.stdout.count(f"completed; last: RuntimeError: {FAULT_MESSAGE} 2") == sweep.samples


def test_errored_trials_resume_from_their_checkpoint(tmp_path: Path, ray_session: None) -> None:
    """Without retries the injected failure ends each trial as ERROR, shown by `hpo status`.
    With two of their epoch-1 checkpoints damaged (one cut short, one gone), `hpo resume` names
    both, one line each, exits 2 and runs nothing; with them put back, it continues every trial
    from its last checkpoint."""
    sweep = Sweep(tmp_path, "fragile", failures=0, **FAULTY)
    result = sweep.run_with_fault(Fault(epoch=2, marker_dir=str(tmp_path)))
    assert result.errors == sweep.samples, result.rows
    stop_ray()  # `hpo resume` below starts its own
    status = sweep.run("status", sweep.name)
    assert f"failed: RuntimeError: {FAULT_MESSAGE} 2" in status.stdout
    assert list(sweep.exp_dir.glob("*/error.txt"))

    first, second, *_ = sorted(sweep.exp_dir.glob("*/checkpoint_*/trainer.pt"))
    kept = {first: first.read_bytes(), second: second.read_bytes()}
    first.write_bytes(kept[first][:100])
    second.unlink()
    refused = sweep.run("resume", sweep.name)  # refuses before Ray starts
    assert refused.returncode == 2, refused.stdout + refused.stderr
    expected = [
        f"{sweep.exp_dir}: {first.relative_to(sweep.exp_dir)}: is not the file that was written "
        f"(its SHA-256 differs from result.json (epoch 1)) ({FIX})",
        f"{sweep.exp_dir}: {second.relative_to(sweep.exp_dir)}: missing ({FIX})",
    ]
    # One line each, in the order Ray lists its trials.
    assert sorted(refused.stderr.strip().splitlines()) == sorted(expected)
    assert "Best trial" not in refused.stdout

    for path, data in kept.items():
        path.write_bytes(data)
    resumed = sweep.run("resume", sweep.name)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(sweep)


def test_what_a_kill_mid_checkpoint_leaves_is_repaired_on_resume(
    tmp_path: Path, ray_session: None
) -> None:
    """Two things a driver killed between Ray's steps leaves, both seen in CI after SIGKILL:
    a checkpoint Ray's state names but had half deleted (a newer one beside it), refused as
    `trainer.pt: missing`; and a checkpoint whose epochs never reached result.json, after which
    the trial's history skipped them (1, 2, 4, ...; also two epochs: 1, 4, ...). Here on
    errored trials' epoch-2 checkpoints; `hpo resume` puts the first back and replays the
    epochs result.json lacks: every trial's history holds epochs 1..4, each logged to MLflow
    once."""
    sweep = Sweep(tmp_path, "cut_short", failures=0, **FAULTY)
    result = sweep.run_with_fault(Fault(epoch=3, marker_dir=str(tmp_path)))
    assert result.errors == sweep.samples, result.rows
    stop_ray()  # `hpo resume` below starts its own
    half, unreported, *_ = sorted(sweep.exp_dir.glob("*/checkpoint_000001"))
    shutil.copytree(half, half.with_name("checkpoint_000009"))  # the newer one
    (half / CHECKPOINT_FILE).unlink()  # the deletion cut short: its seal file is left
    (unreported.parent / "result.json").write_text("")  # epochs 1, 2 lost with the driver

    resumed = sweep.run("resume", sweep.name)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    histories = [read_history(trial) for trial in sweep.exp_dir.glob("*_0000*")]
    assert [[h["epoch"] for h in history] for history in histories] == [
        [1, 2, 3, 4]
    ] * sweep.samples
    runs, steps = sweep.mlflow_runs()
    assert len(runs) == sweep.samples + 1 and list(steps.values()) == [[1, 2, 3, 4]] * sweep.samples


def test_sweep_onto_an_existing_experiment(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, "twice", steps=10)
    one = ("--num-samples", "2", "--max-concurrent", "1")  # one trial process a sweep
    assert sweep.run("sweep", str(sweep.space), *one).returncode == 0
    refused = sweep.run("sweep", str(sweep.space))
    assert refused.returncode == 2
    assert "hpo resume twice" in refused.stderr and "--overwrite" in refused.stderr

    again = sweep.run("sweep", str(sweep.space), *one, "--overwrite")
    assert again.returncode == 0, again.stdout + again.stderr
    runs, steps = sweep.mlflow_runs()  # the first sweep's runs were deleted with it
    assert len(runs) == 2 + 1 and len(steps) == 2
