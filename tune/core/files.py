"""Writing a file whole or not at all, and reading one from a folder that may not be ours.

Every file hpo writes for later (the record, the report's files) is written under a fresh
temporary name in the same folder, flushed to disk, and renamed into place: a kill, a power
cut or a full disk leaves the old file or the new one, never half of one. A failure names the
file.

An experiment folder may come from someone else (docs/architecture.md, "A received folder"):
what hpo reads from it goes through `inside` (a name that stays in the folder once every link
is followed) and `read_bounded` (a regular file of at most a given size, opened without
waiting on a FIFO), so a crafted folder can neither point hpo at another file nor make it
hang or fill the memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO


def write_atomic(path: Path, data: str | bytes, sync: bool = True) -> Path:
    """`sync=False` skips the flush to disk: the file is still whole after a kill, not after
    a power cut (for copies made every few seconds, whose original is elsewhere)."""
    raw = data.encode() if isinstance(data, str) else data
    partial: str | None = None
    try:
        # mkstemp creates a new file (O_EXCL): a link planted under the temporary name is
        # never followed.
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(raw)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(partial, path)  # replaces a link at `path` itself, never its target
    except OSError as e:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from e
    return path


OUTSIDE = "a link that leads out of the experiment folder"


class UnreadableFile(Exception):
    """A file hpo will not read: not a regular file, too large, not JSON, or gone. The message
    says why, to follow "cannot be read: "."""


def inside(root: Path, relative: Any) -> Path | None:
    """`root / relative` if `relative` is a plain relative path (no `..`, not absolute) that
    stays within `root` once every symbolic link is followed; else None (a link loop too)."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        return None
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts:
        return None
    path = root / rel
    try:
        base = root.resolve(strict=True)
        real = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a link loop (Python 3.11)
        return None
    return path if real == base or base in real.parents else None


@contextlib.contextmanager
def _regular(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The open file and its size, if `path` is a regular file; UnreadableFile otherwise.
    Opened non-blocking, so a FIFO or a device never makes hpo wait."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise UnreadableFile(str(e.strerror or e)) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file")
        yield f, info.st_size


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UnreadableFile otherwise."""
    with _regular(path) as (f, size):
        if size > limit:
            raise UnreadableFile(f"{_size(size)}, more than the {_size(limit)} hpo reads")
        data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise UnreadableFile(f"more than the {_size(limit)} hpo reads")
    return data


def read_tail(path: Path, size: int) -> bytes:
    """The last `size` bytes of a regular file (all of a shorter one); UnreadableFile if it is
    not one."""
    with _regular(path) as (f, total):
        f.seek(max(0, total - size))
        return f.read(size)


def load_json(path: Path, limit: int, depth: int) -> Any:
    """A JSON file of at most `limit` bytes, nested at most `depth` levels; UnreadableFile
    (with the reason) for anything else."""
    text = read_bounded(path, limit)
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnreadableFile(f"nested more than {depth} levels deep") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UnreadableFile(f"not JSON ({str(e)[:100]})") from None
    if nesting(value) > depth:
        raise UnreadableFile(f"nested more than {depth} levels deep")
    return value


def nesting(value: Any) -> int:
    """How deep lists and mappings are nested in a JSON value (a scalar: 0); no recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n} bytes"
