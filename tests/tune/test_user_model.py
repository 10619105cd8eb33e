"""Your own model and data through the whole path, with real components: the two examples of
examples/ (scikit-learn's digits with an MLP; a folder of PNGs with a small CNN), each swept
with few steps from another working folder, then status, report, confirm on the loader's test
part, and a resume that refuses a module changed since the sweep."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO
from tests.tune.conftest import hpo, hpo_started, runs_of, wait_for

pytestmark = pytest.mark.integration

EXAMPLES = REPO / "examples"


def copied(tmp_path: Path, *names: str) -> Path:
    """The examples copied to a folder of their own (a test may change them there)."""
    folder = tmp_path / "examples"
    folder.mkdir()
    for name in names:
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


def test_the_digits_example_sweep_report_confirm_and_a_changed_module(tmp_path: Path) -> None:
    folder = copied(tmp_path, "digits.yaml", "digits_mlp.py")
    elsewhere = tmp_path / "elsewhere"  # run from another folder: the module is found the same
    elsewhere.mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = ["--storage", str(tmp_path / "runs")]
    swept = hpo(
        [
            "sweep",
            str(folder / "digits.yaml"),
            "--smoke",
            "--tracking-uri",
            uri,
            *where,
            "--max-concurrent",
            "1",
        ],  # one trial process: parallel trials are not tested here
        elsewhere,
    )
    assert swept.returncode == 0, swept.stdout + swept.stderr
    name = "digits_smoke"
    parent, children = runs_of(uri, name)
    assert parent.data.tags["hpo.model"] == "digits_mlp:build"
    assert parent.data.tags["hpo.data"] == "factory:digits_mlp:load"
    assert len(children) == 2
    for child in children:
        assert {"hidden", "depth", "dropout", "activation", "lr"} <= set(child.data.params)
        assert child.data.tags["model_summary"].startswith("Sequential; ")
        assert child.data.tags["hpo.model"] == "digits_mlp:build"
        assert child.data.tags["hpo.data"] == "factory:digits_mlp:load"

    reported = hpo(["report", name, *where], elsewhere)
    assert reported.returncode == 0, reported.stdout + reported.stderr
    report = tmp_path / "runs" / name / "report"
    with (report / "trials.csv").open() as f:
        assert "hidden" in next(csv.reader(f))
    best = yaml.safe_load((report / "best_config.yaml").read_text())
    assert best["model"] == {"factory": "digits_mlp:build"}
    assert best["dataset"]["factory"] == "digits_mlp:load"

    confirmed = hpo(["confirm", name, "--top", "1", "--seeds", "1", *where], elsewhere)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert "test accuracy: mean" in confirmed.stdout
    assert f"model registered: {name} version 1" in confirmed.stdout
    # The user's model as a file that loads without the user's module or hpo.
    exported = hpo(["export", name, *where, "--out", str(tmp_path / "model")], elsewhere)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "Model factory: `digits_mlp:build`" in (tmp_path / "model" / "model_card.md").read_text()
    loads = subprocess.run(
        [sys.executable, "-c", "import torch; m = torch.export.load('model.pt2').module(); "
         "print(tuple(m(torch.rand(3, 64)).shape))"],
        cwd=tmp_path / "model", capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert loads.stdout.strip() == "(3, 10)", loads.stderr

    # The module changes; an interrupted-looking run is continued only by the user's word.
    module = folder / "digits_mlp.py"
    module.write_text(module.read_text() + "\n# changed\n")
    refused = hpo(["confirm", name, "--top", "1", "--seeds", "2", "--overwrite", *where], elsewhere)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"{folder / 'digits.yaml'}: model.factory: {module} changed since the")
    assert line.endswith("hpo confirm --allow-changed-code to go on with it as it is)")
    allowed = hpo(
        [
            "confirm",
            name,
            "--top",
            "1",
            "--seeds",
            "2",
            "--overwrite",
            "--allow-changed-code",
            *where,
        ],
        elsewhere,
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


KILLED_SPACE = """\
name: killed
model: {factory: 'digits_mlp:build'}
dataset: {factory: 'digits_mlp:load', validation_fraction: 0.2}
search:
  hidden: {grid: [16, 32, 48, 64]}
  batch_size: 8
  epochs: 8
search_algorithm: grid
scheduler: none
max_concurrent_trials: 1
"""


def epochs_done(folder: Path) -> list[int]:
    """Per trial folder, the epochs its result.json holds (a line being written skipped)."""
    out = []
    for path in folder.glob("train_trial_*/result.json"):
        lines = [line for line in path.read_text().splitlines() if line.endswith("}")]
        out.append(len({json.loads(line)["epoch"] for line in lines}))
    return out


def test_the_digits_model_resumes_after_sigkill(tmp_path: Path) -> None:
    """SIGKILL once a trial has an epoch, with epochs left; `hpo resume` trains the rest with
    the user's module found again from the record."""
    folder = copied(tmp_path, "digits_mlp.py")
    space = folder / "killed.yaml"
    space.write_text(KILLED_SPACE)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = ["--storage", str(tmp_path / "runs")]
    proc = hpo_started(["sweep", str(space), "--tracking-uri", uri, *where], tmp_path)
    experiment = tmp_path / "runs" / "killed"
    wait_for(
        "a trial's first epoch",
        lambda: proc.poll() is not None or sum(epochs_done(experiment)) > 0,
    )
    assert sum(epochs_done(experiment)) < 4 * 8, "finished before the kill; nothing to test"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    resumed = hpo(["resume", "killed", *where], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sorted(epochs_done(experiment)) == [8, 8, 8, 8]
    _, children = runs_of(uri, "killed")
    assert len(children) == 4


def test_the_image_folder_example(tmp_path: Path) -> None:
    folder = copied(tmp_path, "fashion_folder.yaml", "small_cnn.py", "write_image_folder.py")
    written = subprocess.run(
        [sys.executable, str(folder / "write_image_folder.py"), "--train", "20", "--test", "5"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert written.returncode == 0, written.stdout + written.stderr
    assert len(list((folder / "fashion_png" / "train").rglob("*.png"))) == 200
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    swept = hpo(
        ["sweep", str(folder / "fashion_folder.yaml"), "--smoke", "--tracking-uri", uri,
         "--storage", str(tmp_path / "runs"), "--max-concurrent", "1"],
        tmp_path,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stdout + swept.stderr
    parent, children = runs_of(uri, "fashion_folder_smoke")
    assert parent.data.tags["hpo.data"] == f"folder:{folder / 'fashion_png'}"
    assert len(children) == 2
    client = MlflowClient(uri)
    for child in children:
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
