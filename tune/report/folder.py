"""The report folder, and what hpo may write and delete in it.

A report folder may be the user's own (`--out`) or come with a received experiment, so nothing
here trusts it: the folder and its plots/ must be real folders, not links, and only the names
hpo writes (WRITTEN), listed in MARKER by the previous report, are ever replaced or deleted.
"""

from __future__ import annotations

import re
from pathlib import Path

from tune.core.errors import InputError, Problem, show
from tune.core.files import UnreadableFile, inside, load_json
from tune.store import records

MARKER = ".hpo-report.json"  # in a report folder: the files hpo wrote there, nothing else
MARKER_LIMIT = 1_000_000  # bytes; a report lists a few dozen names
# The only names hpo writes in a report folder, so the only ones it replaces or deletes there.
WRITTEN = re.compile(r"(report\.md|report\.html|trials\.csv|best_config\.yaml|plots/[\w.-]+\.png)")


def report_folder(experiment_dir: Path, out: Path | None) -> Path:
    """Where the report goes: `out` (the user's own folder, as given), else the experiment's
    report/. The folder hpo writes into, and its plots/, must be real folders, not links (a
    received experiment's report/ could lead anywhere), and the default one must lie inside
    the experiment; InputError (exit 2) otherwise, before anything is written."""
    folder = out.absolute() if out is not None else records.report_dir(experiment_dir)
    source = f"--out {out}" if out is not None else str(folder)
    if out is None and (folder.is_symlink() or inside(experiment_dir, records.REPORT_DIR) is None):
        raise InputError(source, [Problem("", "is a link", "a folder inside the experiment")])
    for path in (folder, folder / "plots"):
        check_real_folder(path, str(path))
    return folder


def check_real_folder(path: Path, source: str) -> None:
    """A folder hpo writes into must be one, or not exist yet: not a link, not a file."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        what = "a link" if path.is_symlink() else "not a folder"
        raise InputError(source, [Problem("", f"is {what}", "a folder hpo writes into")])


def claim(folder: Path, default: bool) -> list[Path]:
    """The files hpo wrote in the report folder last time (to remove those the new report
    does not write again: a hyperparameter that no longer varies must not keep its old plot).
    Only names hpo writes (WRITTEN) that are files in the folder count; a listing that names
    anything else (an absolute path, `..`, a link) is refused, as is a folder given with
    --out that holds files hpo did not write: hpo neither deletes nor uploads a user's files."""
    listed = folder / MARKER
    if listed.exists() or listed.is_symlink():
        try:
            if listed.is_symlink():
                raise UnreadableFile("a link")
            names = load_json(listed, MARKER_LIMIT, 1)
        except UnreadableFile as e:
            raise InputError(
                str(listed), [Problem("", f"cannot be read: {e}", FIX_MARKER)]
            ) from None
        if not isinstance(names, list):
            raise InputError(str(listed), [Problem("", "is not a list of names", FIX_MARKER)])
        return [_written(folder, listed, n) for n in names]
    if default:
        # A report of hpo before the marker: its plots, never a link.
        return [p for p in (folder / "plots").glob("*.png") if not p.is_symlink()]
    if folder.exists() and any(folder.iterdir()):
        raise InputError(
            f"--out {folder}",
            [
                Problem(
                    "",
                    "holds files hpo did not write",
                    "a new or empty folder, or one hpo wrote a report into before",
                )
            ],
        )
    return []


FIX_MARKER = "the names of the files hpo wrote; remove the report folder to start afresh"


def _written(folder: Path, listed: Path, name: object) -> Path:
    """A name from the listing, as a path that is safe to replace or delete: one hpo writes,
    inside the folder, and not a link."""
    path = inside(folder, name) if isinstance(name, str) and WRITTEN.fullmatch(name) else None
    if path is None or path.is_symlink():
        raise InputError(
            str(listed),
            [Problem("", f"names {show(name)}, not a file hpo writes in {folder}", FIX_MARKER)],
        )
    return path
