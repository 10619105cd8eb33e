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
import shutil
from pathlib import Path
from typing import Any

from tune.core.errors import Problem
from tune.core.files import UnreadableFile, read_bounded
from tune.core.metrics import EPOCH, RESULT_FILE, RESULT_LIMIT

CHECKPOINT_FILE = "trainer.pt"
DIGEST_FILE = "trainer.pt.sha256"
DIGEST_KEY = "checkpoint_sha256"  # in the epoch's result
PROGRESS_FILE = "progress.csv"  # Ray's, beside result.json
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
    sealed = _sealed(folder)
    if (folder / REPLAY_MARKER).exists():
        return sealed, DIGEST_FILE
    result = _reporting_line(folder)
    if result is not None and isinstance(result.get(DIGEST_KEY), str):
        return result[DIGEST_KEY], f"{RESULT_FILE} (epoch {result.get('epoch')})"
    return sealed, f"{DIGEST_FILE} ({RESULT_FILE} has no line for it)"


def _sealed(folder: Path) -> str:
    return (folder / DIGEST_FILE).read_text(errors="replace").strip()


def _reporting_line(folder: Path) -> dict[str, Any] | None:
    """The line of the trial's result.json that reported the checkpoint in `folder`, if any."""
    try:
        lines = read_bounded(folder.parent / RESULT_FILE, RESULT_LIMIT).splitlines()
    except UnreadableFile:
        return None
    for line in reversed(lines):
        try:
            result = json.loads(line)
        except (ValueError, RecursionError):
            continue  # the last line, cut by a kill
        if isinstance(result, dict) and result.get("checkpoint_dir_name") == folder.name:
            return result
    return None


# -- after a kill: what resume repairs before anything runs (docs/architecture.md, step 4) --


def put_back_lost(folder: Path) -> bool:
    """Put a copy of the trial's newest whole checkpoint in place of the lost one in `folder`,
    marked for replay; returns whether it did.

    Ray deletes a trial's older checkpoint as soon as it registers a newer one and saves its
    experiment state a moment later: a driver killed in between leaves a state pointing at a
    folder that is gone, or half deleted (the folder there, its checkpoint file not); so does
    Ray's previous snapshot, which resume puts back when a full disk cut the last one short.
    The newest whole checkpoint on disk (not one the full disk cut short) is the same trial a
    little further on (its epoch counter and RNG state inside), so it takes the lost one's
    place, and the trial reports its epoch again, which Ray may never have seen. Only plain
    folders of plain files are copied from or into: nothing outside the trial's folder is
    read or written through a link."""
    if folder.exists() and not (_plain(folder) and not (folder / CHECKPOINT_FILE).exists()):
        return False  # there, or not ours to touch (the check names what is wrong with it)
    newest = max((p for p in folder.parent.glob("checkpoint_*") if _whole(p, folder)), default=None)
    if newest is None:
        return False
    shutil.copytree(newest, folder, dirs_exist_ok=True)
    _mark_replay(folder)
    return True


def mark_unreported(folder: Path) -> bool:
    """Mark the checkpoint in `folder` for replay when the trial's result.json has no line for
    it; returns whether it did. A driver killed after Ray registered the checkpoint but before
    its result reached result.json would otherwise resume past an epoch the trial's history
    never shows (epochs 1, 2, 4, ...)."""
    if not _plain(folder) or (folder / REPLAY_MARKER).exists() or _reporting_line(folder):
        return False
    _mark_replay(folder)
    return True


def _mark_replay(folder: Path) -> None:
    """Mark the checkpoint in `folder` for replay, from the epoch after the last one the
    trial's result.json holds: the driver can have been killed two or more epochs after the
    folder last got its results (the trainer's checkpoint holds every epoch's metrics)."""
    (folder / REPLAY_MARKER).write_text(f"{last_reported_epoch(folder.parent)}\n")


def last_reported_epoch(trial: Path) -> int:
    """The highest epoch in the trial's result.json, read as every report reads it; 0 if none."""
    from tune.store.trials import read_history  # the driver's resume only, never a trial

    return max((int(h[EPOCH]) for h in read_history(trial)), default=0)


def replay_after(folder: Path) -> int | None:
    """For a checkpoint marked for replay: the last epoch the trial's result.json held when
    resume marked it (the trial reports the epochs after it again); None if not marked. A
    marker without a number (an older hpo's): -1, every epoch the checkpoint holds (an older
    hpo's checkpoint holds its own only)."""
    marker = folder / REPLAY_MARKER
    if not marker.is_file():
        return None
    try:
        return int(marker.read_text(errors="replace").strip() or "-1")
    except ValueError:
        return -1


def end_cut_lines(trial: Path) -> None:
    """End the last line of the trial's result.json and progress.csv if a kill or a full disk
    cut it short. Ray copies them back and appends to them when the trial goes on: the line it
    adds (an epoch run again, or replayed) would be glued to the cut one and lost with it
    (CI: epochs 1, 2, 3, 5, 6 after a full disk). Files only, never through a link."""
    for name in (RESULT_FILE, PROGRESS_FILE):
        path = trial / name
        if not path.is_file() or path.is_symlink() or path.stat().st_size == 0:
            continue
        with open(path, "rb+") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _whole(candidate: Path, lost: Path) -> bool:
    """A checkpoint to put in the lost one's place: another plain folder whose file matches
    its seal (a full disk can leave a newer one cut short beside it), or, for a trainable
    that writes no CHECKPOINT_FILE (tests' fake ones), any other plain folder. Its seal, not
    result.json: a resume that went on from an older state reuses checkpoint names, and the
    line of the killed run that wrote this one can be lost while an older run's line for the
    same name is still there (CI: `checkpoint_000000/trainer.pt: missing`). The copy is marked
    for replay, and is checked against the seal from then on anyway."""
    if candidate == lost or not _plain(candidate):
        return False
    pt, seal_file = candidate / CHECKPOINT_FILE, candidate / DIGEST_FILE
    if not (pt.exists() or seal_file.exists()):
        return True
    return pt.is_file() and seal_file.is_file() and digest(pt) == _sealed(candidate)


def _plain(folder: Path) -> bool:
    """A real folder (not a link) that holds only regular files."""
    return (
        folder.is_dir()
        and not folder.is_symlink()
        and all(p.is_file() and not p.is_symlink() for p in folder.iterdir())
    )


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
