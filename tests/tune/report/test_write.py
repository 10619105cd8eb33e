"""`hpo report` and `hpo confirm` on a small real sweep: real Ray, real MLflow (SQLite), the
real Fashion-MNIST files and the real trainer, through the `hpo` entry point."""

from __future__ import annotations

import csv
import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, SEARCH_SPACES
from tests.tune.conftest import hpo_env, hpo_in_process, runs_of
from tune.cli import main
from tune.report.write import best_config
from tune.space.hyperparams import RULES
from tune.space.spec import load_spec
from tune.store import records

NAME = "report_it"
# 8 grid points over the study's three questions, 3 short epochs, ASHA halving at 1 and 2.
SPACE = f"""
name: {NAME}
dataset: {{name: fashion_mnist, validation_fraction: 0.1, train_steps: 5, eval_steps: 2}}
metric: {{name: val_accuracy, mode: max}}
search:
  dropout: {{grid: [0.0, 0.5]}}
  normalization: {{grid: [false, true]}}
  conv_layers: {{grid: [1, 2]}}
  filters: 8
  units: 32
  lr: 0.005
  epochs: 3
search_algorithm: grid
scheduler: {{asha: {{grace_period: 1, reduction_factor: 2}}}}
num_samples: 1
max_concurrent_trials: 1  # one trial process: parallel trials are not what these test
seed: 0
"""
PLOTS = {
    "learning_curves.png",
    "effect_dropout.png",
    "effect_normalization.png",
    "effect_conv_layers.png",
    "interaction_dropout_x_normalization.png",
    "interaction_conv_layers_x_normalization.png",
    "interaction_conv_layers_x_dropout.png",
    "importance.png",
    "loss_curves.png",
    "compute.png",
}


class Sweep:
    def __init__(self, root: Path, name: str = NAME) -> None:
        self.root = root
        self.storage = root / "runs"
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.experiment = self.storage / name

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`hpo ARGS` to its end, in this process (what starts Ray too), its output kept."""
        result = hpo_in_process([*args, "--storage", str(self.storage)], cwd=self.root)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def main(self, *args: str) -> int:
        """`hpo ARGS` in this process: for commands that never start Ray (report, refusals),
        without paying the imports of a new interpreter each time."""
        return main([*args, "--storage", str(self.storage)])

    def histories(self) -> dict[str, list[dict[str, Any]]]:
        """Each trial's results straight from Ray's result.json files."""
        out: dict[str, list[dict[str, Any]]] = {}
        for path in self.experiment.glob("train_trial_*/result.json"):
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            out[lines[0]["trial_id"]] = lines
        return out


def new_sweep(root: Path, space: str, name: str = NAME) -> Sweep:
    (root / "space.yaml").write_text(space)
    s = Sweep(root, name)
    result = hpo_in_process(
        ["sweep", str(root / "space.yaml"), "--storage", str(s.storage), "--tracking-uri", s.uri],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return s


# The tests that read the module's one sweep run on one pytest worker, one after the other.
SHARED = pytest.mark.xdist_group("report_sweep")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """One sweep that the report tests only read (each writes its report anew)."""
    return new_sweep(tmp_path_factory.mktemp("report"), SPACE)


def best_trial(histories: dict[str, list[dict[str, Any]]]) -> tuple[str, float]:
    best = max(histories, key=lambda t: max(r["val_accuracy"] for r in histories[t]))
    return best, max(r["val_accuracy"] for r in histories[best])


@pytest.mark.integration
@SHARED
def test_report_files_plots_and_mlflow_artifacts(
    sweep: Sweep, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep.main("report", NAME) == 0
    folder = sweep.experiment / "report"
    assert "report.html" in capsys.readouterr().out
    for name in ("report.html", "report.md", "best_config.yaml", "trials.csv"):
        assert (folder / name).is_file(), name
    assert {p.name for p in (folder / "plots").glob("*.png")} == PLOTS
    html = (folder / "report.html").read_text()
    markdown = (folder / "report.md").read_text()
    for plot in PLOTS:
        # Inline in the HTML (one file to open), linked from the Markdown.
        assert re.search(
            rf'data-file="{plot}" src="data:image/png;base64,[A-Za-z0-9+/=]{{200,}}"', html
        )
        assert f"(plots/{plot})" in markdown
    assert html.count("<img ") == len(PLOTS)
    for section in ("Recommendation", "Leaderboard", "Learning curves", "Interactions",
                    "Hyperparameter importance", "Over- and underfitting", "Compute"):  # fmt: skip
        assert f"## {section}" in markdown
    assert "Rule: Each trial is judged" in markdown
    # The same files, as artifacts of the sweep's parent run in MLflow.
    parent, _ = runs_of(sweep.uri, NAME)
    logged = MlflowClient(sweep.uri).list_artifacts(parent.info.run_id, "report")
    assert {Path(f.path).name for f in logged} >= {
        "report.html",
        "report.md",
        "best_config.yaml",
        "trials.csv",
        "plots",
    }


@pytest.mark.integration
@SHARED
def test_best_config_is_the_best_trial_and_retrains_exactly(sweep: Sweep) -> None:
    assert sweep.main("report", NAME) == 0
    best_id, best_value = best_trial(sweep.histories())
    path = sweep.experiment / "report" / "best_config.yaml"
    assert main(["validate", str(path)]) == 0
    data = yaml.safe_load(path.read_text())
    config = sweep.histories()[best_id][0]["config"]
    assert data["search"] == {k: v for k, v in config.items() if k in RULES}
    assert (data["num_samples"], data["scheduler"]) == (1, "none")
    # `hpo sweep` on it trains exactly that configuration again: the same numbers, epoch by epoch.
    result = hpo_in_process(
        ["sweep", str(path), "--storage", str(sweep.root / "again"), "--tracking-uri", sweep.uri],
        cwd=sweep.root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (again,) = list((sweep.root / "again" / f"{NAME}_best").glob("train_trial_*/result.json"))
    retrained = [json.loads(line)["val_accuracy"] for line in again.read_text().splitlines()]
    original = [r["val_accuracy"] for r in sweep.histories()[best_id]]
    assert retrained[: len(original)] == original
    assert max(retrained) >= best_value


@pytest.mark.integration
@SHARED
def test_leaderboard_and_accounting_match_the_trials(sweep: Sweep) -> None:
    assert sweep.main("report", NAME, "--out", str(sweep.root / "elsewhere")) == 0
    folder = sweep.root / "elsewhere"
    histories = sweep.histories()
    # The report names the experiment's folder, not the parent of --out.
    assert f"Experiment folder `{sweep.experiment}`" in (folder / "report.md").read_text()
    with (folder / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["trial_id"] for r in rows} == set(histories)
    for r in rows:
        assert int(r["epochs_run"]) == len({h["epoch"] for h in histories[r["trial_id"]]})
    # Leaderboard: best first by val_accuracy (mode max); first = the best trial.
    markdown = (folder / "report.md").read_text()
    board = markdown.split("## Leaderboard")[1].split("## ")[0]
    values = [
        float(v)
        for v in re.findall(r"^\| \d+ \| \w+ \| [\w ]+ \| \d+/\d+ \| ([0-9.]+) \|", board, re.M)
    ]
    assert len(values) == len(histories)
    assert values == sorted(values, reverse=True)
    assert re.search(rf"^\| 1 \| {best_trial(histories)[0]} \|", board, re.M)
    # Compute accounting: trial-epochs run = epochs in Ray's results = epochs MLflow recorded.
    run = int(re.search(r"\| trial-epochs run \| (\d+) \|", markdown).group(1))  # type: ignore[union-attr]
    full = int(
        re.search(r"\| trial-epochs if every trial ran to max_t \| (\d+) \|", markdown).group(1)
    )  # type: ignore[union-attr]
    assert run == sum(len(h) for h in histories.values())
    _, children = runs_of(sweep.uri, NAME)
    client = MlflowClient(sweep.uri)
    assert run == sum(
        len(client.get_metric_history(c.info.run_id, "val_accuracy")) for c in children
    )
    assert full == 8 * 3 and run < full


# 3 configurations, 3 epochs, no early stopping: what confirm needs, small.
CONFIRM_SPACE = (
    SPACE.replace("{grid: [false, true]}", "false")
    .replace("{grid: [1, 2]}", "1")
    .replace("dropout: {grid: [0.0, 0.5]}", "dropout: {grid: [0.0, 0.3, 0.6]}")
    .replace("scheduler: {asha: {grace_period: 1, reduction_factor: 2}}", "scheduler: none")
)


@pytest.mark.integration
def test_confirm_retrains_top_two_with_two_seeds_and_tests_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its own sweep: confirm adds MLflow runs and rewrites the report, which the tests that
    # share the module's sweep must not see.
    sweep = new_sweep(tmp_path, CONFIRM_SPACE)
    assert sweep.main("confirm", NAME, "--top", "4") == 2
    assert "--top: 4 configurations asked for, but only 3 trial(s)" in capsys.readouterr().err
    assert not (sweep.experiment / "confirm").exists()
    result = sweep.run("confirm", NAME, "--top", "2", "--seeds", "2")
    assert "Report:" in result.stdout
    # It ends with the answer, not with one seed's best trial.
    assert "Best trial" not in result.stdout
    ending = result.stdout[result.stdout.index("Confirmed recommendation: configuration #") :]
    assert "test accuracy: mean " in ending and "95% CI" in ending
    assert "distinguishable from #" in ending and "(Welch's t-test p = " in ending
    assert ending.rstrip().splitlines()[-1].startswith("  config: ")
    client = MlflowClient(sweep.uri)
    parent, children = runs_of(sweep.uri, NAME, name=f"{NAME}-confirm")
    assert len(children) == 4
    assert all(c.info.status == "FINISHED" for c in children)
    assert {(c.data.params["candidate"], c.data.params["seed"]) for c in children} == {
        ("1", "1"), ("1", "2"), ("2", "1"), ("2", "2"),
    }  # fmt: skip
    for c in children:
        assert 0 <= c.data.metrics["test_accuracy"] <= 1 and c.data.metrics["test_loss"] > 0
        # Full epochs: 3 each, no early stopping.
        assert len(client.get_metric_history(c.info.run_id, "val_accuracy")) == 3
    # The recommendation follows the confirmed mean of the last epoch's val_accuracy.
    means: dict[str, list[float]] = {}
    for c in children:
        means.setdefault(c.data.params["candidate"], []).append(c.data.metrics["val_accuracy"])
    winner = max(means, key=lambda k: sum(means[k]) / len(means[k]))
    # The parent runs hold the results, so that MLflow's list of runs shows them.
    tests = [
        c.data.metrics["test_accuracy"] for c in children if c.data.params["candidate"] == winner
    ]
    assert parent.data.metrics["mean_test_accuracy"] == pytest.approx(sum(tests) / 2)
    assert parent.data.metrics["mean_val_accuracy"] == pytest.approx(sum(means[winner]) / 2)
    assert parent.data.metrics["recommended_rank"] == int(winner)
    assert 0 <= parent.data.metrics["p_value"] <= 1
    assert parent.data.metrics["test_accuracy_ci_low"] <= sum(tests) / 2
    sweep_parent, sweep_children = runs_of(sweep.uri, NAME)
    best = max(c.data.metrics["val_accuracy"] for c in sweep_children)  # the last epoch's
    assert sweep_parent.data.metrics["best_val_accuracy"] >= best
    assert sweep_parent.data.metrics["trials_completed"] >= 1
    config = next(c for c in children if c.data.params["candidate"] == winner).data.params
    chosen = yaml.safe_load((sweep.experiment / "report" / "best_config.yaml").read_text())
    # MLflow keeps params as str(value): compare the YAML's values the same way.
    assert {k: str(v) for k, v in chosen["search"].items()} == {
        k: v for k, v in config.items() if k in RULES
    }
    markdown = (sweep.experiment / "report" / "report.md").read_text()
    assert "## Confirmation" in markdown and "95% CI" in markdown
    assert f"use configuration **#{winner}**" in markdown
    assert (sweep.experiment / "report" / "plots" / "confirmation.png").is_file()
    # Asked again with the same numbers: nothing retrains, the report is written again. Neither
    # this nor the refusal starts Ray: both run in this process.
    capsys.readouterr()
    assert sweep.main("confirm", NAME, "--top", "2", "--seeds", "2") == 0
    assert "confirmed already" in capsys.readouterr().out
    assert sweep.main("confirm", NAME, "--top", "3", "--seeds", "2") == 2
    assert "--overwrite" in capsys.readouterr().err


HELD = """
name: held
search:
  dropout: {grid: [0.0, 0.5]}
  epochs: 3
search_algorithm: grid
scheduler: none
"""


@pytest.mark.integration
def test_report_on_a_running_then_interrupted_sweep(tmp_path: Path) -> None:
    """Its trials report epoch 1 and then wait for a file the test never writes: the report
    sees a running sweep for sure, and then an interrupted one."""
    (tmp_path / "held.yaml").write_text(HELD)
    storage, uri = tmp_path / "runs", f"sqlite:///{tmp_path / 'mlflow.db'}"
    driver = (
        "import sys; from tests.tune.conftest import run_held_sweep; "
        f"sys.exit(run_held_sweep({str(tmp_path / 'held.yaml')!r}, {str(storage / 'held')!r}, "
        f"{uri!r}, {str(tmp_path / 'release')!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver], cwd=REPO, env=hpo_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while sum(1 for p in storage.glob("held/*/result.json") if p.stat().st_size) < 2:
            assert proc.poll() is None, "the sweep ended before its trials reported"
            time.sleep(0.2)
        assert main(["report", "held", "--storage", str(storage)]) == 0
        snapshot = (storage / "held" / "report" / "report.md").read_text()
        assert "Snapshot of an unfinished sweep**: 2 trial(s) pending or running" in snapshot
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 130
    assert main(["report", "held", "--storage", str(storage)]) == 0
    text = (storage / "held" / "report" / "report.md").read_text()
    assert "Snapshot of an unfinished sweep" in text and "## Learning curves" in text


DIVERGING = """
name: diverging
dataset: {name: fashion_mnist, train_steps: 5, eval_steps: 2}
search:
  lr: {grid: [0.01, 10000.0]}
  optimizer: sgd
  filters: 8
  units: 32
  epochs: 3
search_algorithm: grid
scheduler: none
max_concurrent_trials: 1
"""


@pytest.mark.integration
def test_a_diverged_trial_is_reported_as_diverged(tmp_path: Path) -> None:
    """The real trainer with a learning rate of 10000: its loss becomes NaN. The report shows
    the trial as diverged, draws its finite epochs, and does not crash."""
    sweep = new_sweep(tmp_path, DIVERGING, "diverging")
    histories = sweep.histories()
    diverged = [t for t, h in histories.items() if any(math.isnan(r["val_loss"]) for r in h)]
    assert len(diverged) == 1, histories
    assert sweep.main("report", "diverging") == 0
    folder = sweep.experiment / "report"
    markdown = (folder / "report.md").read_text()
    assert f"Trial `{diverged[0]}` diverged" in markdown
    assert re.search(rf"^\| {diverged[0]} \| 3/3 \| diverged \|", markdown, re.M)
    with (folder / "trials.csv").open() as f:
        rows = {r["trial_id"]: r for r in csv.DictReader(f)}
    assert rows[diverged[0]]["diagnosis"] == "diverged" and rows[diverged[0]]["epochs_run"] == "3"
    assert (folder / "plots" / "learning_curves.png").is_file()


def test_best_config_is_a_valid_space_of_constants(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    record = records.new_record(spec, "sqlite:////abs/mlflow.db")
    config = {
        **{k: v for k, v in spec.search.items() if k in RULES},
        "dropout": 0.2,
        "conv_layers": 3,
    }
    config["normalization"] = True
    text = best_config(record, {**config, "trial_id_of_ray": 7}, "Best configuration of x")
    assert text.startswith("# Best configuration of x\n# Retrain it: hpo sweep THIS_FILE\n")
    path = tmp_path / "best.yaml"
    path.write_text(text)
    best = load_spec(path)
    assert best.search == config  # every hyperparameter a constant; nothing else
    assert (best.name, best.num_samples, best.scheduler) == ("fashion_seed_best", 1, None)
    assert (best.dataset, best.seed, best.resources) == (spec.dataset, spec.seed, spec.resources)


@pytest.mark.integration
@SHARED
def test_out_never_touches_or_uploads_a_users_files(
    sweep: Sweep, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = sweep.root / "theirs"
    (theirs / "plots").mkdir(parents=True)
    (theirs / "plots" / "my_figure.png").write_bytes(b"mine")
    (theirs / "secret.txt").write_text("token")
    assert sweep.main("report", NAME, "--out", str(theirs)) == 2
    assert "holds files hpo did not write" in capsys.readouterr().err
    assert (theirs / "plots" / "my_figure.png").read_bytes() == b"mine"
    assert sorted(p.name for p in theirs.rglob("*")) == ["my_figure.png", "plots", "secret.txt"]
    # A folder hpo wrote a report into is hpo's to rewrite; a file the user added there stays
    # and is not uploaded.
    ours = sweep.root / "ours"
    assert sweep.main("report", NAME, "--out", str(ours)) == 0
    (ours / "plots" / "my_figure.png").write_bytes(b"mine")
    assert sweep.main("report", NAME, "--out", str(ours)) == 0
    assert (ours / "plots" / "my_figure.png").read_bytes() == b"mine"
    parent, _ = runs_of(sweep.uri, NAME)
    client = MlflowClient(sweep.uri)
    logged = {Path(f.path).name for f in client.list_artifacts(parent.info.run_id, "report/plots")}
    assert "my_figure.png" not in logged and "learning_curves.png" in logged


@pytest.mark.integration
@SHARED
def test_a_report_that_cannot_be_written_names_the_file_and_keeps_the_old_one(
    sweep: Sweep,
) -> None:
    """Writing past a file-size limit fails like a full disk (EFBIG instead of ENOSPC): the
    error names the file, and every report file is the old one or the new one, never half."""
    assert sweep.main("report", NAME) == 0
    before = (sweep.experiment / "report" / "report.md").read_text()
    limited = (
        "import resource, signal, sys; from tune.cli import main; "
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
        f"sys.exit(main(['report', {NAME!r}, '--storage', {str(sweep.storage)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", limited], cwd=REPO, env=hpo_env(), capture_output=True, text=True
    )
    assert result.returncode == 1, result.stderr
    assert re.search(
        r"failed: OSError: \[Errno 27\] cannot write \S+/report/\S+: File too large", result.stderr
    )
    assert (sweep.experiment / "report" / "report.md").read_text() == before
    assert not list((sweep.experiment / "report").rglob(".*partial"))
