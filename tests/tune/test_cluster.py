"""Sweeps on a real two-node Ray cluster whose nodes cannot see this checkout (the worker not
the data either): `hpo submit` as a Ray Job, code through the job's runtime_env, data through
Ray's object store, results in an S3-compatible bucket (moto's server) or a folder both nodes
share, every trial in a real `mlflow server` (tests/tune/loopback.py). Skipped, with the
reason, where the machine lacks mount namespaces."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.tune.conftest import AWS, Bucket, MlflowServer, wait_for
from tests.tune.loopback import REPO, LoopbackCluster, why_not
from tune.store import storage

pytestmark = [
    pytest.mark.integration,
    pytest.mark.xdist_group("loopback_cluster"),  # one cluster (the module's fixture) for all
    pytest.mark.skipif(why_not() is not None, reason=f"loopback cluster: {why_not()}"),
]

SPACE = """\
name: {name}
dataset: {{train_steps: {steps}, eval_steps: 2}}
search:
  dropout: {{grid: [0.0, 0.2, 0.4, 0.6]}}
  filters: 8
  units: 32
  epochs: {epochs}
search_algorithm: grid
scheduler: none
{extra}"""


class Cluster:
    """The loopback cluster with its MLflow server, a folder both nodes share (as NFS would),
    and a folder of the test's own that no node can see."""

    def __init__(
        self, nodes: LoopbackCluster, server: MlflowServer, private: Path, bucket: Bucket
    ) -> None:
        self.nodes, self.server, self.private, self.bucket = nodes, server, private, bucket
        self.shared = nodes.base / "shared"
        self.shared.mkdir()

    def space(self, name: str, epochs: int = 2, steps: int = 20, extra: str = "") -> Path:
        path = self.private / f"{name}.yaml"
        path.write_text(SPACE.format(name=name, epochs=epochs, steps=steps, extra=extra))
        return path

    def hpo(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`hpo ARGS` from the test's checkout, as a user on a laptop runs it."""
        return subprocess.run(
            [sys.executable, "-m", "tune.cli", *args],
            cwd=self.private,
            env={**self.nodes.env(), **env},
            capture_output=True,
            text=True,
            timeout=600,
        )

    def submit(
        self, space: Path, *flags: str, storage: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return self.hpo(
            "submit", str(space), "--address", self.nodes.dashboard,
            "--storage", storage or str(self.shared), "--tracking-uri", self.server.uri, *flags,
            **env,
        )  # fmt: skip

    def wait_for_job(self, job_id: str, *states: str) -> str:
        status = ""

        def ended() -> bool:
            nonlocal status
            status = str(self.nodes.job(job_id)["status"])
            return status in states

        wait_for(f"job {job_id} in {states}", ended, limit_s=600)
        return status

    def epochs(self, name: str) -> dict[str, list[tuple[int, str]]]:
        return self.epochs_in(self.shared / name)

    @staticmethod
    def epochs_in(folder: Path) -> dict[str, list[tuple[int, str]]]:
        """Per trial folder: (epoch, node_ip) of each epoch in its result.json."""
        out = {}
        for path in folder.glob("*/result.json"):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            unique = {(r["epoch"], r["training_iteration"]): r["node_ip"] for r in rows}
            out[path.parent.name] = [(epoch, ip) for (epoch, _), ip in unique.items()]
        return out

    def mlflow_steps(self, name: str) -> dict[str, list[int]]:
        """Per trial run in the server's store: the steps its val_loss was logged at."""
        store = MlflowClient(self.server.store)
        exp = store.get_experiment_by_name(name)
        assert exp is not None
        runs = store.search_runs([exp.experiment_id])
        trials = [r for r in runs if "hpo.trial_id" in r.data.tags]
        assert len({r.data.tags["hpo.trial_id"] for r in trials}) == len(trials)  # once each
        return {
            r.data.tags["hpo.trial_id"]: sorted(
                m.step for m in store.get_metric_history(r.info.run_id, "val_loss")
            )
            for r in trials
        }


def job_id_of(output: str) -> str:
    found = re.search(r"as Ray job (\S+);", output)
    assert found, output
    return found.group(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, bucket: Bucket) -> Iterator[Cluster]:
    private = tmp_path_factory.mktemp("laptop")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    data = [Path("/usr/share/datasets"), Path.home() / ".cache" / "hpo" / "data"]
    nodes = LoopbackCluster(hide=[private], data=[d for d in data if d.is_dir()], extra_env=AWS)
    try:
        nodes.start()
        yield Cluster(nodes, server, private, bucket)
    finally:
        nodes.stop()
        server.kill()


def test_a_submitted_sweep_trains_on_both_nodes_and_is_recorded_once(cluster: Cluster) -> None:
    space = cluster.space("spread")
    bucket = cluster.bucket.uri
    # The worker node's trial actor first fetches the code and the data through Ray; with
    # actors reused, the head's ready actor could run all four trials while it started (Tune
    # then drops the waiting actor), whenever the machine was busy. Each trial in a process of
    # its own keeps the second trial on the node reserved for it: both nodes, always.
    submitted = cluster.submit(space, storage=bucket, HPO_REUSE_ACTORS="0")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = job_id_of(submitted.stdout)
    assert f"hpo logs {job_id} --follow" in submitted.stdout  # and the client is gone
    assert cluster.wait_for_job(job_id, "SUCCEEDED", "FAILED", "STOPPED") == "SUCCEEDED", (
        cluster.hpo("logs", job_id, "--address", cluster.nodes.dashboard).stdout
    )
    # Everything is in the bucket; the test reads it through a mirror, as `hpo status` does.
    status = cluster.hpo("status", "spread", "--storage", bucket)
    assert status.returncode == 0 and status.stdout.count("TERMINATED") == 4, status.stdout
    mirror = storage.root(bucket) / "spread"
    epochs = cluster.epochs_in(mirror)
    assert len(epochs) == 4 and all([e for e, _ in v] == [1, 2] for v in epochs.values())
    # The worker has neither the code nor the data, and trained anyway.
    assert {ip for v in epochs.values() for _, ip in v} == {"127.0.0.3", "127.0.0.2"}
    keys = cluster.bucket.keys("spread")
    for trial in epochs:
        assert any(k.startswith(f"spread/{trial}/checkpoint_") for k in keys), trial
    assert sorted(cluster.mlflow_steps("spread").values()) == [[1, 2]] * 4
    report = cluster.hpo("report", "spread", "--storage", bucket)
    assert report.returncode == 0, report.stderr
    assert (mirror / "report" / "report.md").is_file()


def test_a_stopped_job_resumes_as_a_new_job(cluster: Cluster) -> None:
    """`hpo stop` mid-sweep, then `hpo resume NAME --address http://...`: the sweep ends
    complete, finished trials as they were, no epoch trained or logged twice."""
    space = cluster.space("stopped", epochs=4, steps=60, extra="max_concurrent_trials: 2\n")
    submitted = cluster.submit(space)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = job_id_of(submitted.stdout)
    wait_for(
        "a trial's second epoch",
        lambda: any(len(v) >= 2 for v in cluster.epochs("stopped").values()),
    )
    stop = cluster.hpo("stop", job_id, "--address", cluster.nodes.dashboard)
    assert stop.returncode == 0, stop.stderr
    assert cluster.wait_for_job(job_id, "STOPPED", "SUCCEEDED", "FAILED") == "STOPPED"
    before = cluster.epochs("stopped")

    resumed = cluster.hpo(
        "resume", "stopped", "--address", cluster.nodes.dashboard, "--storage", str(cluster.shared)
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    again_id = job_id_of(resumed.stdout)
    assert cluster.wait_for_job(again_id, "SUCCEEDED", "FAILED", "STOPPED") == "SUCCEEDED"
    after = cluster.epochs("stopped")
    assert len(after) == 4 and all([e for e, _ in v] == [1, 2, 3, 4] for v in after.values())
    assert any(len(rows) < 4 for rows in before.values())  # stopped mid-sweep (STOPPED says so)
    for trial, rows in before.items():
        # The epochs before the stop stay as they were (result.json only grows), and a trial
        # that had finished is untouched.
        assert [e for e, _ in after[trial][: len(rows)]] == [e for e, _ in rows]
        assert len(rows) < 4 or after[trial] == rows
    assert sorted(cluster.mlflow_steps("stopped").values()) == [[1, 2, 3, 4]] * 4


USER_SPACE = """\
name: {name}
model: {{factory: 'digits_mlp:build'}}
dataset: {{factory: 'digits_mlp:load', validation_fraction: 0.2, train_steps: 10}}
search:
  hidden: {{grid: [16, 32, 48, 64]}}
  epochs: 2
search_algorithm: grid
scheduler: none
"""


def test_a_users_model_and_data_train_on_both_nodes(cluster: Cluster) -> None:
    """The user's module and YAML sit in a folder no node sees; the module reaches the job's
    driver and both nodes through the job's runtime_env, and the loader's data through Ray."""
    shutil.copy(REPO / "examples" / "digits_mlp.py", cluster.private / "digits_mlp.py")
    space = cluster.private / "mine.yaml"
    space.write_text(USER_SPACE.format(name="mine"))
    submitted = cluster.submit(space, HPO_REUSE_ACTORS="0")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = job_id_of(submitted.stdout)
    assert cluster.wait_for_job(job_id, "SUCCEEDED", "FAILED", "STOPPED") == "SUCCEEDED", (
        cluster.hpo("logs", job_id, "--address", cluster.nodes.dashboard).stdout
    )
    epochs = cluster.epochs("mine")
    assert len(epochs) == 4 and all([e for e, _ in v] == [1, 2] for v in epochs.values())
    assert {ip for v in epochs.values() for _, ip in v} == {"127.0.0.3", "127.0.0.2"}
    assert sorted(cluster.mlflow_steps("mine").values()) == [[1, 2]] * 4


def test_what_the_cluster_cannot_do_is_one_line_and_exit_2(cluster: Cluster) -> None:
    """Each refused before any trial starts, with nothing written."""
    space = cluster.space("refused")
    # A local folder: the nodes cannot see it (each has its own, empty, in its namespace).
    local = cluster.private / "runs"
    hidden = cluster.hpo(
        "submit", str(space), "--address", cluster.nodes.dashboard,
        "--storage", str(local), "--tracking-uri", cluster.server.uri,
    )  # fmt: skip
    assert hidden.returncode == 2, hidden.stdout + hidden.stderr
    assert "is not the same storage on every node (127.0.0.2:" in hidden.stderr
    assert not local.exists()
    # A server nobody answers at, and a file store that would land on the head's disk.
    for uri, says in (
        ("http://127.0.0.1:9", "cannot be reached within"),
        ("sqlite:///mlflow.db", "an MLflow server"),
    ):
        refused = cluster.hpo(
            "submit", str(space), "--address", cluster.nodes.dashboard,
            "--storage", str(cluster.shared), "--tracking-uri", uri,
        )  # fmt: skip
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    # A trial no node can hold: each node has 1 CPU.
    big = cluster.space("big", extra="resources: {cpu: 2}\n")
    too_big = cluster.submit(big)
    assert too_big.returncode == 2, too_big.stdout + too_big.stderr
    assert "resources.cpu: 2 per trial, but the largest of Ray's 2 node(s) has 1 CPUs" in (
        too_big.stderr
    )
    assert not (cluster.shared / "big").exists() and not (cluster.shared / "refused").exists()


def test_plan_measures_on_the_cluster_and_counts_its_slots(cluster: Cluster) -> None:
    """`hpo plan --address HEAD:PORT`: the shape timed as a Ray task on a node (this checkout's
    code travels to it), the slots what both nodes hold (a 1-CPU trial each); nothing written."""
    space = cluster.space("planned")
    done = cluster.hpo("plan", str(space), "--address", cluster.nodes.gcs, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["where"] == f"the cluster at {cluster.nodes.gcs}" and figures["slots"] == 2
    (shape,) = figures["shapes"]  # dropout alone varies: one model shape
    assert shape["trials"] == 4 and shape["epoch_s"] > 0 and shape["peak_mem_mb"] > 0
    assert figures["trial_epochs"]["median"] == figures["max_trial_epochs"] == 8  # no ASHA
    written = [cluster.private / "runs", cluster.private / "mlflow.db", cluster.shared / "planned"]
    assert not any(p.exists() for p in written)
