"""Which experiments this machine's hpo started: a keyed seal in the record.

Continuing an experiment means Ray's Tuner.restore, which unpickles the folder's saved state:
whatever a crafted `tuner.pkl` says runs. `hpo resume` does it because the user asked for it
by name. `hpo confirm` continues an unfinished confirm run on its own, so it does so only for
a run that hpo started on this machine: its record carries an HMAC of the folder's real path
and start time, keyed with a secret that never leaves `~/.cache/hpo/key`. A folder from
someone else (or moved, or copied) cannot carry a valid seal; for it, `hpo confirm` says to
run `hpo resume` if the folder is trusted (docs/architecture.md, "A received folder").
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = Path.home() / ".cache" / "hpo" / "key"
KEY_BYTES = 32


def _key() -> bytes:
    """This machine's secret, made on first use (readable by its owner only)."""
    with contextlib.suppress(FileNotFoundError):
        key = KEY_FILE.read_bytes()
        if len(key) == KEY_BYTES:
            return key
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = KEY_FILE.with_name(f".key.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(KEY_BYTES))
    try:
        os.link(partial, KEY_FILE)  # fails if another process made the key first: use that one
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return KEY_FILE.read_bytes()


def seal(folder: Path, started: str) -> str:
    """The seal of the experiment that started at `started` in `folder`, on this machine."""
    message = f"{folder.resolve()}\n{started}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def started_here(folder: Path, started: str, sealed: str) -> bool:
    """Whether `sealed` is the seal hpo on this machine gave the experiment in `folder`."""
    return bool(sealed) and hmac.compare_digest(sealed, seal(folder, started))
