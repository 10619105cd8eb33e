"""The CLI contract (design §3.1): exit codes, one line per problem, nothing written on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tune.cli import absolute_tracking_uri, main

HPO = [sys.executable, "-m", "tune.cli"]


def run_hpo(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "HPO_STORAGE", "RAY_ADDRESS")
    }
    return subprocess.run(
        [*HPO, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_validate_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(SEARCH_SPACES.glob("*.yaml"))]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid: ") == len(files)
    assert "24 trials of up to 12 epochs" in out


def test_validate_bad_file_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  dropout: 1.5\n  epochs: 0\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{bad}: search.dropout: 1.5 is not allowed (a number in [0, 1))",
        f"{bad}: search.epochs: 0 is not allowed (an integer in [1, 10000])",
    ]


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: {dropout: 2}\n")
    assert main(["validate", str(SEARCH_SPACES / "smoke.yaml"), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "smoke.yaml: valid" in captured.out and "search.dropout" in captured.err


def test_bad_sweep_exits_2_and_leaves_no_trace(tmp_path: Path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("search:\n  dropout: {uniform: [0.5, 0.1]}\n")
    work = tmp_path / "work"
    work.mkdir()
    result = run_hpo(["sweep", str(bad)], cwd=work)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == f"{bad}: search.dropout.uniform: low 0.5 >= high 0.1 (low < high; for one value write a constant)"
    )
    assert "Traceback" not in result.stderr
    assert list(work.iterdir()) == []  # no runs/, no mlflow.db


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--num-samples", "0"], "--num-samples"),
        (
            ["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--max-concurrent", "two"],
            "--max-concurrent",
        ),
        (["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--name", "a b"], "--name"),
        (["sweep", "missing.yaml"], "missing.yaml: no such file"),
        (
            ["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--tracking-uri", "mlflow.db"],
            "not an MLflow tracking URI",
        ),
        (
            [
                "sweep",
                str(SEARCH_SPACES / "smoke.yaml"),
                "--tracking-uri",
                "sqlite:///no/such/dir/m.db",
            ],
            "does not exist",
        ),
        (["status", "nothing-here"], "no experiment 'nothing-here'"),
        (["report", "nothing-here"], "no experiment 'nothing-here'"),
        (["confirm", "nothing-here"], "no experiment 'nothing-here'"),
        (["confirm", "x", "--top", "0"], "--top: 0 is too small"),
        (["confirm", "x", "--seeds", "two"], "is not an integer"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_hpo(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_existing_experiment_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "runs" / "smoke").mkdir(parents=True)
    result = run_hpo(["sweep", str(SEARCH_SPACES / "smoke.yaml")], cwd=tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--name" in result.stderr


def test_a_relative_sqlite_store_is_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_tracking_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert absolute_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert absolute_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
