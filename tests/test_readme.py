"""The README's opening: the two commands first (CI runs the second), then a search space that
hpo accepts, and the picture it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tune.cli import main

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_it_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first is not None and first.group(1).split("\n")[:2] == ["make demo", "make test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_the_opening_search_space_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"```yaml\n(.*?)```", README, re.S)
    assert block is not None
    space = tmp_path / "study.yaml"
    space.write_text(block.group(1))
    assert main(["validate", str(space)]) == 0, capsys.readouterr().err
    assert "valid: sweep 'study'" in capsys.readouterr().out


def test_every_picture_it_shows_exists() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures and all((ROOT / p).is_file() for p in pictures), pictures
