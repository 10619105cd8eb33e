from __future__ import annotations

from tune.core.text import columns, duration, fmt_config, fmt_value, format_columns


def test_duration() -> None:
    assert duration(None) == "-"
    assert duration(250.4) == "4 min 10 s"
    assert duration(3 * 3600 + 125) == "3 h 02 min"


def test_values_as_a_person_reads_them() -> None:
    assert [fmt_value(v) for v in (True, 0.000123456, 3, "adam")] == [
        "true",
        "0.0001235",
        "3",
        "adam",
    ]


def test_columns_are_padded_to_the_widest_cell() -> None:
    assert columns(["a", "bb"], [["long", "x"]]).splitlines() == ["a     bb", "long  x"]
    assert format_columns([{"id": "1", "state": "RUNNING"}]) == "id  state\n1   RUNNING"


def test_a_config_on_one_line() -> None:
    config = {"dropout": 0.30000001, "normalization": True, "conv_layers": 3}
    assert fmt_config(config) == "dropout=0.3, normalization=true, conv_layers=3"
    assert fmt_config({}) == ""
