"""Where experiments live: a folder (local, or shared by every node of a cluster), or an
S3-compatible bucket, `s3://bucket/prefix?endpoint_override=http://host:9000`.

Ray writes trials, checkpoints and its state straight to the storage, through pyarrow. hpo
keeps working on a plain local folder for its own files and readers: for a bucket, a mirror
of the experiment under ~/.cache/hpo/storage/, with everything but the checkpoints pulled
before it is read and hpo's files (the record, TensorBoard) pushed after they are written
(docs/architecture.md, "Storage"). The mirror's root holds the bucket's URI in REMOTE_FILE, so
any experiment folder under it knows where it lives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

MIRRORS = Path.home() / ".cache" / "hpo" / "storage"
REMOTE_FILE = ".hpo-remote"
SCHEMES = ("s3",)
CHECKPOINT_PREFIX = "checkpoint_"


def is_remote(storage: str) -> bool:
    return urllib.parse.urlsplit(storage).scheme in SCHEMES


def check(storage: str) -> str | None:
    """What is wrong with a --storage value, or None."""
    scheme = urllib.parse.urlsplit(storage).scheme
    if "://" in storage and scheme not in SCHEMES:
        return (
            f"--storage {storage}: {scheme}:// is not supported (a folder, or s3://bucket/prefix)"
        )
    if is_remote(storage):
        try:
            fs, path = filesystem(storage)
        except Exception as e:  # a malformed URI, an unknown option
            return f"--storage {storage}: {_first_line(e)}"
        return _check_bucket(storage, fs, path.split("/")[0])
    return None


def check_writable(storage: str) -> str | None:
    """What keeps a new experiment from being written in a storage folder, or None: the
    folder (or, if it is not there yet, the nearest folder above it, where it would be made)
    must take a new folder. Tried with a temporary folder that is removed again at once."""
    if is_remote(storage):
        return None  # the bucket was checked by `check`; Ray writes there
    folder = Path(storage).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        return f"--storage {storage}: {existing} is not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hpo-probe-", dir=existing))
    except OSError as e:
        return f"--storage {storage}: {existing} does not take new folders ({e.strerror or e})"
    return None


BUCKET_TIMEOUT_S = 20.0  # pyarrow retries a refused connection for about 6 s


def _check_bucket(storage: str, fs: Any, bucket: str) -> str | None:
    """The bucket must exist and answer within BUCKET_TIMEOUT_S: before anything is written,
    here or in the bucket, rather than after Ray has started."""
    from pyarrow import fs as pafs

    from tune.core.deadline import within

    try:
        answered, info = within(BUCKET_TIMEOUT_S, lambda: fs.get_file_info(bucket))
    except Exception as e:  # refused, unknown host, no credentials
        return f"--storage {storage}: cannot be reached ({_first_line(e)})"
    if not answered:
        return f"--storage {storage}: the endpoint did not answer within {BUCKET_TIMEOUT_S:g} s"
    if info is None or info.type == pafs.FileType.NotFound:
        return f"--storage {storage}: bucket '{bucket}' does not exist (create it first)"
    return None


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def root(storage: str) -> Path:
    """The local folder that experiments of `storage` are in: the folder itself, or the
    bucket's mirror (made, with its REMOTE_FILE, on first use)."""
    if not is_remote(storage):
        return Path(storage).expanduser().resolve()
    key = hashlib.sha256(storage.encode()).hexdigest()[:16]
    mirror = MIRRORS / key
    mirror.mkdir(parents=True, exist_ok=True)
    (mirror / REMOTE_FILE).write_text(storage + "\n")
    return mirror


def folders_in(storage: str, holding: str) -> list[str]:
    """The names of the folders directly in the storage (a folder, or a bucket's prefix) that
    hold a file `holding`, sorted; hidden ones (.trash) left out."""
    if not is_remote(storage):
        folder = root(storage)
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if (p / holding).is_file()]
        return sorted(n for n in found if not n.startswith("."))
    from pyarrow import fs as pafs

    fs, base = filesystem(storage)
    try:
        folders = fs.get_file_info(pafs.FileSelector(base, recursive=False))
    except FileNotFoundError:
        return []
    names = [i.base_name for i in folders if i.type == pafs.FileType.Directory]
    names = [n for n in names if not n.startswith(".")]
    files = fs.get_file_info([f"{base}/{n}/{holding}" for n in names])
    return sorted(n for n, i in zip(names, files, strict=True) if i.type == pafs.FileType.File)


def remote_of(folder: Path) -> str | None:
    """The bucket URI of an experiment folder that is a mirror, else None."""
    parts: list[str] = []
    for here in (folder, *folder.parents):
        marker = here / REMOTE_FILE
        if marker.is_file():
            return join(marker.read_text().strip(), *reversed(parts))
        parts.append(here.name)
    return None


def ray_path(folder: Path) -> str:
    """The experiment's location as Ray reads and writes it: the folder, or its bucket URI."""
    return remote_of(folder) or str(folder)


def join(uri: str, *names: str) -> str:
    """`s3://b/prefix?opts` + `NAME` -> `s3://b/prefix/NAME?opts` (the options stay last)."""
    parts = urllib.parse.urlsplit(uri)
    path = "/".join([parts.path.rstrip("/"), *names])
    return urllib.parse.urlunsplit(parts._replace(path=path))


def filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's filesystem and path for a URI (credentials from the usual AWS variables)."""
    from pyarrow import fs as pafs

    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, str(path)


def pull(folder: Path, checkpoints_of: str | None = None) -> None:
    """Bring a mirror up to date with its bucket: every file but the checkpoints (which only
    Ray and the trials read), or with `checkpoints_of` (a trial folder's name) also that
    trial's (what `hpo export` and confirm's registration read). A no-op for a plain folder."""
    remote = remote_of(folder)
    if remote is None:
        return
    from pyarrow import fs as pafs

    fs, base = filesystem(remote)
    try:
        found = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except FileNotFoundError:
        return
    for info in found:
        relative = info.path[len(base) :].lstrip("/")
        wanted = checkpoints_of is not None and relative.startswith(f"{checkpoints_of}/")
        if info.type != pafs.FileType.File or (_in_checkpoint(relative) and not wanted):
            continue
        target = folder / relative
        if _unchanged(target, info):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(target, "wb") as dst:
            dst.write(src.read())


def push(folder: Path, *relative: str) -> None:
    """Upload hpo's own files (`relative` to the experiment folder: files or folders) from a
    mirror to its bucket. A no-op for a plain folder."""
    remote = remote_of(folder)
    if remote is None:
        return
    fs, base = filesystem(remote)
    for name in relative:
        local = folder / name
        paths = [p for p in local.rglob("*") if p.is_file()] if local.is_dir() else [local]
        for path in paths:
            if not path.is_file():
                continue
            target = f"{base}/{path.relative_to(folder).as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(target) as dst:
                dst.write(path.read_bytes())


def _unchanged(target: Path, info: Any) -> bool:
    """Pulled already, and not written in the bucket since: same size, not newer."""
    if not target.is_file() or info.size is None or info.mtime is None:
        return False
    local = target.stat()
    return bool(local.st_size == info.size and local.st_mtime >= info.mtime.timestamp())


def _in_checkpoint(relative: str) -> bool:
    return any(part.startswith(CHECKPOINT_PREFIX) for part in relative.split("/")[:-1])
