"""Experiments in an S3-compatible bucket: moto's server on loopback (as Ray's own tests do),
Ray writing to it through pyarrow, hpo's readers working on a local mirror."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.tune.conftest import AWS, Bucket, Runner, hpo
from tune.store import storage

pytestmark = pytest.mark.xdist_group("bucket")  # one S3 server (the module's fixture) for all


def test_uris_keep_their_options_last() -> None:
    uri = "s3://b/prefix?endpoint_override=http://h:9000&scheme=http"
    assert storage.join(uri, "exp", "confirm") == (
        "s3://b/prefix/exp/confirm?endpoint_override=http://h:9000&scheme=http"
    )
    assert storage.is_remote(uri) and not storage.is_remote("/shared/runs")
    assert storage.check("gs://b/x") is not None and storage.check("/any/folder") is None


def test_a_mirror_knows_its_bucket_and_pulls_all_but_checkpoints(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MIRRORS", tmp_path / "mirrors")
    root = storage.root(bucket.uri)
    folder = root / "exp"
    assert storage.remote_of(folder) == storage.join(bucket.uri, "exp")
    assert storage.remote_of(tmp_path / "plain") is None
    fs, base = storage.filesystem(storage.join(bucket.uri, "exp"))
    for name, data in (("a/result.json", b"{}\n"), ("a/checkpoint_000001/trainer.pt", b"w")):
        fs.create_dir(f"{base}/{name.rsplit('/', 1)[0]}", recursive=True)
        with fs.open_output_stream(f"{base}/{name}") as f:
            f.write(data)
    storage.pull(folder)
    assert (folder / "a" / "result.json").read_bytes() == b"{}\n"
    assert not (folder / "a" / "checkpoint_000001").exists()
    (folder / "hpo_sweep.json").write_text("{}")
    storage.push(folder, "hpo_sweep.json")
    assert "exp/hpo_sweep.json" in bucket.keys("exp")


SPACE = """\
name: bucketed
dataset: {train_steps: 10, eval_steps: 2}
search:
  dropout: {grid: [0.0, 0.5]}
  filters: 8
  units: 32
  epochs: 2
search_algorithm: grid
scheduler: none
max_concurrent_trials: 1  # one trial process
"""


@pytest.mark.integration
def test_a_sweep_in_a_bucket_is_read_back_from_anywhere(
    bucket: Bucket, tmp_path: Path, hpo_here: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sweep into the bucket; then status, report, resume and confirm from another machine's
    view (an empty mirror: another HOME) find everything there."""
    (tmp_path / "space.yaml").write_text(SPACE)
    env = {
        **AWS,
        "HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
    }
    swept = hpo(["sweep", "space.yaml", "--storage", bucket.uri], cwd=tmp_path, **env)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert f"Results: {storage.join(bucket.uri, 'bucketed')}" in swept.stdout
    keys = bucket.keys("bucketed")
    assert "bucketed/hpo_sweep.json" in keys and "bucketed/search_space.yaml" in keys
    assert any(k.startswith("bucketed/experiment_state-") for k in keys)
    assert sum(k.endswith("/trainer.pt") for k in keys) >= 2  # a checkpoint per trial at least
    assert any(k.startswith("bucketed/tensorboard/") for k in keys)

    elsewhere = {**env, "HOME": str(tmp_path / "other-home")}
    # Commands that never start Ray run in this process, whose mirrors are the other HOME's.
    other_mirrors = tmp_path / "other-home" / ".cache" / "hpo" / "storage"
    monkeypatch.setattr(storage, "MIRRORS", other_mirrors)
    status = hpo_here(["status", "bucketed", "--storage", bucket.uri], tmp_path, **elsewhere)
    assert status.returncode == 0 and status.stdout.count("TERMINATED") == 2, status.stdout
    report = hpo_here(["report", "bucketed", "--storage", bucket.uri], tmp_path, **elsewhere)
    assert report.returncode == 0, report.stderr
    mirrors = list(other_mirrors.glob("*/bucketed"))
    assert len(mirrors) == 1 and (mirrors[0] / "report" / "report.md").is_file()
    resumed = hpo_here(["resume", "bucketed", "--storage", bucket.uri], tmp_path, **elsewhere)
    assert resumed.returncode == 0 and "already finished" in resumed.stdout, resumed.stderr
    record = json.loads((mirrors[0] / "hpo_sweep.json").read_text())
    assert record["spec"]["name"] == "bucketed"
    confirmed = hpo(  # its own process: another HOME for Ray too
        ["confirm", "bucketed", "--top", "1", "--seeds", "1", "--storage", bucket.uri],
        cwd=tmp_path,
        **elsewhere,
    )
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert any(
        k.startswith("bucketed/confirm/") and k.endswith("result.json")
        for k in bucket.keys("bucketed/confirm")
    )
    listed = hpo_here(["list", "--storage", bucket.uri], tmp_path, **elsewhere)
    assert listed.returncode == 0, listed.stderr
    # The bucket is shared with other tests' experiments: this one's line.
    (line,) = [x for x in listed.stdout.splitlines() if x.startswith("bucketed: ")]
    assert line.startswith("bucketed: 2/2 trials") and line.endswith("(+ confirm run)"), line


# -- storage that cannot take the experiment: one line, exit 2, nothing written -----------------

SMOKE = str(Path(__file__).resolve().parents[3] / "search_spaces" / "smoke.yaml")


def refused_sweep(hpo_here: Runner, cwd: Path, where: str) -> str:
    """`hpo sweep` onto storage `where`: exit 2 with one line, and nothing in `cwd` (no MLflow
    store, no runs folder) or in the bucket mirrors; returns the line."""
    result = hpo_here(["sweep", SMOKE, "--storage", where], cwd)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"hpo sweep: --storage {where}: ")
    assert list(cwd.iterdir()) == []
    return line


def test_a_folder_that_takes_no_files_is_refused_before_anything_starts(
    tmp_path: Path, hpo_here: Runner
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    assert "/proc does not take new folders" in refused_sweep(hpo_here, cwd, "/proc/hpo-runs")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert f"{a_file} is not a folder" in refused_sweep(hpo_here, cwd, str(a_file / "runs"))
    if os.geteuid() != 0:
        return  # mounting the read-only folder below needs root (CI runs as root)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)], check=True
    )
    try:
        line = refused_sweep(hpo_here, cwd, str(read_only / "runs"))
        assert "does not take new folders (Read-only file system)" in line
    finally:
        subprocess.run(["umount", str(read_only)], check=True)


def test_a_missing_bucket_or_a_dead_endpoint_is_refused_with_nothing_left(
    bucket: Bucket, tmp_path: Path, hpo_here: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MIRRORS", tmp_path / "mirrors")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    missing = bucket.uri.replace("s3://hpo/", "s3://no-such-bucket/")
    assert "bucket 'no-such-bucket' does not exist" in refused_sweep(hpo_here, cwd, missing)
    dead = "s3://hpo/runs?endpoint_override=http://127.0.0.1:9&scheme=http"
    assert "cannot be reached" in refused_sweep(hpo_here, cwd, dead)
    assert not (tmp_path / "mirrors").exists()
