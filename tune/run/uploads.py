"""Ray's copy of the driver's files into a local experiment folder, never cutting one short.

Ray (2.60) keeps the driver's files (its experiment state, each trial's result.json,
progress.csv and params) in a staging folder and copies the whole folder into the storage every
few seconds, overwriting each file in place (pyarrow's `copy_files`). A driver killed during
that copy leaves the file being copied cut short, and a trial that had finished is never run
again to write it anew: its result.json lost its whole history. `install` replaces that copy,
for a local folder, with one that writes only what changed:

- a file that grew (result.json and progress.csv only ever do) gets its new bytes appended: a
  kill can cut only the line being added, which every reader of result.json allows for;
- any other file (Ray's state) is written under a temporary name and renamed into place
  (`core.files.write_atomic`): the old file or the new one. On a full disk the old one stays,
  and `last_failure` says so: the folder then holds an older state than the sweep ended with
  (its trials still running there, which `hpo resume` continues), and the run path reports the
  sweep failed rather than interrupted.

A bucket is left to Ray: an object there appears only once its upload is complete.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from tune.core.files import write_atomic

_failed: list[OSError] = []  # the last upload's error, if it failed (one sweep a process)


def install() -> None:
    """From now on, in this process, Ray's uploads into a local folder never cut a file short.
    Called as each run starts: forgets an earlier run's failure."""
    from ray.train._internal import storage as ray_storage

    _failed.clear()
    rays = ray_storage._upload_to_fs_path
    if getattr(rays, "__wrapped__", None) is not None:
        return  # installed already

    @functools.wraps(rays)
    def upload(local_path: str, fs: Any, fs_path: str, exclude: list[str] | None = None) -> None:
        import pyarrow.fs

        # `exclude` is the trial workers' artifact sync, never the driver's folder.
        if exclude or not isinstance(fs, pyarrow.fs.LocalFileSystem):
            rays(local_path=local_path, fs=fs, fs_path=fs_path, exclude=exclude)
            return
        _failed.clear()
        try:
            upload_whole(Path(local_path), Path(fs_path))
        except OSError as e:
            _failed.append(e)
            raise

    # The syncer looks the function up by this name each time it starts a copy.
    ray_storage._upload_to_fs_path = upload


def last_failure() -> OSError | None:
    """Why the last copy into the folder failed, if it did: Ray's final copy, once fit()
    returned (it waits for that one)."""
    return _failed[-1] if _failed else None


def upload_whole(source: Path, target: Path) -> None:
    """Copy a file to `target`, or a folder's files into the folder `target`, each one
    written whole; a file whose bytes are there already is not written again."""
    if source.is_file():
        _copy(source, target, target.parent)
        return
    files = [p.relative_to(source) for p in source.rglob("*") if p.is_file()]
    # The trials' files first, Ray's state (the folder's own files) last: a kill in between
    # leaves a state that is never ahead of a trial's result.json, whose line for the
    # checkpoint the state names is then there to check it against (tune/store/checkpoints.py).
    for name in sorted(files, key=lambda p: (len(p.parts) == 1, p)):
        _copy(source / name, target / name, target)


def _copy(path: Path, dest: Path, root: Path) -> None:
    _folders(dest.parent, root)
    data = path.read_bytes()
    old = dest.read_bytes() if dest.is_file() and not dest.is_symlink() else None
    if old is not None and data.startswith(old):
        if len(data) > len(old):
            _append(dest, data[len(old) :])
        return
    # Not flushed to disk: Ray's own copy never is, and this one runs every few seconds, each
    # flush a wait in the middle of the sweep.
    write_atomic(dest, data, sync=False)


def _append(dest: Path, data: bytes) -> None:
    """Append to the regular file `dest` (a link there is never followed)."""
    fd = os.open(dest, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _folders(folder: Path, root: Path) -> None:
    """Make `folder` and the folders between it and `root`, refusing any of them that is a
    link: a folder someone sent may hold one that leads out of it."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in (folder, *folder.parents):
        if part == root or root not in part.parents:
            break
        if part.is_symlink():
            raise OSError(f"cannot write into {part}: it is a link")
