"""The winning model handed over: registered in MLflow by `hpo confirm` and exported as files by
`hpo export`, each loaded in a fresh process that imports no hpo code and scores the test
accuracy hpo reported for it. Real Ray, MLflow (SQLite, then a plain file store), the real
Fashion-MNIST files and the real trainer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from models.dataset_files import find_data_dir
from tests.tune.conftest import hpo, hpo_in_process

pytestmark = pytest.mark.integration

NAME = "winner"
# 3 configurations, 2 short epochs each, no early stopping: what confirm needs, small.
SPACE = f"""
name: {NAME}
dataset: {{name: fashion_mnist, validation_fraction: 0.1, train_steps: 5, eval_steps: 2}}
search:
  dropout: {{grid: [0.0, 0.3, 0.6]}}
  normalization: true
  conv_layers: 1
  filters: 8
  units: 32
  lr: 0.005
  epochs: 2
search_algorithm: grid
scheduler: none
max_concurrent_trials: 1  # one trial process
seed: 0
"""

# Loads the model as a user would, with no hpo code (not even importable: run from another
# folder, PYTHONPATH cleared), and scores it on the raw test images scaled by 1/255.
SCORE = """\
import gzip, json, sys
import numpy as np, torch
data, uri, models = sys.argv[1], sys.argv[2], sys.argv[3:]
with gzip.open(f"{data}/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
with gzip.open(f"{data}/t10k-labels-idx1-ubyte.gz") as f:
    y = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))
images = torch.from_numpy(x.copy()).float() / 255
scores = []
for where in models:
    if where.startswith("models:/"):
        import mlflow
        mlflow.set_tracking_uri(uri)
        model = mlflow.pytorch.load_model(where)
    else:
        model = torch.export.load(where).module()
    with torch.no_grad():
        right = sum(int((model(images[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum())
                    for i in range(0, len(y), 1000))
    scores.append(right / len(y))
assert not any(m == "tune" or m.startswith(("tune.", "models")) for m in sys.modules)
print(json.dumps(scores))
"""


def scores(tmp_path: Path, uri: str, *models: str) -> list[float]:
    """Each model's test accuracy, in one fresh process: a registry URI (models:/...) or an
    exported file."""
    script = tmp_path / "score.py"
    script.write_text(SCORE)
    data = str(find_data_dir("fashion_mnist"))
    done = subprocess.run(
        [sys.executable, str(script), data, uri, *models],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [float(v) for v in json.loads(done.stdout.splitlines()[-1])]


def swept(tmp_path: Path, uri: str, **env: str) -> list[str]:
    (tmp_path / "space.yaml").write_text(SPACE)
    where = ["--storage", str(tmp_path / "runs")]
    done = hpo_in_process(["sweep", "space.yaml", "--tracking-uri", uri, *where], tmp_path, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def card_of(folder: Path) -> str:
    return (folder / "model_card.md").read_text()


def test_confirm_registers_the_model_and_export_writes_it_both_score_the_reported_accuracy(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = swept(tmp_path, uri)

    # Before confirm: the sweep's best trial, said to be unconfirmed.
    early = hpo(["export", NAME, *where, "--out", "early"], tmp_path)
    assert early.returncode == 0, early.stdout + early.stderr
    assert "Expect archive file" not in early.stderr  # torch's warning of a temporary's name
    assert card_of(tmp_path / "early").splitlines()[2].startswith("**NOT CONFIRMED")
    assert "not measured" in card_of(tmp_path / "early")
    assert json.loads((tmp_path / "early" / "labels.json").read_text())[0] == "T-shirt/top"

    confirmed = hpo_in_process(["confirm", NAME, *where, "--top", "2", "--seeds", "2"], tmp_path)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert f"model registered: {NAME} version 1, alias 'best'" in confirmed.stdout
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias(NAME, "best")
    assert str(version.version) == "1"
    tags = version.tags
    assert {"hpo.config", "hpo.test_accuracy_mean", "hpo.test_accuracy_ci95"} <= set(tags)
    assert tags["hpo.sweep_run_id"] and tags["hpo.confirm_run_id"] and tags["hpo.run_id"]
    # Chosen by validation among the recommended configuration's seeds, never by test.
    confirm_runs = {
        r.info.run_id: r
        for r in client.search_runs([client.get_experiment_by_name(NAME).experiment_id])
        if r.data.tags.get("mlflow.parentRunId") == tags["hpo.confirm_run_id"]
    }
    chosen = confirm_runs[tags["hpo.run_id"]]
    siblings = [
        r
        for r in confirm_runs.values()
        if r.data.params["candidate"] == chosen.data.params["candidate"]
    ]
    assert len(siblings) == 2
    best_val = max(r.data.metrics["val_accuracy"] for r in siblings)
    assert chosen.data.metrics["val_accuracy"] == best_val
    reported = chosen.data.metrics["test_accuracy"]
    assert float(tags["hpo.test_accuracy"]) == pytest.approx(reported, abs=1e-6)

    done = hpo_in_process(["export", NAME, *where, "--out", "model"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    card = card_of(tmp_path / "model")
    assert card.splitlines()[2].startswith("**Confirmed")
    assert f"models:/{NAME}@best" in card and "95% CI" in card
    # The registered model and the exported file score exactly what hpo reported; the
    # unconfirmed early export is a trained model too.
    registered, exported, early_model = scores(
        tmp_path,
        uri,
        f"models:/{NAME}@best",
        str(tmp_path / "model" / "model.pt2"),
        str(tmp_path / "early" / "model.pt2"),
    )
    assert registered == pytest.approx(reported, abs=1e-6)
    assert exported == pytest.approx(reported, abs=1e-6)
    assert early_model > 0.1
    report = (tmp_path / "runs" / NAME / "report" / "report.md").read_text()
    assert f"version 1 of `{NAME}`" in report and f"hpo export {NAME}" in report

    # Confirm again: a new version, and the alias moves to it.
    again = hpo_in_process(["confirm", NAME, *where, "--top", "2", "--seeds", "2"], tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert str(client.get_model_version_by_alias(NAME, "best").version) == "2"

    # A folder of the user's own files is refused, and left as it was.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    refused = hpo_in_process(["export", NAME, *where, "--out", "mine"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "--out mine: holds files hpo did not write: notes.txt (a new or empty folder, or one "
        "hpo exported into before)"
    ]
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_file_store_has_no_registry_but_gets_the_logged_model(tmp_path: Path) -> None:
    """MLflow refuses a file store unless asked (MLflow 3.7+): a user who asks gets this."""
    uri = f"file://{tmp_path / 'mlruns'}"
    where = swept(tmp_path, uri, MLFLOW_ALLOW_FILE_STORE="true")
    done = hpo_in_process(
        ["confirm", NAME, *where, "--top", "1", "--seeds", "1"],
        tmp_path,
        MLFLOW_ALLOW_FILE_STORE="true",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if "registry" in line]
    assert len(said) == 1 and "has no model registry" in said[0]
    assert list((tmp_path / "mlruns").rglob("model.pt2"))
