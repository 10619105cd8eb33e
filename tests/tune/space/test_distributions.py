from __future__ import annotations

import pytest

from tune.space.distributions import Distribution, as_number, parse_entry


def test_constants_pass_through() -> None:
    assert parse_entry("search.x", 0.5) == (0.5, [])
    assert parse_entry("search.x", "adam") == ("adam", [])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"choice": [1, 2]}, Distribution("choice", (1, 2))),
        ({"grid": [True, False]}, Distribution("grid", (True, False))),
        ({"uniform": [0, 1]}, Distribution("uniform", (0, 1))),
        ({"loguniform": ["1e-4", 0.1]}, Distribution("loguniform", (0.0001, 0.1))),
        ({"randint": [2, 4]}, Distribution("randint", (2, 4))),
    ],
)
def test_each_kind_parses(raw: dict[str, list[object]], expected: Distribution) -> None:
    assert parse_entry("search.x", raw) == (expected, [])


def test_true_and_one_are_different_values() -> None:
    dist, problems = parse_entry("search.x", {"choice": [1, True]})
    assert not problems and dist == Distribution("choice", (1, True))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1e-3", 0.001),
        ("2.5", 2.5),
        (".5", 0.5),
        ("-3", -3.0),
        ("abc", None),
        ("1e", None),
        (True, None),
        (3, 3),
    ],
)
def test_as_number(text: object, number: float | None) -> None:
    assert as_number(text) == number
