"""A trial's checkpoint files, sealed with their SHA-256 when written and checked before loading.

The trainer writes `trainer.pt` (loaded back with `torch.load(weights_only=True)`: data, never
code); beside it `trainer.pt.sha256` records its digest, and the epoch's line in the trial's
result.json records it too (`checkpoint_sha256`, with Ray's `checkpoint_dir_name`). A resume
checks every checkpoint Ray's state points at before anything runs, and a trial checks its own
before loading it: a missing, unsealed, cut or altered file is named in one line instead of
failing somewhere inside torch. The digest is compared with result.json's line for the
checkpoint where there is one (the line a SIGKILL can cost: then with the seal file), and the
message says which.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tune.core.errors import Problem
from tune.core.files import UnreadableFile, read_bounded
from tune.core.metrics import RESULT_FILE, RESULT_LIMIT

CHECKPOINT_FILE = "trainer.pt"
DIGEST_FILE = "trainer.pt.sha256"
DIGEST_KEY = "checkpoint_sha256"  # in the epoch's result
REPLAY_MARKER = "replay"  # in a checkpoint resume put back in place of a lost one (a copy)
FIX = "restore it, or start the experiment again with `hpo sweep --overwrite`"


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted: missing, or not what was written."""


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def seal(folder: Path) -> str:
    """Record the checkpoint's digest beside it; returns the digest."""
    value = digest(folder / CHECKPOINT_FILE)
    (folder / DIGEST_FILE).write_text(value + "\n")
    return value


def recorded(folder: Path) -> tuple[str, str]:
    """The digest the checkpoint in `folder` must have, and where it comes from: the line of
    the trial's result.json that reported this checkpoint, else the seal file beside it (a
    checkpoint resume copied into a lost one's place has only that)."""
    sealed = (folder / DIGEST_FILE).read_text(errors="replace").strip()
    if (folder / REPLAY_MARKER).exists():
        return sealed, DIGEST_FILE
    try:
        lines = read_bounded(folder.parent / RESULT_FILE, RESULT_LIMIT).splitlines()
    except UnreadableFile:
        lines = []
    for line in reversed(lines):
        try:
            result = json.loads(line)
        except (ValueError, RecursionError):
            continue  # the last line, cut by a kill
        if isinstance(result, dict) and result.get("checkpoint_dir_name") == folder.name:
            value = result.get(DIGEST_KEY)
            if isinstance(value, str):
                return value, f"{RESULT_FILE} (epoch {result.get('epoch')})"
    return sealed, f"{DIGEST_FILE} ({RESULT_FILE} has no line for it)"


def problem(folder: Path) -> Problem | None:
    """What is wrong with the checkpoint in `folder`, if anything."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return Problem(str(path), "missing", FIX)
    if not (folder / DIGEST_FILE).is_file():
        return Problem(str(path), f"is not sealed ({DIGEST_FILE} is missing)", FIX)
    expected, source = recorded(folder)
    if digest(path) != expected:
        return Problem(
            str(path), f"is not the file that was written (its SHA-256 differs from {source})", FIX
        )
    return None


def check(folder: Path) -> None:
    """Raise CheckpointError (in a trial: the trial fails, naming the file) unless sound."""
    if (p := problem(folder)) is not None:
        raise CheckpointError(f"{p.path}: {p.message} ({p.allowed})")
