"""load_spec end to end: the shipped files, a file as a whole (its YAML, its size, its
aliases), and every problem of a file reported at once, one line each."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tests.tune.space.spec_files import one_problem, problems, write
from tune.core.errors import InputError
from tune.space.distributions import Distribution
from tune.space.spec import SweepSpec, as_data, load_spec, problems_of, with_overrides

GOOD = """\
name: t
search:
  dropout: {choice: [0.0, 0.5]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
  epochs: 3
"""


@pytest.mark.parametrize("path", sorted(SEARCH_SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_search_spaces_are_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.trial_count() >= 1


def test_fashion_seed_is_the_study() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml")
    assert spec.trial_count() == 4 * 2 * 3
    assert spec.max_epochs == 12 and spec.dataset.train_steps == 100
    assert spec.search["batch_size"] == 64 and spec.scheduler is not None


def test_good_file_fills_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert isinstance(spec, SweepSpec)
    assert spec.search["dropout"] == Distribution("choice", (0.0, 0.5))
    assert spec.search["filters"] == 32 and spec.search["optimizer"] == "adam"
    assert spec.metric.name == "val_accuracy" and spec.metric.mode == "max"
    assert spec.num_samples == 10 and spec.max_epochs == 3


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "search:\n  dropout: [0.1\n  lr: 0.1\n", "")
    assert "invalid YAML" in line and "line 3" in line


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "search:\n\tdropout: 0.1\n", "")
    assert "invalid YAML" in line and "line 2" in line


def test_self_referencing_alias_does_not_crash(tmp_path: Path) -> None:
    one_problem(tmp_path, "search: &a {dropout: *a}\n", "", "line 1: alias *a refers to a node")


def test_duplicated_keys_name_both_lines(tmp_path: Path) -> None:
    one_problem(
        tmp_path,
        "search:\n  dropout: 0.1\n  lr: 0.1\n  dropout: 0.2\n",
        "search.dropout",
        "lines 2 and 4",
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert info.value.lines() == [
        f"{tmp_path / 'nope.yaml'}: no such file (a path to a search-space YAML)"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    lines = problems(
        tmp_path, "search:\n  dropout: 2\n  epochs: 0\nnum_samples: -1\nsearch_algorithm: bayes\n"
    )
    keys = {line.split(": ")[1] for line in lines}
    assert keys == {"search.dropout", "search.epochs", "num_samples", "search_algorithm"}


def test_a_loaded_spec_passes_its_own_rules_again() -> None:
    """problems_of reads as_data(spec) back with the same reader: a valid spec has no problem,
    a changed one gets the file's message."""
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    assert as_data(spec)["scheduler"] == {"asha": {"grace_period": 1, "reduction_factor": 3.0}}
    assert problems_of(spec) == []
    (problem,) = problems_of(dataclasses.replace(spec, seed=-1))
    assert (problem.path, problem.message) == ("seed", "-1 is not allowed")


def test_overrides_that_are_none_keep_the_file_value() -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    changed = with_overrides(spec, name="other", num_samples=None)
    assert (changed.name, changed.num_samples) == ("other", spec.num_samples)


# -- bounded input: size, kind of file, nesting, aliases, long values ---------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nsearch: {{dropout: *a{levels - 1}}}\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    text = billion_laughs()
    assert len(text) < 600  # 9**9 values once expanded
    line = one_problem(tmp_path, text, "", "expands to more than 100000 values")
    assert len(line) < len(str(tmp_path)) + 200


def test_a_huge_value_is_shown_short(tmp_path: Path) -> None:
    line = one_problem(
        tmp_path, f"name: {'x' * 5000}\nsearch: {{epochs: 2}}\n", "name", "not a valid"
    )
    assert len(line) < len(str(tmp_path)) + 300
    many = "search: {epochs: [" + ",".join(str(i) for i in range(2000)) + "]}\n"
    line = one_problem(tmp_path, many, "search.epochs", "a bare list [0, 1, 2")
    assert len(line) < len(str(tmp_path)) + 300


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "search: " + "[" * 3000 + "]" * 3000 + "\n", "")
    assert "nested more than 32 levels deep" in line


def test_only_a_regular_file_of_at_most_1_mb_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would block forever
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(InputError) as info:
            load_spec(path)
        assert info.value.lines() == [
            f"{path}: is not a regular file (a device, FIFO or socket) (a search-space YAML file)"
        ]
    big = tmp_path / "big.yaml"
    big.write_text("search: {epochs: 2}\n" + "#" * 1_000_000)
    with pytest.raises(InputError) as info:
        load_spec(big)
    assert info.value.lines() == [
        f"{big}: is 1000020 bytes (a search-space YAML file of at most 1 MB)"
    ]


def test_an_integer_too_large_for_a_float_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A 400-digit literal: Python's int holds it, a float does not (OverflowError before)."""
    huge = 10**400
    text = f"search:\n  dropout: {huge}\n  lr: {{loguniform: [1.0e-4, {huge}]}}\n  epochs: {huge}\n"
    with pytest.raises(InputError) as e:
        load_spec(write(tmp_path, text))
    assert [line.split(": ")[1] for line in e.value.lines()] == [
        "search.dropout", "search.lr.loguniform", "search.epochs",
    ]  # fmt: skip


def test_optuna_whose_start_up_trials_fill_the_budget_is_warned_about(tmp_path: Path) -> None:
    """Valid (a user may want it), but with no more trials than TPE's random start-up ones the
    sweep is random search: a warning, not an error."""
    text = "search: {dropout: {uniform: [0, 0.5]}}\nsearch_algorithm: optuna\nnum_samples: 8\n"
    (warning,) = load_spec(write(tmp_path, text)).warnings()
    assert warning.format("f.yaml: warning") == (
        "f.yaml: warning: optuna.startup_trials: its 10 random start-up trials fill all 8 "
        "trials: TPE never runs, so this is random search (startup_trials below num_samples, "
        "e.g. optuna: {startup_trials: 2})"
    )
    assert load_spec(write(tmp_path, text + "optuna: {startup_trials: 2}\n")).warnings() == []
    assert load_spec(write(tmp_path, "search: {dropout: {uniform: [0, 0.5]}}\n")).warnings() == []


def test_fashion_seeds_trials_are_those_before_a_users_own_model() -> None:
    """The trial configs (grid order, constants) of fashion_seed.yaml as the code before model
    factories made them (tests/saved/fashion_seed_trials.json, written at 7a72625)."""
    from tune.space.grid import grid_points

    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    constants = {k: v for k, v in spec.search.items() if not isinstance(v, Distribution)}
    trials = [{**constants, **point} for point in grid_points(spec)]
    saved = Path(__file__).parents[2] / "saved" / "fashion_seed_trials.json"
    assert trials == json.loads(saved.read_text())
