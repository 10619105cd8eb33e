"""`hpo validate` against 500 malformed search spaces made by mutating the shipped ones: each
file ends valid or with one line per problem naming it, exit 0 or 2, never a traceback, and
the whole run stays within a memory bound (and a generous time limit that only catches hangs).
`hpo status` and `hpo report` against 400 mutated experiment folders, likewise."""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import hpo_env
from tests.tune.test_received import SECRET, crafted, trial
from tune.cli import main
from tune.store import records

FILES = 500
SEED = 20261128
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**70, -(2**70), 10**400, 1e308, -1e-308, float("inf"), float("nan"),
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


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


# `hpo ARGS` that writes its own peak resident memory (kB) to $HPO_TEST_PEAK as it exits.
MEASURED_HPO = """
import atexit, os, sys
from tune.cli import main

def peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["HPO_TEST_PEAK"], "w") as out:
        out.write(kb)

atexit.register(peak)
sys.exit(main(sys.argv[1:]))
"""


def run_measured(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[Result, float]:
    """`hpo ARGS`; its output and the peak memory (MB) of that process alone, as the kernel
    counts it from its exec on (VmHWM). Neither RUSAGE_CHILDREN (every process this worker
    ever waited for: a benchmark's Ray workers) nor the child's ru_maxrss (which counts this
    worker's pages it was forked with) would be: each made this test fail. pytest's --timeout
    is the hang guard."""
    out, err, peak = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "peak.txt"
    command = [sys.executable, "-c", MEASURED_HPO, *args]
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            command, cwd=cwd, env={**env, "HPO_TEST_PEAK": str(peak)}, stdout=stdout, stderr=stderr
        )
    result = Result(done.returncode, out.read_text(), err.read_text())
    return result, int(peak.read_text()) / 1024


def test_validate_survives_malformed_files(tmp_path: Path, fake_data_dir: Path) -> None:
    files = make_files(tmp_path)
    result, peak_mb = run_measured(
        ["validate", *map(str, files)],
        cwd=tmp_path,
        env=hpo_env(HPO_DATA_DIR=str(fake_data_dir)),
    )
    assert result.returncode in (0, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "failed:" not in result.stderr
    valid = {line.split(": valid: ")[0] for line in result.stdout.splitlines()}
    problems: dict[str, int] = {}
    warned = set()  # valid, with a warning (say, Optuna's start-up trials fill its budget)
    for line in result.stderr.splitlines():
        file = line.split(": ")[0]
        assert file.endswith(".yaml"), line  # every line names its file
        assert len(line) < 600, line[:300]  # one short line each
        if line.startswith(f"{file}: warning: "):
            warned.add(file)
        else:
            problems[file] = problems.get(file, 0) + 1
    assert warned <= valid
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


# -- hpo status and hpo report on a mutated experiment folder -----------------------------------

FOLDER_MUTATIONS = 200  # of the record, and as many of Ray's state file


def odd_values(outside: Path) -> list[Any]:
    """Values a crafted or damaged folder may hold: wrong types, extremes, pickles, paths out
    of the folder (none names a server: a report would try to log into it)."""
    return [
        None, True, -1, 0, 2**70, 10**400, 1e308, float("nan"), "", "x" * 5000, "../../outside",
        "/etc/passwd", str(outside / "credentials"), str(outside), [], {}, [[[[1]]]],
        {"_type": "CLOUDPICKLE_FALLBACK", "value": "80"}, f"sqlite:///{outside / 'new.db'}",
        f"file://{outside / 'mlruns'}", "TERMINATED", "ERROR", "train_trial_a_00000",
        "error.txt", {"epoch": 1}, ["a", "b"],
    ]  # fmt: skip


def mutate_json(rng: random.Random, data: Any, odd: list[Any]) -> Any:
    """Delete, retype, rename or add entries anywhere in a JSON value."""
    for _ in range(rng.randint(1, 3)):
        nodes = [data]
        found: list[Any] = []
        while nodes:  # every mapping and list in it
            node = nodes.pop()
            if isinstance(node, dict | list):
                found.append(node)
                nodes.extend(node.values() if isinstance(node, dict) else node)
        if not found:
            return rng.choice(odd)
        target = rng.choice(found)
        action = rng.choice(["delete", "retype", "rename", "add"])
        if isinstance(target, dict) and target:
            key = rng.choice(list(target))
            if action == "delete":
                del target[key]
            elif action == "retype":
                target[key] = rng.choice(odd)
            elif action == "rename":
                target[key.upper() if key != key.upper() else key + "_"] = target.pop(key)
            else:
                target[rng.choice(["extra", "relative_logdir", "error_filename", "epoch"])] = (
                    rng.choice(odd)
                )
        elif isinstance(target, list) and target:
            i = rng.randrange(len(target))
            if action == "delete":
                del target[i]
            else:
                target[i] = rng.choice(odd)
    return data


def damage_text(rng: random.Random, text: str) -> str:
    action = rng.choice(["cut", "bytes", "nest", "empty"])
    if action == "cut":
        return text[: rng.randrange(len(text) + 1)]
    if action == "bytes":
        chars = list(text)
        for _ in range(rng.randint(1, 20)):
            chars.insert(rng.randrange(len(chars) + 1), chr(rng.randrange(1, 256)))
        return "".join(chars)
    if action == "nest":
        return "[" * 50_000 + "]" * 50_000
    return ""


def mutate_record(rng: random.Random, text: str, odd: list[Any]) -> str:
    if rng.random() < 0.2:
        return damage_text(rng, text)
    return json.dumps(mutate_json(rng, json.loads(text), odd))


def mutate_state(rng: random.Random, text: str, odd: list[Any]) -> str:
    """Mostly one trial's two JSON documents (the fields status and report read), else the
    file as a whole."""
    data = json.loads(text)
    roll = rng.random()
    if roll < 0.15:
        return damage_text(rng, text)
    if roll < 0.3:
        return json.dumps(mutate_json(rng, data, odd))
    trial = rng.choice(data["trial_data"])
    i = rng.randrange(2)
    trial[i] = json.dumps(mutate_json(rng, json.loads(trial[i]), odd))
    return json.dumps(data)


@pytest.mark.slow
def test_status_and_report_survive_mutated_folders(tmp_path: Path) -> None:
    """200 mutations of hpo_sweep.json and 200 of Ray's state file, each through `hpo status`
    and `hpo report`: exit 0 or 2, never a traceback or a run-time failure, and nothing
    outside the experiment folder read into the output, written or deleted."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "credentials").write_text(f"secret = {SECRET}\n")
    folder = crafted(
        tmp_path,
        trial("a_00000", "train_trial_a_00000"),
        trial("a_00001", "train_trial_a_00001", best=0.6),
        trial("a_00002", "train_trial_a_00002", "ERROR", error="error.txt"),
    )
    (folder / "train_trial_a_00002" / "error.txt").write_text("Traceback\nRuntimeError: boom\n")
    (state,) = folder.glob("experiment_state-*.json")
    pristine = {path: path.read_text() for path in (folder / records.RECORD_FILE, state)}
    around = sorted(p.name for p in tmp_path.iterdir())
    before = {p: (p.stat().st_mtime, p.read_bytes()) for p in outside.rglob("*")}
    rng = random.Random(SEED)
    odd = odd_values(outside)
    for path, mutate in ((folder / records.RECORD_FILE, mutate_record), (state, mutate_state)):
        for _ in range(FOLDER_MUTATIONS):
            path.write_text(mutate(rng, pristine[path], odd))
            for command in ("status", "report"):
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main([command, str(folder)])
                said = out.getvalue() + err.getvalue()
                assert code in (0, 2), (command, path.read_text()[:300], said[-2000:])
                assert "Traceback (most recent" not in said, said[-2000:]
                assert f"hpo {command}: failed:" not in said, said[-2000:]
                assert SECRET not in said, said[-2000:]
            path.write_text(pristine[path])
    assert {p: (p.stat().st_mtime, p.read_bytes()) for p in outside.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around
