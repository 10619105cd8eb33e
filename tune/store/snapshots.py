"""Ray's experiment snapshot kept whole: a last good copy, put back by a resume if needed.

Ray saves its experiment state (trials, searcher, callback states) in a staging folder and then
copies it into the storage, overwriting the files in place. A disk that fills up during that
copy leaves them cut short, and a resume then fails inside Ray (KeyError in the variant
generator, a JSON error) although every checkpoint is fine. (Since tune/run/uploads.py, the copy
into a local folder writes each file whole; a folder an older hpo wrote may still hold a cut one.) `SnapshotBackup` copies the set of
state files into `.hpo-snapshot/` each time Ray is about to save a new one (the last one has
been copied into the storage by then), if every file of it reads back whole; `repair` puts the
set back before a resume when any file in the folder does not (docs/architecture.md,
"The run path").
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

from ray import tune as ray_tune

from tune.core.files import write_atomic

BACKUP_DIR = ".hpo-snapshot"
JSON_STATES = ("experiment_state-*.json",)
PICKLED_STATES = (  # Ray writes these with cloudpickle, whatever their names say
    "basic-variant-state-*.json",
    "search_gen_state-*.json",
    "searcher-state-*.pkl",
    "callback-states-*.pkl",
)


def state_files(folder: Path) -> list[Path]:
    return sorted(p for pattern in (*JSON_STATES, *PICKLED_STATES) for p in folder.glob(pattern))


def whole(path: Path) -> bool:
    """Whether a state file reads back whole. (Only the driver of this experiment and `hpo
    resume` call this: the folder is trusted, as Ray's own restore trusts it.)"""
    try:
        data = path.read_bytes()
        if any(path.match(p) for p in JSON_STATES):
            json.loads(data)
        else:
            pickle.loads(data)
    except Exception:  # cut short: JSON's or pickle's error, whichever
        return False
    return True


def backup(folder: Path) -> bool:
    """Copy the folder's state files into BACKUP_DIR if all of them read back whole (else the
    last good copy stays); whether it copied."""
    files = state_files(folder)
    if not files or not all(whole(p) for p in files):
        return False
    target = folder / BACKUP_DIR
    try:
        target.mkdir(exist_ok=True)
        for old in set(target.iterdir()) - {target / p.name for p in files}:
            old.unlink()  # a file of a session before: the set is this snapshot's
        for path in files:
            write_atomic(target / path.name, path.read_bytes())
    except OSError:
        return False  # a full disk: the old copy, or what was copied, stays until next time
    return True


def repair(folder: Path) -> list[str]:
    """If a state file in the folder is cut short or gone and the last good copy is whole, put
    the whole copy back (one snapshot older, consistent in itself); the names put back."""
    saved = folder / BACKUP_DIR
    copies = state_files(saved) if saved.is_dir() else []
    present = {p.name for p in state_files(folder)}
    damaged = [p for p in state_files(folder) if not whole(p)]
    missing = [c for c in copies if c.name not in present]
    if not (damaged or missing) or not copies or not all(whole(c) for c in copies):
        return []
    for path in state_files(folder):
        if path.name not in {c.name for c in copies}:
            path.unlink()  # of the damaged snapshot only: the copy is the whole set
    for copy in copies:
        shutil.copyfile(copy, folder / copy.name)
    return [c.name for c in copies]


class SnapshotBackup(ray_tune.Callback):
    """Ray asks every callback for its state when it saves a snapshot: that is when the last
    one is in the storage, and is copied. Saves no state of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_state(self) -> dict[str, Any] | None:
        backup(self.folder)
        return None
