"""Each key of a search-space file on its own: known, in its section, of the right type and
range, each distribution well-formed; one line per bad key, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tune.space.spec_files import one_problem, write
from tune.core.errors import InputError
from tune.space.spec import load_spec


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "search: {epochs: 2}\n", name="my_space.yaml"))
    assert spec.name == "my_space"


def test_number_written_without_a_dot_is_accepted(tmp_path: Path) -> None:
    # PyYAML reads 1e-3 as a string; users write it anyway.
    spec = load_spec(write(tmp_path, "search: {lr: 1e-3, dropout: {uniform: [0, 5e-1]}}\n"))
    assert spec.search["lr"] == 0.001


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "serach: {epochs: 2}\nsearch: {epochs: 2}\n",
            "serach",
            ("unknown key", "did you mean 'search'"),
        ),
        (
            "search: {dropuot: 0.1}\n",
            "search.dropuot",
            ("unknown hyperparameter", "did you mean 'dropout'"),
        ),
        (
            "search: {epochs: 2}\ndataset: {nmae: mnist}\n",
            "dataset.nmae",
            ("unknown key", "did you mean 'name'"),
        ),
        (
            "search: {epochs: 2}\nscheduler: {asha: {grace: 1}}\n",
            "scheduler.asha.grace",
            ("unknown key", "grace_period"),
        ),
    ],
)
def test_unknown_keys_get_a_hint(
    tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, text, key, *fragments)


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "epochs: 12\nsearch: {dropout: 0.1}\n",
            "epochs",
            ("does not belong here", "under search:"),
        ),
        ("search: {num_samples: 4}\n", "search.num_samples", ("at the top level",)),
        ("search: {train_steps: 4}\n", "search.train_steps", ("under dataset:",)),
        (
            "search: {epochs: 3}\nscheduler: {asha: {}}\ngrace_period: 1\n",
            "grace_period",
            ("under scheduler.asha:",),
        ),
    ],
)
def test_misplaced_keys_say_where_they_belong(
    tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, text, key, *fragments)


def test_string_shorthands(tmp_path: Path) -> None:
    spec = load_spec(
        write(tmp_path, "search: {epochs: 2}\ndataset: fashion_mnist\nmetric: val_loss\n")
    )
    assert spec.dataset.name == "fashion_mnist"
    assert (spec.metric.name, spec.metric.mode) == ("val_loss", "min")


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "search: {epochs: 2}\nnum_samples: ten\n",
            "num_samples",
            ("'ten'", "an integer in [1, 100000]"),
        ),
        (
            "search: {epochs: 2}\nnum_samples: 0\n",
            "num_samples",
            ("0", "an integer in [1, 100000]"),
        ),
        ("search: {epochs: 2}\nnum_samples: 99999999999\n", "num_samples", ("99999999999",)),
        ("search: {null: 2}\n", "search.null", ("unknown hyperparameter",)),
        (
            "search: {epochs: 2}\nmetric: {name: val_loss, mode: MIN}\n",
            "metric.mode",
            ("did you mean 'min'",),
        ),
        (
            "search: {epochs: {uniform: [1, 5]}}\n",
            "search.epochs.uniform",
            ("does not fit epochs",),
        ),
        ("search: {epochs: 2, epochs: 3}\n", "search.epochs", ("appears twice (line 1)",)),
        ("search: {epochs: 2}\nresources: {gpu: -1}\n", "resources.gpu", ("-1",)),
        ("search: {lr: {uniform: [.nan, 0.1]}}\n", "search.lr.uniform", ("must be finite",)),
        (
            "search: {lr: {loguniform: [1.0e-4, .inf]}}\n",
            "search.lr.loguniform",
            ("must be finite",),
        ),
        ("search: {epochs: 2}\nseed: 4294967296\n", "seed", ("[0, 4294967295]",)),
        ("search: {normalization: maybe}\n", "search.normalization", ("'maybe'", "true or false")),
        ("search: {batch_size: 64.5}\n", "search.batch_size", ("64.5", "an integer")),
        ("search: {epochs: '12'}\n", "search.epochs", ("'12'", "an integer")),
        ("search: {epochs: true}\n", "search.epochs", ("true", "an integer")),
        ("search: {lr: fast}\n", "search.lr", ("'fast'", "a number > 0")),
        ("search: {lr: -0.1}\n", "search.lr", ("-0.1", "> 0")),
        ("search: {epochs: 2}\nseed: 1.5\n", "seed", ("1.5",)),
        ("search: {epochs: 2}\nmax_failures: -1\n", "max_failures", ("-1", ">= 0")),
        ("search: {epochs: 2}\ntime_budget_s: 0\n", "time_budget_s", ("0", "seconds > 0")),
        (
            "search: {epochs: 2}\nmax_concurrent_trials: 0\n",
            "max_concurrent_trials",
            ("0", ">= 1 or null"),
        ),
        (
            "search: {epochs: 2}\ndataset: {validation_fraction: 1.5}\n",
            "dataset.validation_fraction",
            ("1.5", "(0, 1)"),
        ),
        ("search: {epochs: 2}\ndataset: {train_steps: 0}\n", "dataset.train_steps", ("0",)),
        ("search: {epochs: 2}\ndataset: [fashion_mnist]\n", "dataset", ("expected a mapping",)),
        ("search: {epochs: 2}\nresources: {cpu: 0}\n", "resources.cpu", ("0", "CPUs > 0")),
        ("search: {epochs: 2}\nresources: {gpu: 1.5}\n", "resources.gpu", ("1.5", "fraction")),
        ("search: {epochs: 2}\nname: my sweep!\n", "name", ("'my sweep!'", "letters, digits")),
        # Values once accepted and found by review or the fuzz test:
        ('name: "abc\\n"\nsearch: {epochs: 2}\n', "name", ("'abc\\n' is not a valid sweep name",)),
        ('name: ""\nsearch: {epochs: 2}\n', "name", ("'' is not a valid sweep name",)),
        ("name: false\nsearch: {epochs: 2}\n", "name", ("false is not a valid sweep name",)),
        ("search: {epochs: 2}\ntime_budget_s: .inf\n", "time_budget_s", ("inf is not allowed",)),
        (
            "search: {epochs: 2}\nscheduler: {asha: {reduction_factor: .inf}}\n",
            "scheduler.asha.reduction_factor",
            ("inf is not allowed",),
        ),
        ("search: {epochs: 2}\nresources: {cpu: 0.00005}\n", "resources.cpu", ("steps of 0.0001",)),
        ("search: {epochs: 2}\nresources: {gpu: 0.00001}\n", "resources.gpu", ("steps of 0.0001",)),
        ("search: {lr: {grid: [1e-3, 0.001]}}\n", "search.lr.grid", ("0.001 again",)),
    ],
)
def test_wrong_types_and_values(
    tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, text, key, *fragments)


@pytest.mark.parametrize(
    ("entry", "key", "fragments"),
    [
        ("dropout: {choice: []}", "search.dropout.choice", ("empty list",)),
        ("dropout: {}", "search.dropout", ("exactly one key", "found 0")),
        ("dropout: {choice: [0.1], grid: [0.2]}", "search.dropout", ("exactly one key", "found 2")),
        (
            "dropout: {unifrom: [0.1, 0.5]}",
            "search.dropout",
            ("unknown distribution 'unifrom'", "did you mean 'uniform'"),
        ),
        ("dropout: {uniform: [0.1]}", "search.dropout.uniform", ("expected [low, high]",)),
        ("dropout: {uniform: 0.1}", "search.dropout.uniform", ("expected a list",)),
        ("dropout: {uniform: [0.5, 0.1]}", "search.dropout.uniform", ("low 0.5 >= high 0.1",)),
        ("lr: {uniform: [0.01, 0.01]}", "search.lr.uniform", ("low 0.01 >= high 0.01",)),
        ("lr: {loguniform: [0, 0.1]}", "search.lr.loguniform", ("low 0 <= 0",)),
        ("lr: {loguniform: [a, 0.1]}", "search.lr.loguniform", ("'a' is not a number",)),
        ("conv_layers: {randint: [2.5, 4]}", "search.conv_layers.randint", ("integers",)),
        ("dropout: [0.2, 0.5]", "search.dropout", ("bare list", "choice")),
        ("dropout:", "search.dropout", ("empty value",)),
        ("dropout: {choice: [0.2, 0.2]}", "search.dropout.choice", ("listed twice",)),
        ("dropout: {choice: [[0.2]]}", "search.dropout.choice", ("not a single value",)),
    ],
)
def test_malformed_distributions(
    tmp_path: Path, entry: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, f"search:\n  {entry}\n", key, *fragments)


@pytest.mark.parametrize(
    ("entry", "key", "fragments"),
    [
        ("dropout: 1.0", "search.dropout", ("1.0", "[0, 1)")),
        ("dropout: -0.1", "search.dropout", ("-0.1", "[0, 1)")),
        ("dropout: {grid: [0.2, 1.0]}", "search.dropout.grid", ("1.0", "[0, 1)")),
        ("dropout: {uniform: [0.2, 1.5]}", "search.dropout.uniform", ("[0.2, 1.5]", "[0, 1)")),
        # The image's side sets the bound (28x28: 4 blocks), not a table (data_checks.py).
        (
            "conv_layers: 5",
            "search.conv_layers",
            ("5 conv+pool blocks do not fit a 28x28 image", "at most 4"),
        ),
        (
            "conv_layers: {randint: [2, 6]}",
            "search.conv_layers",
            ("6 conv+pool blocks", "at most 4"),
        ),
        (
            "conv_layers: {uniform: [1, 3]}",
            "search.conv_layers.uniform",
            ("use one of choice, grid, randint",),
        ),
        (
            "normalization: {uniform: [0, 1]}",
            "search.normalization.uniform",
            ("use one of choice, grid",),
        ),
        ("epochs: 0", "search.epochs", ("0", "[1, 10000]")),
        ("optimizer: adamm", "search.optimizer", ("'adamm'", "adam, adamw, sgd")),
        ("optimizer: {choice: [adam, rmsprop]}", "search.optimizer.choice", ("'rmsprop'",)),
    ],
)
def test_hyperparameter_rules(
    tmp_path: Path, entry: str, key: str, fragments: tuple[str, ...]
) -> None:
    one_problem(tmp_path, f"search:\n  {entry}\n", key, *fragments)


@pytest.mark.parametrize(
    ("text", "key", "fragments"),
    [
        (
            "search: {epochs: 3}\ndataset: {name: cifar10}\n",
            "dataset.name",
            ("'cifar10'", "fashion_mnist, mnist"),
        ),
        (
            "search: {epochs: 3}\nsearch_algorithm: bayes\n",
            "search_algorithm",
            ("'bayes'", "grid, optuna, random"),
        ),
        (
            "search: {epochs: 3}\nsearch_algorithm: optuna\nnum_samples: 2\nmetric: {name: val_accuracy, mode: min}\n",
            "metric.mode",
            ("needs mode: max",),
        ),
        (
            "search: {epochs: 3}\nmetric: {name: accuracy}\n",
            "metric.name",
            ("'accuracy'", "did you mean 'val_accuracy'"),
        ),
        ("search: {epochs: 3}\nscheduler: {hyperband: {}}\n", "scheduler", ("none, asha",)),
        (
            "search: {dropout: {uniform: [0, 0.5]}}\noptuna: {startup_trials: 3}\n",
            "optuna",
            ("is for search_algorithm optuna, not random", "set search_algorithm: optuna"),
        ),
        (
            "search: {dropout: {uniform: [0, 0.5]}}\nsearch_algorithm: optuna\n"
            "optuna: {startup_trials: 0}\n",
            "optuna.startup_trials",
            ("0 is not allowed", "an integer in [1, 100000]"),
        ),
        (
            "search: {dropout: {uniform: [0, 0.5]}}\nsearch_algorithm: optuna\n"
            "optuna: {n_startup: 3}\n",
            "optuna.n_startup",
            ("unknown key", "startup_trials"),
        ),
    ],
)
def test_section_values(tmp_path: Path, text: str, key: str, fragments: tuple[str, ...]) -> None:
    one_problem(tmp_path, text, key, *fragments)


def test_constant_spaces_default_to_one_trial(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "search: {epochs: 3}\n")).num_samples == 1
    assert load_spec(write(tmp_path, "search: {dropout: {grid: [0.1, 0.2]}}\n")).trial_count() == 2


def test_name_from_the_file_stem(tmp_path: Path) -> None:
    bad_stem = write(tmp_path, "name:\nsearch: {epochs: 3}\n", name="my space.yaml")
    with pytest.raises(InputError) as info:
        load_spec(bad_stem)
    (line,) = info.value.lines()
    assert "'my space' (taken from the file name)" in line and "--name" in line
    assert load_spec(bad_stem, name="my_space").name == "my_space"


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "empty" in one_problem(tmp_path, "", "")
    assert "mapping" in one_problem(tmp_path, "- search\n", "")
    assert one_problem(tmp_path, "name: x\n", "search", "missing")


def test_fine_fractions_of_a_cpu_are_accepted(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "search: {epochs: 2}\nresources: {cpu: 0.25}\n"))
    assert spec.resources.cpu == 0.25
