"""Writing a file whole or not at all.

Every file hpo writes for later (the record, the report's files) is written under a temporary
name in the same folder, flushed to disk, and renamed into place: a kill, a power cut or a full
disk leaves the old file or the new one, never half of one. A failure names the file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomic(path: Path, data: str | bytes) -> Path:
    raw = data.encode() if isinstance(data, str) else data
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from e
    return path
