"""One writer per experiment: a lock file beside its folder (docs/architecture.md, "The record")."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from tune.core.errors import InUseError

RECORD_FILE = "hpo_sweep.json"  # an experiment's record (tune/store/records.py)
CONFIRM_DIR = "confirm"  # in a sweep's folder: its `hpo confirm` run, an experiment too


@contextlib.contextmanager
def lock(folder: Path) -> Iterator[None]:
    """One writer per experiment: an exclusive flock on `.NAME.lock` beside the folder (it may
    not exist yet), held while the block runs. A confirm run shares its sweep's lock. The kernel
    drops the lock when its process dies, so a crashed run never blocks the next. A second
    process gets InUseError naming the holder. If the block leaves no experiment behind (a
    refusal before anything started), the lock file, and the storage folder if this made it
    and it is empty, are removed again: nothing written."""
    confirm = folder.name == CONFIRM_DIR and (folder.parent / RECORD_FILE).is_file()
    target = folder.parent if confirm else folder
    made = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            raise InUseError(f"experiment {target.name} is in use by {holder}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
        try:
            yield
        finally:
            # Only a refusal leaves no experiment: clean up while the lock is still held.
            if not target.exists():
                path.unlink(missing_ok=True)
                if made:
                    with contextlib.suppress(OSError):
                        target.parent.rmdir()  # only when empty
    finally:
        os.close(fd)
