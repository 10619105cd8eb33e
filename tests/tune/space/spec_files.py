"""Search-space files written for a test, and the problem lines load_spec reports for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.core.errors import InputError
from tune.space.spec import load_spec


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
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
