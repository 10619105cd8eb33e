"""`hpo report` and `hpo confirm` on a small real sweep: real Ray, real MLflow (SQLite), the
real Fashion-MNIST files and the real trainer, through the `hpo` entry point."""

from __future__ import annotations

import csv
import json
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

from tests.tune.test_integration import hpo, runs_of
from tune.cli import main
from tune.hyperparams import RULES

pytestmark = pytest.mark.integration

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
    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "runs"
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.experiment = self.storage / NAME

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`hpo ARGS` in its own process (what starts Ray)."""
        result = hpo([*args, "--storage", str(self.storage)], cwd=self.root, timeout=timeout)
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


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    root = tmp_path_factory.mktemp("report")
    (root / "space.yaml").write_text(SPACE)
    s = Sweep(root)
    result = hpo(
        ["sweep", str(root / "space.yaml"), "--storage", str(s.storage), "--tracking-uri", s.uri],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return s


def best_trial(histories: dict[str, list[dict[str, Any]]]) -> tuple[str, float]:
    best = max(histories, key=lambda t: max(r["val_accuracy"] for r in histories[t]))
    return best, max(r["val_accuracy"] for r in histories[best])


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
    result = hpo(
        ["sweep", str(path), "--storage", str(sweep.root / "again"), "--tracking-uri", sweep.uri],
        cwd=sweep.root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (again,) = list((sweep.root / "again" / f"{NAME}_best").glob("train_trial_*/result.json"))
    retrained = [json.loads(line)["val_accuracy"] for line in again.read_text().splitlines()]
    original = [r["val_accuracy"] for r in sweep.histories()[best_id]]
    assert retrained[: len(original)] == original
    assert max(retrained) >= best_value


def test_leaderboard_and_accounting_match_the_trials(sweep: Sweep) -> None:
    assert sweep.main("report", NAME, "--out", str(sweep.root / "elsewhere")) == 0
    folder = sweep.root / "elsewhere"
    histories = sweep.histories()
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


def test_confirm_retrains_top_two_with_two_seeds_and_tests_once(
    sweep: Sweep, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sweep.main("confirm", NAME, "--top", "9") == 2
    assert "--top: 9 configurations asked for, but only 8 trial(s)" in capsys.readouterr().err
    assert not (sweep.experiment / "confirm").exists()
    result = sweep.run("confirm", NAME, "--top", "2", "--seeds", "2")
    assert "Report:" in result.stdout
    client = MlflowClient(sweep.uri)
    exp = client.get_experiment_by_name(NAME)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    (confirm_parent,) = [r for r in runs if r.info.run_name == f"{NAME}-confirm"]
    children = [
        r for r in runs if r.data.tags.get("mlflow.parentRunId") == confirm_parent.info.run_id
    ]
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
    # Asked again with the same numbers: nothing retrains, the report is written again.
    again = sweep.run("confirm", NAME, "--top", "2", "--seeds", "2")
    assert "confirmed already" in again.stdout
    other = hpo(
        ["confirm", NAME, "--top", "3", "--seeds", "2", "--storage", str(sweep.storage)],
        cwd=sweep.root,
    )
    assert other.returncode == 2 and "--overwrite" in other.stderr


SLOW = """
name: slow
dataset: {name: fashion_mnist, train_steps: 150, eval_steps: 2}
search:
  dropout: {grid: [0.0, 0.5]}
  filters: 8
  units: 32
  epochs: 10
search_algorithm: grid
scheduler: none
num_samples: 1
"""


def test_report_on_a_running_then_interrupted_sweep(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    storage, uri = tmp_path / "runs", f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tune.cli", "sweep", str(tmp_path / "slow.yaml"),
         "--storage", str(storage), "--tracking-uri", uri],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size for p in storage.glob("slow/train_trial_*/result.json")):
            assert time.monotonic() < deadline and proc.poll() is None, "no epoch reported"
            time.sleep(0.5)
        assert main(["report", "slow", "--storage", str(storage)]) == 0
        snapshot = (storage / "slow" / "report" / "report.md").read_text()
        assert "Snapshot of an unfinished sweep" in snapshot
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 130
    assert main(["report", "slow", "--storage", str(storage)]) == 0
    text = (storage / "slow" / "report" / "report.md").read_text()
    assert "Snapshot of an unfinished sweep" in text and "## Learning curves" in text
