"""Checkpoints sealed with their SHA-256 and checked before loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune import checkpoints
from tune.checkpoints import CHECKPOINT_FILE, DIGEST_FILE, CheckpointError


def test_a_sealed_checkpoint_is_checked(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weights")
    value = checkpoints.seal(tmp_path)
    assert (tmp_path / DIGEST_FILE).read_text().strip() == value and len(value) == 64
    assert checkpoints.problem(tmp_path) is None
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weightz")
    problem = checkpoints.problem(tmp_path)
    assert problem is not None and "SHA-256 differs" in problem.message
    with pytest.raises(CheckpointError, match=rf"{CHECKPOINT_FILE}: is not the file that was"):
        checkpoints.check(tmp_path)
    (tmp_path / CHECKPOINT_FILE).unlink()
    problem = checkpoints.problem(tmp_path)
    assert problem is not None and problem.message == "missing"


def test_a_checkpoint_from_before_the_seal_is_only_checked_for_presence(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weights")
    assert checkpoints.problem(tmp_path) is None
