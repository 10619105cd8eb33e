"""Reading a YAML file safely: only a regular file of at most 1 MB, bounded in depth and in
what its aliases expand to, every duplicated key named; each problem one line."""

from __future__ import annotations

import os
from pathlib import Path

from tune.space.yaml_source import MAX_DEPTH, MAX_NODES, read_yaml


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    data, problems = read_yaml(path)
    assert (data is None) or not problems or "twice" in problems[0].message
    return [p.format("s.yaml") for p in problems]


def test_a_plain_file_reads_as_its_data(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsearch: {lr: 0.1}\n")
    assert read_yaml(path) == ({"name": "x", "search": {"lr": 0.1}}, [])


def test_duplicated_keys_are_named_with_their_lines(tmp_path: Path) -> None:
    (line,) = problems_of(tmp_path, "search:\n  lr: 0.1\n  lr: 0.2\n")
    assert "search.lr" in line and "lines 2 and 3" in line


def test_depth_and_alias_expansion_are_bounded(tmp_path: Path) -> None:
    deep = "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    assert f"nested more than {MAX_DEPTH} levels deep" in problems_of(tmp_path, deep)[0]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(5)
    )  # 10**6 values once expanded
    assert f"more than {MAX_NODES} values" in problems_of(tmp_path, bomb)[0]
    assert "refers to a node that holds it" in problems_of(tmp_path, "a: &x {b: *x}\n")[0]


def test_what_is_not_a_small_regular_file_is_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in read_yaml(fifo)[1][0].message  # and never waits
    assert "folder" in read_yaml(tmp_path)[1][0].message
    assert "no such file" in read_yaml(tmp_path / "gone.yaml")[1][0].message
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_000_000 + "\n")
    assert "at most 1 MB" in read_yaml(big)[1][0].format("big.yaml")


def test_broken_yaml_is_one_line_with_where(tmp_path: Path) -> None:
    (line,) = problems_of(tmp_path, "search: {lr: 0.1\n")
    assert "invalid YAML" in line and "line" in line and "\n" not in line
