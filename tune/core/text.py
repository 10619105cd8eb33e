"""Plain text for people: values, durations and columns, as `hpo status`, the progress lines,
the summary and the report show them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


def fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def num(value: float | None, digits: int = 4) -> str:
    """A number as the report's tables and trials.csv show it: fixed digits, empty for none."""
    return "" if value is None else f"{value:.{digits}f}"


def fmt_config(config: Mapping[str, Any]) -> str:
    """'dropout=0.3, normalization=true': a configuration on one line."""
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in config.items())


class HasConfig(Protocol):
    @property
    def config(self) -> dict[str, Any]: ...


def varying_keys(rows: Sequence[HasConfig]) -> list[str]:
    """Config keys whose value differs between trials (rows of any kind with a config), in
    config order: the ones worth a column, a plot or an importance score."""
    keys: list[str] = []
    for row in rows:
        for k in row.config:
            if k not in keys and len({fmt_value(r.config.get(k)) for r in rows}) > 1:
                keys.append(k)
    return keys


def columns(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """Plain-text columns, each padded to its widest cell."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    )


def format_columns(rows: Sequence[dict[str, str]]) -> str:
    """Dicts of the same keys as plain-text columns, the keys as the header."""
    header = list(rows[0])
    return columns(header, [[r[k] for k in header] for r in rows])


def duration(seconds: float | None) -> str:
    """'4 min 10 s', '1 h 02 min'; '-' when unknown."""
    if seconds is None:
        return "-"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"
