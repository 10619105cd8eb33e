"""A moved or copied experiment's search algorithm creates its later trials where the folder is
now (Ray restores the trials it had with the new path, but not the algorithm's spec)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune as ray_tune
from ray.tune.experiment import Experiment
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.search_generator import SearchGenerator

from tune.run.moved import point_at


def fake_trainable(config: dict[str, Any]) -> None:
    """Fake trainable: never run; the trials are only created."""


def experiment(storage: Path, space: dict[str, Any]) -> Experiment:
    return Experiment("exp", fake_trainable, config=space, storage_path=str(storage))


def test_rays_generator_creates_its_pending_trials_in_the_new_place(tmp_path: Path) -> None:
    """Random and grid search and confirm runs: a grid already expanded keeps a spec per
    pending trial (the interrupted confirm of tests/saved had 3 of 4 left)."""
    first = experiment(tmp_path / "first", {"x": ray_tune.grid_search([1, 2, 3])})
    generator = BasicVariantGenerator()
    generator.add_configurations([first])
    assert generator.next_trial().storage.storage_fs_path == str(tmp_path / "first")

    point_at(generator, experiment(tmp_path / "now", {}).storage)

    later = [generator.next_trial(), generator.next_trial()]
    assert [t.storage.storage_fs_path for t in later] == [str(tmp_path / "now")] * 2


def test_a_searchers_wrapper_creates_its_trials_in_the_new_place(tmp_path: Path) -> None:
    space = {"x": ray_tune.uniform(0, 1)}
    search = SearchGenerator(OptunaSearch(space, metric="m", mode="max", seed=0))
    search.add_configurations([experiment(tmp_path / "first", space)])

    point_at(search, experiment(tmp_path / "now", space).storage)

    trial = search.next_trial()
    assert trial is not None and trial.storage.storage_fs_path == str(tmp_path / "now")
