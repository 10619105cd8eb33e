"""`hpo sweep --warm-start`: what an earlier experiment gives a new sweep, read from the saved
folder tests/saved/interrupted_sweep (search_spaces/smoke.yaml, random search: 4 trials, of
which 3 finished: 520d6_00000 stopped at lr 0.0011, 00001 and 00002 with lr 0.0065 and 0.0054),
and a real Optuna sweep told them."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import Runner, runs_of
from tune.core.errors import UsageError
from tune.run.warm_start import read, within
from tune.space.distributions import Distribution
from tune.space.spec import load_spec
from tune.store import records

SAVED = Path(__file__).parents[2] / "saved" / "interrupted_sweep"
# The smoke space under Optuna, with lr narrowed so that 520d6_00000 (lr 0.0011) lies outside.
NARROW = (
    (SEARCH_SPACES / "smoke.yaml")
    .read_text()
    .replace("search_algorithm: random", "search_algorithm: optuna\noptuna: {startup_trials: 1}")
    .replace("loguniform: [1.0e-3, 1.0e-2]", "loguniform: [2.0e-3, 1.0e-2]")
    .replace("name: smoke", "name: warm")
    .replace("num_samples: 4", "num_samples: 2")
)


def earlier(tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / "smoke"
    shutil.copytree(SAVED, folder, symlinks=True)
    return folder


def space(tmp_path: Path, text: str = NARROW) -> Path:
    path = tmp_path / "warm.yaml"
    path.write_text(text)
    return path


def test_optuna_is_given_the_finished_trials_inside_the_new_space(tmp_path: Path) -> None:
    warm = read(earlier(tmp_path), load_spec(space(tmp_path)))
    assert (warm.finished, len(warm.points), warm.skipped, warm.told) == (3, 2, 1, True)
    assert warm.line() == "warm start: 2 of 3 trials of smoke reused (1 outside the new space)"
    assert all(set(p) == {"dropout", "normalization", "conv_layers", "lr"} for p in warm.points)
    assert all(2e-3 <= p["lr"] <= 1e-2 for p in warm.points)
    assert sorted(warm.values) == [0.431640625, 0.587890625]  # their last val_accuracy
    assert warm.params()["warm_start_reused"] == 2 and warm.params()["warm_start_skipped"] == 1


def test_random_search_only_names_the_earlier_best(tmp_path: Path) -> None:
    text = NARROW.replace("search_algorithm: optuna\noptuna: {startup_trials: 1}", "")
    warm = read(earlier(tmp_path), load_spec(space(tmp_path, text)))
    assert not warm.told and warm.best_trial == "520d6_00001"
    assert "best as the baseline: 0.5879 (520d6_00001)" in warm.line()


def test_another_metric_or_mode_is_refused(tmp_path: Path) -> None:
    text = NARROW.replace("metric: {name: val_accuracy, mode: max}", "metric: val_loss")
    with pytest.raises(UsageError, match=r"it measured val_accuracy \(max\), this sweep val_loss"):
        read(earlier(tmp_path), load_spec(space(tmp_path, text)))


@pytest.mark.parametrize(
    ("entry", "value", "inside"),
    [
        (Distribution("choice", (False, True)), 0, False),  # a bool is never 0
        (Distribution("choice", (0.0, 0.5)), 0, True),  # 0 and 0.0 are one number
        (Distribution("randint", (1, 2)), 2, True),  # both ends inclusive
        (Distribution("randint", (1, 2)), 1.5, False),
        (Distribution("loguniform", (1e-3, 1e-2)), 1e-2, True),
        (Distribution("uniform", (0.0, 0.5)), "0.2", False),
        (Distribution("uniform", (0.0, 0.5)), float("nan"), False),
    ],
)
def test_what_lies_inside_an_entry(entry: Distribution, value: object, inside: bool) -> None:
    assert entry.contains(value) is inside


def test_a_constant_must_be_equal(tmp_path: Path) -> None:
    spec = load_spec(space(tmp_path))
    config = {
        k: (v.values[0] if isinstance(v, Distribution) else v) for k, v in spec.search.items()
    }
    assert within(spec, config)
    assert not within(spec, {**config, "filters": 16})  # the new space holds filters: 8
    assert not within(spec, {k: v for k, v in config.items() if k != "units"})


def test_a_missing_experiment_is_one_line_and_nothing_starts(
    tmp_path: Path, hpo_here: Runner
) -> None:
    done = hpo_here(["sweep", str(space(tmp_path)), "--warm-start", "nosuch"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hpo sweep: --warm-start nosuch: no experiment of that name or folder in ./runs"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.integration
def test_a_warm_started_optuna_study_holds_the_earlier_trials_first(
    tmp_path: Path, hpo_here: Runner
) -> None:
    earlier(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = hpo_here(["sweep", str(space(tmp_path)), "--warm-start", "smoke", "--tracking-uri",
                     uri, "--max-concurrent", "1"], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hpo: warm start: 2 of 3 trials of smoke reused (1 outside the new space)" in done.stdout
    (state,) = sorted((tmp_path / "runs" / "warm").glob("searcher-state-*.pkl"))[-1:]
    with state.open("rb") as f:
        study = pickle.load(f)["_ot_study"]  # this test trusts the folder it made
    told = study.trials[:2]
    assert sorted(t.value for t in told) == [0.431640625, 0.587890625]
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    new = [t.params for t in study.trials[2:]]
    assert all(p not in [t.params for t in told] for p in new)  # not the earlier draws again
    # The same numbers in the record, the parent run's params and the report.
    line = "warm start: 2 of 3 trials of smoke reused (1 outside the new space)"
    assert records.load(tmp_path / "runs" / "warm").warm_start == line
    parent, _ = runs_of(uri, "warm")
    assert (parent.data.params["warm_start_reused"], parent.data.params["warm_start_skipped"]) == (
        "2",
        "1",
    )
    report = hpo_here(["report", "warm"], tmp_path, MLFLOW_TRACKING_URI=uri)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "runs" / "warm" / "report" / "report.md").read_text()
    assert "Warm-started: 2 of 3 trials of smoke reused (1 outside the new space)." in text


def test_a_warm_started_sampler_does_not_repeat_the_earlier_random_draws(tmp_path: Path) -> None:
    """Seeded as the earlier Optuna sweep was, TPE's random start-up trials repeated its first
    configurations (seen: both new trials of a smoke sweep were copies)."""
    from tune.run.sweep import searcher

    spec = load_spec(space(tmp_path))
    warm = read(earlier(tmp_path), spec)

    def first_draw(search: object) -> float:
        return float(search._sampler._random_sampler._rng.rng.rand())  # type: ignore[attr-defined]

    assert first_draw(searcher(spec, warm)) != first_draw(searcher(spec))
