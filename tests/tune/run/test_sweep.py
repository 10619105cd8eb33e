"""The Ray Tune pieces a sweep is built from, checked without starting Ray."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from ray import tune as ray_tune

from tests.conftest import SEARCH_SPACES
from tune.core.errors import InputError
from tune.run.process import RunOptions
from tune.run.scheduling import scheduler
from tune.run.sweep import param_space, plan, searcher, smoke_variant
from tune.run.trial import trial_settings
from tune.space.distributions import Distribution
from tune.space.grid import grid_points
from tune.space.spec import SweepSpec, load_spec


def spec_of(tmp_path: Path, text: str) -> SweepSpec:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_spec(path)


def test_random_search_domains(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        "search:\n  dropout: {uniform: [0.0, 0.5]}\n  lr: {loguniform: [1.0e-4, 1.0e-2]}\n"
        "  conv_layers: {randint: [2, 4]}\n  normalization: {choice: [false, true]}\n"
        "  filters: {grid: [16, 32]}\n",
    )
    space = param_space(spec)
    assert isinstance(space["dropout"], ray_tune.search.sample.Float)
    assert (space["lr"].lower, space["lr"].upper) == (1e-4, 1e-2)
    # Our randint is inclusive, Ray's is not.
    assert (space["conv_layers"].lower, space["conv_layers"].upper) == (2, 5)
    assert space["normalization"].categories == [False, True]
    assert space["filters"] == {"grid_search": [16, 32]}
    assert space["optimizer"] == "adam" and space["epochs"] == 10  # defaults are constants
    assert spec.trial_count() == 10 * 2


def test_grid_algorithm_enumerates_every_entry() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    space = param_space(spec)
    assert space["dropout"] == {"grid_search": [0.0, 0.2, 0.5, 0.8]}
    assert space["conv_layers"] == {"grid_search": [2, 3, 4]}
    assert spec.trial_count() == 24


def test_the_grid_runs_in_an_order_shuffled_with_the_seed() -> None:
    """Ray would enumerate normalization slowest: the 12 models without BatchNorm first, all
    setting ASHA's cutoffs before any with it arrives. hpo hands Ray every point, shuffled."""
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    points = grid_points(spec)
    keys = ("dropout", "normalization", "conv_layers")
    assert len(points) == 24 and len({tuple(p[k] for k in keys) for p in points}) == 24
    assert {p["normalization"] for p in points[:6]} == {False, True}
    assert grid_points(spec) == points  # the seed fixes the order
    assert grid_points(replace(spec, seed=1)) != points
    twice = grid_points(replace(spec, num_samples=2))
    assert sorted(map(str, twice)) == sorted(map(str, points * 2))
    assert twice[:24] == points and twice[24:] != points  # each pass shuffled anew
    # One trial per point: Ray is asked for exactly as many trials as there are points.
    assert plan(spec, RunOptions(), trainable=lambda config: None).num_samples == 24


def test_grid_algorithm_enumerates_randint_and_choice(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        "search_algorithm: grid\nsearch:\n  conv_layers: {randint: [1, 3]}\n  optimizer: {choice: [adam, sgd]}\n",
    )
    assert param_space(spec)["conv_layers"] == {"grid_search": [1, 2, 3]}
    assert spec.trial_count() == 6


def test_scheduler_and_searcher() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_tpe.yaml")
    asha = scheduler(spec)
    assert asha is not None and asha._max_t == 12 and asha._time_attr == "epoch"
    assert type(searcher(spec)).__name__ == "OptunaSearch"
    assert scheduler(load_spec(SEARCH_SPACES / "smoke.yaml")) is not None


def test_optunas_start_up_trials_come_from_the_file(tmp_path: Path) -> None:
    """TPE samples at random for its first trials (Optuna's default: 10); a small budget
    needs fewer, or it is random search throughout."""
    text = "search: {dropout: {uniform: [0, 0.5]}}\nsearch_algorithm: optuna\nnum_samples: 12\n"
    default = searcher(spec_of(tmp_path, text))._sampler
    assert default._n_startup_trials == 10 and default._rng.rng.random() == (
        type(default)(seed=0)._rng.rng.random()
    )  # seeded with the sweep's seed
    spec = spec_of(tmp_path, text + "optuna: {startup_trials: 4}\n")
    assert searcher(spec)._sampler._n_startup_trials == 4
    assert "TPE after 4 random start-up trials" in spec.describe()


def test_no_scheduler(tmp_path: Path) -> None:
    assert scheduler(spec_of(tmp_path, "search: {epochs: 2}\nscheduler: none\n")) is None


def test_smoke_variant_is_small() -> None:
    spec = smoke_variant(load_spec(SEARCH_SPACES / "fashion_seed.yaml"))
    assert spec.name == "fashion_seed_smoke"
    assert spec.max_epochs == 2 and spec.dataset.train_steps == 5 and spec.dataset.eval_steps == 2
    assert spec.search["dropout"] == Distribution("grid", (0.0, 0.2))
    assert spec.trial_count() == 8
    tpe = smoke_variant(load_spec(SEARCH_SPACES / "fashion_tpe.yaml"))
    assert tpe.trial_count() == 2 and tpe.max_epochs == 2


def test_trial_settings_follow_resources(idx_folder: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    settings = trial_settings(spec, RunOptions())
    assert settings.threads == 1 and settings.device == "cpu" and settings.fault is None
    assert settings.train_steps == 100 and settings.data.seed == 0


def test_the_data_folder_is_found_once_by_the_driver(
    idx_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver finds the data, on a cluster too: it reads the files and hands them to the
    trials (through Ray's object store), which never look for a folder of their own."""
    spec = load_spec(SEARCH_SPACES / "smoke.yaml", data_dir=str(idx_folder))
    for options in (RunOptions(), RunOptions(address="127.0.0.3:6379")):
        settings = trial_settings(spec, replace(options, data_dir=str(idx_folder)))
        assert settings.data.root == str(idx_folder) and settings.data.data_dir is None
    # Where the driver has no data (a resume on another machine): one line, exit 2.
    monkeypatch.setattr("models.dataset_files.SYSTEM_DIRS", {"fashion_mnist": ()})
    with pytest.raises(InputError, match=r"dataset: fashion_mnist IDX files .* not found"):
        trial_settings(spec, RunOptions(data_dir=str(tmp_path)))
