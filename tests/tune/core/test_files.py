"""Bounded reads inside a folder and atomic writes, on real files, links and a FIFO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tune.core.files import (
    UnreadableFile,
    inside,
    load_json,
    nesting,
    read_bounded,
    read_tail,
    write_atomic,
)


def test_write_atomic_writes_whole_and_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_write_atomic_replaces_a_link_never_its_target(tmp_path: Path) -> None:
    outside = tmp_path / "theirs.txt"
    outside.write_text("keep me")
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "report.md").symlink_to(outside)
    write_atomic(folder / "report.md", "ours")
    assert outside.read_text() == "keep me"
    assert not (folder / "report.md").is_symlink() and (folder / "report.md").read_text() == "ours"


def test_write_atomic_names_the_file_and_cleans_up_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"cannot write .*/nowhere/x\.json"):
        write_atomic(tmp_path / "nowhere" / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_inside_takes_only_plain_relative_paths_that_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "out").symlink_to("/etc")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert inside(tmp_path, "a/result.json") == tmp_path / "a" / "result.json"
    for bad in ("/etc/passwd", "../x", "a/../../x", "", "x\x00y", 3, None, "out/passwd", "loop"):
        assert inside(tmp_path, bad) is None, bad


def test_reads_are_bounded_and_refuse_what_is_not_a_regular_file(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"0123456789")
    assert read_bounded(small, 10) == b"0123456789"
    assert read_tail(small, 3) == b"789"
    with pytest.raises(UnreadableFile, match="more than"):
        read_bounded(small, 9)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_bounded(fifo, 100)  # and never waits for a writer
    with pytest.raises(UnreadableFile):
        read_bounded(tmp_path / "gone", 100)


def test_json_is_bounded_in_depth(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 5 + "]" * 5)
    assert nesting(load_json(path, 100, 5)) == 5
    with pytest.raises(UnreadableFile, match="nested more than 4"):
        load_json(path, 100, 4)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UnreadableFile, match="nested more than"):
        load_json(path, 1_000_000, 32)
    path.write_text("{not json")
    with pytest.raises(UnreadableFile, match="not JSON"):
        load_json(path, 100, 4)
