"""A user's own model factory and data loader in a search space: the contract, case by case.
Every refusal is one line naming the file and the key, before anything starts."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tests.tune.space.spec_files import problems, write
from tune.cli import main
from tune.space import user_code
from tune.space.distributions import Distribution
from tune.space.spec import changed_code, load_spec, problems_of

_names = itertools.count()

MODEL = """\
from typing import Literal
import numpy as np
from torch import nn

def build(input_shape, num_classes, *, hidden: int = 16, depth: int = 1,
          dropout: float = 0.0, act: Literal["relu", "tanh"] = "relu"):
    layers = [nn.Flatten()]
    width = int(np.prod(input_shape))
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU() if act == "relu" else nn.Tanh(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, num_classes))

def load():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return x[:40], y[:40], x[40:], y[40:]
"""


def module(tmp_path: Path, source: str = MODEL) -> str:
    """A module of the user's in the YAML's folder, under a name of its own (a module imported
    once stays imported in this process)."""
    name = f"user_model_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(source)
    return name


def space(name: str, search: str = "", extra: str = "", loader: str | None = None) -> str:
    return (
        f"name: t\nmodel: {{factory: '{name}:build'}}\n"
        f"dataset: {{factory: '{loader or name}:load', validation_fraction: 0.25}}\n"
        f"search:\n  hidden: {{choice: [8, 16]}}\n  epochs: 2\n{search}{extra}"
    )


def only(tmp_path: Path, text: str) -> str:
    lines = problems(tmp_path, text)
    assert len(lines) == 1, lines
    return lines[0].split(": ", 1)[1]  # without the file's name


def test_the_factorys_parameters_are_the_spaces_hyperparameters(tmp_path: Path) -> None:
    name = module(tmp_path)
    spec = load_spec(write(tmp_path, space(name, "  act: {choice: [relu, tanh]}\n")))
    assert spec.model.factory == f"{name}:build"
    assert [p.name for p in spec.model.params] == ["hidden", "depth", "dropout", "act"]
    assert spec.search["hidden"] == Distribution("choice", (8, 16))
    assert spec.search["depth"] == 1 and spec.search["dropout"] == 0.0  # the factory's defaults
    assert spec.search["lr"] == 1e-3  # the trainer's, as ever
    assert "conv_layers" not in spec.search  # the built-in CNN's are not this model's
    assert spec.model.code is not None and len(spec.model.code.digest) == 64
    assert spec.dataset.factory == f"{name}:load"


def test_a_spec_with_the_users_code_passes_its_own_rules_again(tmp_path: Path) -> None:
    """As a record is read back (records.py): without importing the module. The dataset's
    default name beside the user's loader read as two sources before."""
    name = module(tmp_path)
    spec = load_spec(write(tmp_path, space(name, "  act: tanh\n")))
    assert problems_of(spec) == []
    (tmp_path / f"{name}.py").write_text("raise SystemExit('imported again')\n")
    assert problems_of(spec) == []  # the record's parameters, not the module


def test_found_from_another_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module(tmp_path)
    path = write(tmp_path, space(name))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_spec(Path(os.path.relpath(path))).model.factory == f"{name}:build"


def test_an_unknown_key_names_the_factorys_parameters(tmp_path: Path) -> None:
    line = only(tmp_path, space(module(tmp_path), "  hiden: 4\n"))
    assert line.startswith("search.hiden: unknown hyperparameter (did you mean 'hidden'? known: ")
    assert "conv_layers" not in line and "act" in line and "lr" in line


def test_a_value_of_the_wrong_type(tmp_path: Path) -> None:
    line = only(tmp_path, space(module(tmp_path), "  depth: 1.5\n"))
    assert line == "search.depth: 1.5 is not allowed (an integer)"


def test_a_value_outside_the_literal(tmp_path: Path) -> None:
    line = only(tmp_path, space(module(tmp_path), "  act: {choice: [relu, gelu]}\n"))
    assert line == "search.act.choice: 'gelu' is not allowed (one of relu, tanh)"


def test_a_module_that_is_not_there(tmp_path: Path) -> None:
    name = module(tmp_path)
    line = only(tmp_path, space("nosuch_module", loader=name))
    assert (
        line
        == f"model.factory: 'nosuch_module:build': no module 'nosuch_module' in {tmp_path} or the Python path"
    )


def test_a_module_that_fails_to_import_gives_its_errors_last_line(tmp_path: Path) -> None:
    name = module(
        tmp_path, MODEL + "\nprint('hello from the module')\nraise RuntimeError('no GPU here')\n"
    )
    good = module(tmp_path)
    line = only(tmp_path, space(name, loader=good))
    assert line == f"model.factory: '{name}:build': importing '{name}': RuntimeError: no GPU here"
    assert "hello from the module" in user_code.kept()  # shown with --verbose only


def test_a_syntax_error_gives_its_file_and_line(tmp_path: Path) -> None:
    name = module(tmp_path, "def build(input_shape, num_classes):\n    return (\n")
    line = only(tmp_path, space(name, loader=module(tmp_path)))
    assert line.startswith(f"model.factory: '{name}:build': {tmp_path / name}.py:")
    assert "SyntaxError" in line


def test_a_missing_function(tmp_path: Path) -> None:
    name = module(tmp_path)
    line = only(tmp_path, space(name).replace(f"{name}:build", f"{name}:make"))
    assert (
        line
        == f"model.factory: '{name}:make': module '{name}' ({tmp_path / name}.py) has no 'make'"
    )


def test_a_factory_that_returns_no_module(tmp_path: Path) -> None:
    name = module(
        tmp_path,
        MODEL.replace("    return nn.Sequential(", "    return 'a model'\n    nn.Sequential("),
    )
    line = only(tmp_path, space(name))
    assert line == (
        f"model.factory: {name}:build with hidden=16, depth=1, dropout=0.0, act='relu': "
        f"{name}:build returned a str, not a torch.nn.Module"
    )


def test_logits_of_the_wrong_shape(tmp_path: Path) -> None:
    name = module(tmp_path, MODEL.replace("nn.Linear(width, num_classes)", "nn.Linear(width, 3)"))
    line = only(tmp_path, space(name))
    assert line == (
        f"model.factory: {name}:build with hidden=16, depth=1, dropout=0.0, act='relu' returned "
        "[4, 3] for a batch of [4, 5] (logits [4, 2]: [N, num_classes], 2 classes in the data)"
    )


def test_a_factory_parameter_without_a_type(tmp_path: Path) -> None:
    name = module(tmp_path, MODEL.replace("depth: int = 1", "depth=1"))
    line = only(tmp_path, space(name))
    assert line == (
        f"model.factory: '{name}:build': {name}:build: parameter 'depth' has no type "
        "annotation; a hyperparameter is int, float, bool, str or Literal[...]"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("return x[:40], y[:39], x[40:], y[40:]", "train_x has 40 rows but train_y 39"),
        (
            "return x[:40], y[:40] - 1, x[40:], y[40:]",
            "train_y holds -1; labels are integers from 0",
        ),
        (
            "return x[:40], y[:40] * 0, x[40:], y[40:] * 0",
            "train_y holds 1 class; at least 2 are needed",
        ),
        (
            "return x[:40], y[:40].astype(float), x[40:], y[40:]",
            "train_y is float64 of shape [40]; expected integer labels [N]",
        ),
    ],
    ids=["lengths", "negative", "one-class", "float-labels"],
)
def test_data_that_breaks_the_contract(tmp_path: Path, change: str, message: str) -> None:
    name = module(tmp_path, MODEL.replace("return x[:40], y[:40], x[40:], y[40:]", change))
    line = only(tmp_path, space(name))
    assert line == f"dataset.factory: '{name}:load': {message}"


def test_a_loader_that_raises(tmp_path: Path) -> None:
    name = module(
        tmp_path,
        MODEL.replace(
            "    rng = np.random",
            "    print('loading'); raise OSError('disk gone')\n    rng = np.random",
        ),
    )
    line = only(tmp_path, space(name))
    assert line == f"dataset.factory: '{name}:load': {name}:load() raised OSError: disk gone"


def test_augment_is_refused_for_rows_of_features(tmp_path: Path) -> None:
    line = only(tmp_path, space(module(tmp_path), "  augment: true\n"))
    assert (
        line
        == "search.augment: augment crops and flips images; this data is rows of 5 features (augment: false)"
    )


def test_two_data_sources(tmp_path: Path) -> None:
    name = module(tmp_path)
    text = space(name).replace("validation_fraction", "name: mnist, validation_fraction")
    line = only(tmp_path, text)
    assert (
        line
        == "dataset.factory: the data comes from one source, not name and factory (one of name, factory, npz, folder)"
    )


def test_the_built_in_cnn_is_the_default_factory(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "name: t\nsearch: {conv_layers: 3, epochs: 2}\n"))
    assert spec.model.builtin and spec.model.code is None
    assert spec.search["conv_layers"] == 3 and spec.search["filters"] == 32


def test_verbose_shows_what_the_users_code_printed_and_its_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = module(
        tmp_path, MODEL + "\nprint('hello from the module')\nraise RuntimeError('no GPU')\n"
    )
    path = write(tmp_path, space(name, loader=module(tmp_path)))
    assert main(["validate", str(path)]) == 2
    quiet = capsys.readouterr()
    assert "hello from the module" not in quiet.out + quiet.err and "Traceback" not in quiet.err
    assert len(quiet.err.strip().splitlines()) == 1
    assert main(["validate", str(path), "--verbose"]) == 2
    told = capsys.readouterr().err
    assert "hello from the module" in told and "Traceback" in told and "no GPU" in told


def test_a_changed_or_missing_module_is_named_for_resume(tmp_path: Path) -> None:
    name = module(tmp_path)
    spec = load_spec(write(tmp_path, space(name)))
    assert changed_code(spec, "hpo resume") == []
    file = tmp_path / f"{name}.py"
    file.write_text(file.read_text() + "# edited\n")
    (problem,) = changed_code(spec, "hpo resume")
    assert (
        problem.path == "model.factory"
        and f"{file} changed since the sweep started" in problem.message
    )
    assert problem.allowed.endswith("hpo resume --allow-changed-code to go on with it as it is")
    file.unlink()
    (problem,) = changed_code(spec, "hpo resume")
    assert problem.message == f"{file} is gone since the sweep started"
