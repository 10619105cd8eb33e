"""bench/vs_plain_ray.py's plain Ray Tune script runs as a user's own would."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_script_runs_without_the_variables_hpo_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest worker that ran hpo's CLI in-process holds hpo's Ray variables; with them the
    script's trials wrote no result.json and the benchmark ended with "no epoch reported"."""
    monkeypatch.syspath_prepend(str(BENCH))  # the scripts import harness as a sibling
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    monkeypatch.setenv("HPO_UNRELATED", "kept")
    import vs_plain_ray

    env = vs_plain_ray.plain_env()
    assert "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS" not in env
    assert env["HPO_UNRELATED"] == "kept"
