"""Reading a YAML file safely, with the problems PyYAML alone would hide.

`yaml.safe_load` silently keeps the last of two equal keys; a search space where `dropout`
appears twice would then run something the user did not write. So the text is first composed
into nodes (no Python objects are built) to find duplicated keys with their lines, then loaded
with `yaml.safe_load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tune.errors import Problem


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    """The file's data, or the problems that keep it from being read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem("", "no such file", "a path to a search-space YAML")]
    except IsADirectoryError:
        return None, [Problem("", "is a folder, not a file", "a path to a search-space YAML")]
    except (OSError, UnicodeDecodeError) as e:
        return None, [Problem("", f"cannot be read: {e}", "a readable UTF-8 text file")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = e.problem or e.context or "cannot be parsed"
        return None, [Problem("", f"{where}invalid YAML: {what}", "fix the YAML syntax there")]
    except yaml.YAMLError as e:
        return None, [Problem("", f"invalid YAML: {e}", "fix the YAML syntax")]
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
