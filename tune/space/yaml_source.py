"""Reading a YAML file safely, with the problems PyYAML alone would hide.

Input is bounded before it is parsed: only a regular file of at most MAX_BYTES is read (a FIFO
would block, /dev/zero would never end), and one streaming pass over PyYAML's events refuses
nesting deeper than MAX_DEPTH (PyYAML's composer recurses) and documents whose aliases would
expand to more than MAX_NODES values (a "billion laughs" file is a few hundred bytes).

`yaml.safe_load` silently keeps the last of two equal keys; a search space where `dropout`
appears twice would then run something the user did not write. So the text is then composed
into nodes (no Python objects are built) to find duplicated keys with their lines, and only
then loaded with `yaml.safe_load`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from tune.core.errors import Problem

MAX_BYTES = 1_000_000  # a search space is a few hundred bytes
MAX_DEPTH = 32  # mappings and lists inside each other; a search space needs 4
MAX_NODES = 100_000  # values after expanding every alias
WANTED = "a search-space YAML file"


def read_text(path: Path) -> tuple[str | None, list[Problem]]:
    """The file's text, if it is a regular file of at most MAX_BYTES in UTF-8."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            return None, [Problem("", "is a folder, not a file", WANTED)]
        if not stat.S_ISREG(info.st_mode):
            return None, [Problem("", "is not a regular file (a device, FIFO or socket)", WANTED)]
        if info.st_size > MAX_BYTES:
            return None, [Problem("", f"is {info.st_size} bytes", f"{WANTED} of at most 1 MB")]
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)  # the file may have grown since stat
        if len(raw) > MAX_BYTES:
            return None, [Problem("", "is over 1 MB", f"{WANTED} of at most 1 MB")]
        return raw.decode("utf-8"), []
    except FileNotFoundError:
        return None, [Problem("", "no such file", "a path to a search-space YAML")]
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem("", f"cannot be read: {e}", "a readable UTF-8 text file")]


def check_structure(text: str) -> Problem | None:
    """One pass over the parser's events (no recursion, nothing built): too deep, an alias
    of a node that contains it, or too many values once aliases are expanded."""
    sizes: dict[str, int] = {}  # anchor -> values under it, aliases expanded
    stack: list[list[Any]] = [[None, 0]]  # open collections: [anchor, values so far]
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        where = f"line {event.start_mark.line + 1}: " if event.start_mark else ""
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 0])
            if len(stack) - 1 > MAX_DEPTH:
                return Problem(
                    "", f"{where}nested more than {MAX_DEPTH} levels deep", "flatter YAML"
                )
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            size += 1
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            if any(a == event.anchor for a, _ in stack):
                return Problem(
                    "",
                    f"{where}alias *{event.anchor} refers to a node that holds it",
                    "no recursive aliases",
                )
            anchor, size = None, sizes.get(str(event.anchor), 1)
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        stack[-1][1] += size
        if sum(n for _, n in stack) > MAX_NODES:
            return Problem(
                "", f"{where}expands to more than {MAX_NODES} values (aliases?)", "fewer aliases"
            )
    return None


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The file's data, or the problems that keep it from being read."""
    text, problems = read_text(path)
    if text is None:
        return None, problems
    try:
        if (problem := check_structure(text)) is not None:
            return None, [problem]
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = e.problem or e.context or "cannot be parsed"
        return None, [Problem("", f"{where}invalid YAML: {what}", "fix the YAML syntax there")]
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, e.g. U+0080
        what = f"character {e.character:#x} at position {e.position}: {e.reason}"
        return None, [Problem("", f"invalid YAML: {what}", "remove or quote it")]
    except yaml.YAMLError as e:
        # PyYAML's own text spans lines; a problem is one line.
        return None, [
            Problem("", f"invalid YAML: {' '.join(str(e).split())}", "fix the YAML syntax")
        ]
    return data, duplicate_keys(node, "")


def duplicate_keys(
    node: yaml.Node | None, path: str, seen: set[int] | None = None
) -> list[Problem]:
    """Every key that appears twice in the same mapping, anywhere in the document. `seen`
    guards against aliases that refer to themselves (`a: &x {b: *x}`)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                if key in first_line:
                    lines = (
                        f"line {line}"
                        if first_line[key] == line
                        else f"lines {first_line[key]} and {line}"
                    )
                    problems.append(
                        Problem(
                            child,
                            f"appears twice ({lines}); YAML would silently keep the last",
                            "each key once",
                        )
                    )
                else:
                    first_line[key] = line
            problems += duplicate_keys(value_node, child, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += duplicate_keys(item, f"{path}[{i}]", seen)
    return problems
