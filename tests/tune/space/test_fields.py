"""Fields on its own: each getter returns the value, or the default with one Problem that shows
the value and the rule, and reading goes on."""

from __future__ import annotations

import pytest

from tune.core.errors import Problem, show
from tune.space.fields import Fields


def test_an_integer_in_range_is_returned_and_anything_else_is_one_problem() -> None:
    fields = Fields()
    assert fields.integer("seed", 7, 0, 0, high=9) == 7
    assert fields.integer("seed", 10, 0, 0, high=9) == 0
    assert fields.integer("retries", True, 2, 0) == 2  # YAML's true is no count
    assert fields.integer("trials", None, None, 1, null=True) is None
    assert fields.integer("trials", 10**400, None, 1, null=True) is None
    assert fields.problems == [
        Problem("seed", "10 is not allowed", "an integer in [0, 9]"),
        Problem("retries", "true is not allowed", "an integer >= 0"),
        Problem("trials", f"{show(10**400)} is not allowed", "an integer >= 1 or null"),
    ]


@pytest.mark.parametrize("raw", [".inf", float("inf"), float("nan"), "fast", [1], 0])
def test_a_number_must_be_finite_and_pass_its_rule(raw: object) -> None:
    fields = Fields()
    assert fields.number("budget", raw, None, lambda x: x > 0, "seconds > 0", null=True) is None
    assert [(p.path, p.allowed) for p in fields.problems] == [("budget", "seconds > 0 or null")]


def test_a_number_written_without_a_dot_is_read() -> None:
    fields = Fields()
    assert fields.number("lr", "1e-3", 0.1, lambda x: x > 0, "a number > 0") == 0.001
    assert fields.number("lr", None, 0.1, lambda x: x > 0, "a number > 0", null=True) == 0.1
    assert fields.problems == []


def test_one_of_names_a_close_option_or_lists_them() -> None:
    fields = Fields()
    assert fields.one_of("mode", "min", "max", ("max", "min")) == "min"
    assert fields.one_of("mode", "MIN", "max", ("max", "min")) == "max"
    assert fields.one_of("mode", 3, "max", ("max", "min")) == "max"
    assert fields.problems == [
        Problem("mode", "unknown value 'MIN'", "did you mean 'min'? known: max, min"),
        Problem("mode", "3 is not allowed", "one of max, min"),
    ]


def test_a_mapping_reports_each_unknown_key_and_is_returned_whole() -> None:
    fields = Fields()
    raw = {"cpu": 1, "cpus": 2, None: 3, "k" * 41: 4}
    assert fields.mapping("resources", raw, ("cpu", "gpu")) is raw
    assert fields.mapping("resources", None, ("cpu", "gpu")) == {}
    assert fields.mapping("resources", [1], ("cpu", "gpu")) == {}
    assert [(p.path, p.message) for p in fields.problems] == [
        ("resources.cpus", "unknown key"),
        ("resources.null", "unknown key"),
        (f"resources.'{'k' * 41}'", "unknown key"),
        ("resources", "expected a mapping, got [1]"),
    ]
    assert fields.problems[0].allowed == "did you mean 'cpu'? known: cpu, gpu"


def test_a_key_known_elsewhere_is_told_where_it_belongs() -> None:
    homes = {"epochs": "search", "seed": ""}
    fields = Fields(home_of=homes.get)
    fields.mapping("", {"epochs": 3}, ("search", "seed"))
    fields.mapping("search", {"seed": 1, "lr": 0.1}, ("epochs",), what="hyperparameter")
    assert fields.problems == [
        Problem("epochs", "'epochs' does not belong here", "put it under search:"),
        Problem("search.seed", "'seed' does not belong here", "put it at the top level"),
        Problem("search.lr", "unknown hyperparameter", "known: epochs"),
    ]


def test_a_document_must_be_a_mapping_of_known_keys() -> None:
    fields = Fields()
    assert fields.document(None, ("search",), "a mapping with search:") is None
    assert fields.document(["search"], ("search", "seed"), "a mapping with search:") is None
    assert fields.document({"search": {}}, ("search",), "a mapping with search:") == {"search": {}}
    assert fields.problems == [
        Problem("", "the file is empty", "a mapping with search:"),
        Problem("", "expected a mapping of keys at the top, got ['search']", "keys: search, seed"),
    ]
