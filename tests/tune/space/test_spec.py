"""Every bad input a user is likely to write gets one line naming the file and the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SEARCH_SPACES
from tune.core.errors import SpecError
from tune.space.distributions import Distribution
from tune.space.spec import SweepSpec, load_spec

GOOD = """\
name: t
search:
  dropout: {choice: [0.0, 0.5]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
  epochs: 3
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    lines = info.value.lines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return lines


def one_problem(tmp_path: Path, text: str, key: str, *fragments: str) -> str:
    lines = problems(tmp_path, text)
    assert len(lines) == 1, lines
    line = lines[0]
    assert f": {key}: " in line or (key == "" and line), line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.mark.parametrize("path", sorted(SEARCH_SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_search_spaces_are_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.trial_count() >= 1


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (SEARCH_SPACES.parent / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec = load_spec(write(tmp_path, example, name="fashion_seed.yaml"))
    assert spec.trial_count() == 24


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


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "search: {epochs: 2}\n", name="my_space.yaml"))
    assert spec.name == "my_space"


def test_number_written_without_a_dot_is_accepted(tmp_path: Path) -> None:
    # PyYAML reads 1e-3 as a string; users write it anyway.
    spec = load_spec(write(tmp_path, "search: {lr: 1e-3, dropout: {uniform: [0, 5e-1]}}\n"))
    assert spec.search["lr"] == 0.001


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "search:\n  dropout: [0.1\n  lr: 0.1\n", "")
    assert "invalid YAML" in line and "line 3" in line


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    line = one_problem(tmp_path, "search:\n\tdropout: 0.1\n", "")
    assert "invalid YAML" in line and "line 2" in line


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
        ("conv_layers: 5", "search.conv_layers", ("5", "[1, 4]")),
        ("conv_layers: {randint: [2, 6]}", "search.conv_layers.randint", ("[2, 6]", "[1, 4]")),
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
            "search: {epochs: 3}\nscheduler: {asha: {grace_period: 5}}\n",
            "scheduler.asha.grace_period",
            ("5 is more than the 3 epochs",),
        ),
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


def test_constant_spaces_default_to_one_trial(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, "search: {epochs: 3}\n")).num_samples == 1
    assert load_spec(write(tmp_path, "search: {dropout: {grid: [0.1, 0.2]}}\n")).trial_count() == 2


def test_name_from_the_file_stem(tmp_path: Path) -> None:
    bad_stem = write(tmp_path, "name:\nsearch: {epochs: 3}\n", name="my space.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(bad_stem)
    (line,) = info.value.lines()
    assert "'my space' (taken from the file name)" in line and "--name" in line
    assert load_spec(bad_stem, name="my_space").name == "my_space"


def test_self_referencing_alias_does_not_crash(tmp_path: Path) -> None:
    one_problem(tmp_path, "search: &a {dropout: *a}\n", "", "line 1: alias *a refers to a node")


def test_duplicated_keys_name_both_lines(tmp_path: Path) -> None:
    one_problem(
        tmp_path,
        "search:\n  dropout: 0.1\n  lr: 0.1\n  dropout: 0.2\n",
        "search.dropout",
        "lines 2 and 4",
    )


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "empty" in one_problem(tmp_path, "", "")
    assert "mapping" in one_problem(tmp_path, "- search\n", "")
    assert one_problem(tmp_path, "name: x\n", "search", "missing")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
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
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert info.value.lines() == [
            f"{path}: is not a regular file (a device, FIFO or socket) (a search-space YAML file)"
        ]
    big = tmp_path / "big.yaml"
    big.write_text("search: {epochs: 2}\n" + "#" * 1_000_000)
    with pytest.raises(SpecError) as info:
        load_spec(big)
    assert info.value.lines() == [
        f"{big}: is 1000020 bytes (a search-space YAML file of at most 1 MB)"
    ]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('name: "abc\\n"\nsearch: {epochs: 2}\n', "name", "'abc\\n' is not a valid sweep name"),
        ('name: ""\nsearch: {epochs: 2}\n', "name", "'' is not a valid sweep name"),
        ("name: false\nsearch: {epochs: 2}\n", "name", "false is not a valid sweep name"),
        ("search: {epochs: 2}\ntime_budget_s: .inf\n", "time_budget_s", "inf is not allowed"),
        (
            "search: {epochs: 2}\nscheduler: {asha: {reduction_factor: .inf}}\n",
            "scheduler.asha.reduction_factor",
            "inf is not allowed",
        ),
        ("search: {epochs: 2}\nresources: {cpu: 0.00005}\n", "resources.cpu", "steps of 0.0001"),
        ("search: {epochs: 2}\nresources: {gpu: 0.00001}\n", "resources.gpu", "steps of 0.0001"),
        ("search: {lr: {grid: [1e-3, 0.001]}}\n", "search.lr.grid", "0.001 again"),
    ],
)
def test_inputs_that_used_to_be_accepted(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    one_problem(tmp_path, text, key, fragment)


def test_fine_fractions_of_a_cpu_are_accepted(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "search: {epochs: 2}\nresources: {cpu: 0.25}\n"))
    assert spec.resources.cpu == 0.25


def test_an_integer_too_large_for_a_float_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A 400-digit literal: Python's int holds it, a float does not (OverflowError before)."""
    huge = 10**400
    text = f"search:\n  dropout: {huge}\n  lr: {{loguniform: [1.0e-4, {huge}]}}\n  epochs: {huge}\n"
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text))
    assert [line.split(": ")[1] for line in e.value.lines()] == [
        "search.dropout", "search.lr.loguniform", "search.epochs",
    ]  # fmt: skip
