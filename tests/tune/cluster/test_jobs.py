"""`hpo submit` and the job commands without a cluster: what is refused before anything is
sent, and what a job would carry. (Submitting for real: tests/tune/test_cluster.py.)"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tests.tune.loopback import REPO
from tune.cli import job_address_of, main
from tune.cluster.jobs import job_address
from tune.cluster.nodes import EXCLUDES, packages, runtime_env
from tune.core.errors import UsageError


def test_the_job_api_address_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UsageError, match="missing"):
        job_address_of(Namespace(address=None))
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert job_address_of(Namespace(address=None)) == "http://head:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://api:8265")
    assert job_address_of(Namespace(address=None)) == "http://api:8265"
    assert job_address_of(Namespace(address="https://flag:443")) == "https://flag:443"
    with pytest.raises(UsageError, match="not the GCS address"):
        job_address("head:6379")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--storage", "runs"], "relative to what?"),
        ([], "--storage: missing"),
        (["--storage", "/shared", "--tracking-uri", "sqlite:///mlflow.db"], "an MLflow server"),
        (["--storage", "/shared", "--address", "head:6379"], "not the GCS address"),
    ],
)
def test_submit_refuses_what_cannot_work_on_a_cluster(
    flags: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    address = [] if "--address" in flags else ["--address", "http://127.0.0.1:9"]
    code = main(["submit", str(SEARCH_SPACES / "smoke.yaml"), *address, *flags])
    err = capsys.readouterr().err
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_sweep_points_a_job_address_at_submit(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--address", "http://head:8265"])
    assert code == 2 and "hpo submit" in capsys.readouterr().err


def test_a_job_carries_the_two_packages_and_nothing_else() -> None:
    assert [Path(p) for p in packages()] == [REPO / "tune", REPO / "models"]
    env = runtime_env()
    assert env["py_modules"] == packages() and env["excludes"] == EXCLUDES
    size = sum(f.stat().st_size for p in packages() for f in Path(p).rglob("*.py"))
    assert size < 1_000_000  # the dashboard caps an upload at about 100 MiB


def test_the_jobs_driver_gets_the_flags_resolved_here() -> None:
    from tune.cluster import jobs

    argv = jobs.sweep_argv(
        "s.yaml",
        "fashion",
        "/shared/runs",
        "http://mlflow:5000",
        {"--num-samples": 8, "--max-concurrent": None},
        {"--smoke": False, "--overwrite": True, "--verbose": False},
    )
    assert argv == [
        "sweep", "s.yaml", "--name", "fashion", "--storage", "/shared/runs",
        "--tracking-uri", "http://mlflow:5000", "--num-samples", "8", "--overwrite",
    ]  # fmt: skip
    assert jobs.resume_argv("fashion", "s3://b/p", {"--restart-errored": True}) == [
        "resume", "fashion", "--storage", "s3://b/p", "--restart-errored",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="relative to what"):
        jobs.cluster_storage("runs")
    with pytest.raises(UsageError, match="missing"):
        jobs.cluster_storage(None)
