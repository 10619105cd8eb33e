"""A trial's checkpoint files, sealed with their SHA-256 when written and checked before loading.

The trainer writes `trainer.pt` (loaded back with `torch.load(weights_only=True)`: data, never
code); beside it `trainer.pt.sha256` records its digest. A resume checks every checkpoint Ray's
state points at before anything runs, and a trial checks its own before loading it: a missing,
cut or altered file is named in one line instead of failing somewhere inside torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tune.errors import Problem

CHECKPOINT_FILE = "trainer.pt"
DIGEST_FILE = "trainer.pt.sha256"
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


def problem(folder: Path) -> Problem | None:
    """What is wrong with the checkpoint in `folder`, if anything. A checkpoint written before
    hpo sealed them has no digest file: only its presence is checked."""
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return Problem(str(path), "missing", FIX)
    sealed = folder / DIGEST_FILE
    if sealed.is_file() and sealed.read_text().strip() != digest(path):
        return Problem(str(path), "is not the file that was written (its SHA-256 differs)", FIX)
    return None


def check(folder: Path) -> None:
    """Raise CheckpointError (in a trial: the trial fails, naming the file) unless sound."""
    if (p := problem(folder)) is not None:
        raise CheckpointError(f"{p.path}: {p.message} ({p.allowed})")
