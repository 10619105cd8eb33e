"""`hpo validate` against 500 malformed search spaces made by mutating the shipped ones: each
file ends valid or with one line per problem naming it, exit 0 or 2, never a traceback, and
the whole run stays within a memory bound (and a generous time limit that only catches hangs)."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import hpo_env

FILES = 500
SEED = 20261128
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**70, -(2**70), 1e308, -1e-308, float("inf"), float("nan"),
    "", "x" * 5000, "1e-3", "0x1F", "~", [], {}, [[[[1]]]], {"grid": []}, {"choice": [1, 1.0]},
    {"uniform": [1, 0]}, {"loguniform": [0, 1]}, {"randint": [1.5, 3]}, {"grid": [None]},
    {"bogus": [1, 2]}, {"grid": [1], "choice": [2]}, "asha", "none", ["a", "b"],
]  # fmt: skip
TYPOS = {"dropout": "dropuot", "search": "serach", "epochs": "epoch", "dataset": "data"}


def mutate_data(rng: random.Random, data: dict[str, Any]) -> Any:
    """Delete, rename, retype or add keys anywhere in the loaded YAML."""
    for _ in range(rng.randint(1, 4)):
        target = data
        if rng.random() < 0.6:
            nested = [v for v in data.values() if isinstance(v, dict)]
            target = rng.choice(nested) if nested else data
        keys = list(target)
        action = rng.choice(["delete", "retype", "rename", "add"])
        if keys and action == "delete":
            del target[rng.choice(keys)]
        elif keys and action == "retype":
            target[rng.choice(keys)] = rng.choice(ODD_VALUES)
        elif keys and action == "rename":
            key = rng.choice(keys)
            target[TYPOS.get(key, str(key).upper())] = target.pop(key)
        else:
            target[rng.choice(["lr", "Dropout", "extra", "name", "seed", 7, None])] = rng.choice(
                ODD_VALUES
            )
    return data if rng.random() > 0.05 else rng.choice(ODD_VALUES)


def mutate_text(rng: random.Random, text: str) -> bytes:
    """Text-level damage: duplicated lines, aliases, nesting, cuts, tabs and binary bytes."""
    lines = text.splitlines()
    action = rng.choice(["duplicate", "alias", "nest", "cut", "tab", "bytes", "bomb"])
    if action == "duplicate" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif action == "alias":
        lines = ["x: &x {grid: [0.1, 0.2]}", *lines, "y: *x", "z: *nothing"]
    elif action == "nest":
        depth = rng.choice([10, 40, 3000])
        lines.append("search: " + "{a: " * depth + "1" + "}" * depth)
    elif action == "cut":
        return text[: rng.randrange(len(text) + 1)].encode()
    elif action == "tab" and lines:
        i = rng.randrange(len(lines))
        lines[i] = "\t" + lines[i]
    elif action == "bytes":
        raw = bytearray(text.encode())
        for _ in range(rng.randint(1, 20)):
            raw.insert(rng.randrange(len(raw) + 1), rng.randrange(256))
        return bytes(raw)
    else:
        bomb = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
        bomb += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
        lines = bomb + lines + ["search: {dropout: *l8}"]
    return ("\n".join(lines) + "\n").encode()


def make_files(folder: Path) -> list[Path]:
    rng = random.Random(SEED)
    texts = [p.read_text() for p in sorted(SEARCH_SPACES.glob("*.yaml"))]
    files = []
    for i in range(FILES):
        text = rng.choice(texts)
        if i % 2:
            raw = mutate_text(rng, text)
        else:
            data = mutate_data(rng, yaml.safe_load(text))
            raw = yaml.safe_dump(data, allow_unicode=True).encode()
        path = folder / f"f{i:03d}.yaml"
        path.write_bytes(raw)
        files.append(path)
    return files


def test_validate_survives_malformed_files(tmp_path: Path, fake_data_dir: Path) -> None:
    files = make_files(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "tune.cli", "validate", *map(str, files)],
        cwd=tmp_path,
        env=hpo_env(HPO_DATA_DIR=str(fake_data_dir)),
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard only
    )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert result.returncode in (0, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "failed:" not in result.stderr
    valid = {line.split(": valid: ")[0] for line in result.stdout.splitlines()}
    problems: dict[str, int] = {}
    for line in result.stderr.splitlines():
        file = line.split(": ")[0]
        assert file.endswith(".yaml"), line  # every line names its file
        assert len(line) < 600, line[:300]  # one short line each
        problems[file] = problems.get(file, 0) + 1
    for path in map(str, files):
        assert (path in valid) != (path in problems), path  # valid, or its problems
    assert len(problems) > FILES * 0.8  # the mutations do break most files
    assert peak_mb < 1500, f"validate peaked at {peak_mb:.0f} MB"


def test_a_character_yaml_forbids_is_one_line(tmp_path: Path, fake_data_dir: Path) -> None:
    """PyYAML's reader error spans two lines; found by the fuzz test above once
    fashion_best.yaml joined the shipped spaces."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: a\x80b\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "tune.cli", "validate", str(bad)],
        env=hpo_env(HPO_DATA_DIR=str(fake_data_dir)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"{bad}: invalid YAML: character 0x80 at position 7: special characters are not allowed"
        " (remove or quote it)\n"
    )
