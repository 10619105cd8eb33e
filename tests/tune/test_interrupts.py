"""`hpo confirm` and `hpo resume` stopped for real (SIGTERM, SIGKILL) at known states and run
again, and a sweep whose storage fills up: real `hpo` processes, a real local Ray, a real
MLflow store (SQLite) and the real trainer on Fashion-MNIST, tiny."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.tune.conftest import hpo_in_process, hpo_started, runs_of, wait_for
from tune.cli import main

pytestmark = pytest.mark.integration

EPOCHS = 6
SPACE = f"""\
name: {{name}}
dataset: {{{{name: fashion_mnist, validation_fraction: 0.1, train_steps: 5, eval_steps: 2}}}}
metric: {{{{name: val_accuracy, mode: max}}}}
search:
  dropout: {{{{grid: [0.0, 0.2, 0.4, 0.6]}}}}
  filters: 8
  units: 32
  lr: 0.005
  epochs: {EPOCHS}
search_algorithm: grid
scheduler: none
max_concurrent_trials: 1  # one trial process: parallel trials are not what these test
seed: 0
"""
TRIALS = 4  # the grid's points; also --top 2 x --seeds 2 in a confirm run


class Experiment:
    """A tiny sweep's YAML, folders and MLflow store, and `hpo` run on it as a user runs it."""

    def __init__(self, root: Path, name: str) -> None:
        self.root, self.name = root, name
        self.space = root / f"{name}.yaml"
        self.space.write_text(SPACE.format(name=name))
        self.storage = root / "runs"
        self.folder = self.storage / name
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.env = {"MLFLOW_TRACKING_URI": self.uri}

    def start(self, *args: str) -> subprocess.Popen[str]:
        return hpo_started([*args, "--storage", str(self.storage)], self.root, **self.env)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`hpo ARGS` to its end, run by this process (only `start` is signalled)."""
        return hpo_in_process([*args, "--storage", str(self.storage)], self.root, **self.env)


def epochs_in(folder: Path) -> dict[str, list[int]]:
    """Per trial folder, the distinct epochs in Ray's result.json. A trial restored finished
    may log its last result once more (Ray's echo, the same epoch): counted once; MLflow's
    steps, checked apart, must never repeat."""
    out: dict[str, list[int]] = {}
    for path in folder.glob("train_trial_*/result.json"):
        found = set()
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):  # a line being written
                found.add(int(json.loads(line)["epoch"]))
        out[path.parent.name] = sorted(found)
    return out


def trained(folder: Path) -> int:
    """Trial-epochs in the folder so far."""
    return sum(len(e) for e in epochs_in(folder).values())


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=180)
    return proc.returncode, output


def signalled_at_line(
    proc: subprocess.Popen[str], prefix: str, sig: signal.Signals
) -> tuple[int, str]:
    """Send `sig` the moment `proc` prints a line starting with `prefix`, read as it comes (a
    poll of the folder could see the state only after the process had ended)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=180)
    output = "".join(seen) + rest
    assert any(line.startswith(prefix) for line in seen), f"never printed {prefix!r}: {output}"
    return proc.returncode, output


def signalled_mid_run(
    exp: Experiment, folder: Path, sig: signal.Signals, *args: str
) -> tuple[int, str]:
    """`hpo ARGS`, stopped with `sig` once it has trained a new epoch, with epochs left."""
    before = trained(folder) if folder.exists() else 0
    proc = exp.start(*args)
    wait_for(
        f"hpo {args[0]} trains an epoch more than the {before} it had",
        lambda: proc.poll() is not None or trained(folder) > before,
    )
    assert trained(folder) < TRIALS * EPOCHS, "finished before the signal; nothing to test"
    return stop(proc, sig)


def assert_complete(exp: Experiment, folder: Path, parent_name: str) -> None:
    """Every trial ran epochs 1..EPOCHS, in the folder and in MLflow; MLflow has exactly one
    parent run of that name, TRIALS child runs under it, each epoch logged once."""
    epochs = epochs_in(folder)
    assert len(epochs) == TRIALS and all(
        e == list(range(1, EPOCHS + 1)) for e in epochs.values()
    ), epochs
    parent, children = runs_of(exp.uri, exp.name, name=parent_name)
    assert parent.info.status == "FINISHED"
    assert len(children) == TRIALS, [c.info.run_name for c in children]
    assert len({c.data.tags["hpo.trial_id"] for c in children}) == TRIALS
    client = MlflowClient(exp.uri)
    for c in children:
        assert c.info.status == "FINISHED", c.data.tags
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "val_accuracy")]
        assert sorted(steps) == list(range(1, EPOCHS + 1)), (c.data.tags["hpo.trial_id"], steps)


def test_confirm_stopped_by_sigterm_and_sigkill_then_run_again(tmp_path: Path) -> None:
    """SIGTERM mid-run: exit 143; the same command again, SIGKILL mid-run; the same command
    again runs to the end. Then SIGTERM once every epoch is trained, as the command ends (at
    its summary's "Finished in" line, before the report): still exit 143, never 0 (Ray's SIGINT handler of the fit that
    was over swallowed it). Nothing is duplicated in MLflow."""
    exp = Experiment(tmp_path, "confirm_stops")
    swept = exp.run("sweep", str(exp.space), "--tracking-uri", exp.uri)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    folder = exp.folder / "confirm"
    confirm = ("confirm", exp.name, "--top", "2", "--seeds", "2")

    code, output = signalled_mid_run(exp, folder, signal.SIGTERM, *confirm)
    assert code == 143, output
    assert f"hpo resume {folder}" in output

    code, output = signalled_mid_run(exp, folder, signal.SIGKILL, *confirm)
    assert code == -signal.SIGKILL, output

    code, output = signalled_at_line(exp.start(*confirm), "Finished in ", signal.SIGTERM)
    assert code == 143, output
    assert_complete(exp, folder, f"{exp.name}-confirm")
    # Every trial finished: the same command again writes the report, trains nothing.
    assert main([*confirm, "--storage", str(exp.storage)]) == 0
    assert (exp.folder / "report" / "report.md").is_file()
    assert_complete(exp, folder, f"{exp.name}-confirm")
    # The sweep's own runs are untouched: its parent and TRIALS children, nothing more.
    client = MlflowClient(exp.uri)
    experiment = client.get_experiment_by_name(exp.name)
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 2 * (1 + TRIALS)


def test_resume_stopped_by_sigterm_and_sigkill_then_run_again(tmp_path: Path) -> None:
    """A sweep stopped by SIGTERM; `hpo resume` stopped by SIGTERM (exit 143), then by
    SIGKILL; `hpo resume` once more finishes it, with nothing duplicated in MLflow."""
    exp = Experiment(tmp_path, "resume_stops")
    code, output = signalled_mid_run(
        exp, exp.folder, signal.SIGTERM, "sweep", str(exp.space), "--tracking-uri", exp.uri
    )
    assert code == 143, output
    resume = ("resume", exp.name)
    code, output = signalled_mid_run(exp, exp.folder, signal.SIGTERM, *resume)
    assert code == 143, output
    assert f"hpo resume {exp.folder}" in output
    code, output = signalled_mid_run(exp, exp.folder, signal.SIGKILL, *resume)
    assert code == -signal.SIGKILL, output

    resumed = exp.run(*resume)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_complete(exp, exp.folder, exp.name)
    client = MlflowClient(exp.uri)
    experiment = client.get_experiment_by_name(exp.name)
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 1 + TRIALS


def test_a_full_disk_mid_sweep_then_resume(tmp_path: Path) -> None:
    """The experiment folder on a 20 MB tmpfs, filled up once the first epoch is saved; the
    MLflow store stays on the real disk. The sweep fails (never hangs) and its record stays
    whole; with the space back, `hpo resume` completes every trial, nothing duplicated."""
    exp = Experiment(tmp_path, "full_disk")
    exp.space.write_text(exp.space.read_text() + "max_failures: 0\n")
    exp.storage.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(exp.storage)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    filler = exp.storage / "filler"
    try:
        proc = exp.start("sweep", str(exp.space), "--tracking-uri", exp.uri)
        wait_for(
            "a trial's first epoch saved",
            lambda: proc.poll() is not None or trained(exp.folder) > 0,
        )
        record = (exp.folder / "hpo_sweep.json").read_text()
        with filler.open("wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * (1 << 20))
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 1, output
        assert (exp.folder / "hpo_sweep.json").read_text() == record
        filler.unlink()
        resumed = exp.run("resume", exp.name)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert_complete(exp, exp.folder, exp.name)
    finally:
        subprocess.run(["umount", "-l", str(exp.storage)], check=False)
