"""The rules between keys, once each key passed on its own, and what this machine must have:
one line each, naming the key to change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tests.tune.space.spec_files import one_problem
from tune.core.errors import InputError
from tune.space.checks import cross_checks, sample_checks
from tune.space.spec import ResourcesSpec, load_spec, with_overrides


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "search: {epochs: 3}\nscheduler: {asha: {grace_period: 5}}\n",
            "scheduler.asha.grace_period",
            ("5 is more than the 3 epochs",),
        ),
        (
            "search: {dropout: {grid: [0.1, 0.2]}}\nsearch_algorithm: optuna\n",
            "search.dropout.grid",
            ("grid is not supported by search_algorithm optuna", "choice"),
        ),
        (
            "search: {lr: {loguniform: [1.0e-4, 1.0e-2]}}\nsearch_algorithm: grid\n",
            "search.lr.loguniform",
            ("cannot enumerate the continuous range",),
        ),
        (
            "search: {epochs: 3}\nresources: {gpu: 64}\n",
            "resources.gpu",
            ("64 per trial, but this machine has",),
        ),
        (
            "search: {epochs: 3}\nresources: {cpu: 512}\n",
            "resources.cpu",
            ("512 per trial, but this machine has",),
        ),
        (
            "search: {epochs: 3}\ndataset: {root: /no/such/folder}\n",
            "dataset.root",
            ("'/no/such/folder' does not exist",),
        ),
    ],
)
def test_cross_field_rules(tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]) -> None:
    one_problem(tmp_path, text, key, *fragments)


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "search_algorithm: optuna\nsearch: {epochs: 3}\n",
            "search",
            ("needs at least one distribution",),
        ),
        ("search: {epochs: 3}\nnum_samples: 5\n", "num_samples", ("5 repeats would be identical",)),
        ("search: {dropout: {grid: [0.1, 0.2]}}\nnum_samples: 2\n", "num_samples", ("identical",)),
        (
            "search_algorithm: grid\nsearch: {batch_size: {randint: [1, 60000]}, units: {randint: [1, 8192]}}\n",
            "num_samples",
            ("would make 491520000 trials",),
        ),
        (
            "search: {batch_size: 1, normalization: {choice: [false, true]}}\n",
            "search.batch_size",
            ("BatchNorm needs 2 samples",),
        ),
    ],
)
def test_how_many_trials_and_what_they_can_train(
    tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, text, key, *fragments)


def test_this_machine_is_checked_only_where_the_trials_run() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    huge = dataclasses.replace(spec, resources=ResourcesSpec(cpu=100_000))
    assert cross_checks(huge, local=False) == []
    (problem,) = cross_checks(huge, local=True)
    assert problem.path == "resources.cpu" and "100000 per trial" in problem.message


def test_an_override_of_num_samples_is_checked_again() -> None:
    """fashion_seed.yaml is a grid: more than one pass repeats the same trials."""
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    assert sample_checks(spec) == []
    repeats, total = sample_checks(with_overrides(spec, num_samples=100_000))
    assert repeats.message.startswith("100000 repeats would be identical runs")
    assert total.message == "would make 2400000 trials (100000 x a grid of 24)"
    assert total.allowed == "at most 100000: fewer grid values or samples"


def test_a_continuous_range_under_grid_is_one_problem_not_three(tmp_path: Path) -> None:
    """A new user's grid with a loguniform lr and num_samples: 4 also got a line advising a
    loguniform entry, which grid refuses."""
    path = tmp_path / "g.yaml"
    path.write_text(
        "search:\n  dropout: {grid: [0.0, 0.5]}\n  lr: {loguniform: [1.0e-4, 1.0e-2]}\n"
        "  epochs: 2\nsearch_algorithm: grid\nnum_samples: 4\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path, local=False, driver=False)
    (line,) = info.value.lines()
    assert "search.lr.loguniform" in line and "cannot enumerate" in line
    path.write_text(
        "search:\n  dropout: {grid: [0.0, 0.5]}\nsearch_algorithm: grid\nnum_samples: 3\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path, local=False, driver=False)
    (line,) = info.value.lines()
    assert "identical runs" in line and "search_algorithm random with a choice" in line
    # choice and randint are enumerated by grid, so repeats of them are identical too (the
    # check above, as first written, let this through: 3 copies of a 2-point grid).
    path.write_text(
        "search:\n  dropout: {choice: [0.0, 0.5]}\nsearch_algorithm: grid\nnum_samples: 3\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path, local=False, driver=False)
    (line,) = info.value.lines()
    assert "identical runs" in line
