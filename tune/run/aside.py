"""--overwrite: the experiment already in a folder is moved into `.trash/` beside it, only
after every check of the new one passed; put back if the new one fails to start, and its MLflow
runs soft-deleted once the new one has started. hpo moves only what it made: a folder without
an hpo record, a link, or one whose MLflow runs belong to another experiment is refused."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tune.core.errors import InputError, Problem, UsageError
from tune.run.process import RunOptions, preflight
from tune.space.spec import SweepSpec
from tune.store import records, storage
from tune.store.records import ExperimentRecord
from tune.store.runs import delete_sweep_runs, foreign_run


@dataclass(frozen=True)
class Aside:
    """--overwrite: an old experiment moved out of the way (into `.trash/` beside it) until the
    new one has started; its MLflow runs are soft-deleted only then, and a failed start puts
    everything back. Like MLflow's own delete, nothing is destroyed: `.trash/` is the user's to
    empty."""

    folder: Path  # where the experiment was, and the new one goes
    trash: Path  # where it is now
    found: tuple[ExperimentRecord, ...]  # its records (its confirm run's too): their MLflow runs


def replaceable(folder: Path) -> tuple[ExperimentRecord, ...]:
    """The records of an experiment --overwrite may move aside. Refused (exit 2) for a folder
    without an hpo record, and for a record that cannot be read, whose MLflow runs would
    otherwise stay active for a new sweep of that folder to pick up."""
    if not records.exists(folder):
        raise InputError(
            str(folder),
            [
                Problem(
                    "",
                    "exists but holds no hpo experiment; hpo deletes only what it made",
                    "move it away yourself, or use --name NEW",
                )
            ],
        )
    if folder.is_symlink():
        raise InputError(
            str(folder),
            [
                Problem(
                    "",
                    f"is a link to {folder.resolve()}",
                    "move it away yourself, or use --name NEW",
                )
            ],
        )
    found = {f: records.load(f) for f in (folder, records.confirm_dir(folder)) if records.exists(f)}
    for where, record in found.items():
        run_id = record.parent_run_id
        if run_id and (foreign := foreign_run(record.tracking_uri, run_id, where)):
            # Its runs would be soft-deleted with it: they are another experiment's.
            raise InputError(
                str(where / records.RECORD_FILE),
                [Problem("", foreign, "move this folder away yourself, or use --name NEW")],
            )
    return tuple(found.values())


def set_aside(folder: Path, spec: SweepSpec, options: RunOptions) -> Aside | None:
    """--overwrite: check that the experiment in `folder` may be replaced, run the pre-flight
    checks of the new one (`spec`), and only then move the old one aside, saying where to.
    None: no folder."""
    if not folder.exists():
        return None
    if storage.remote_of(folder) is not None:
        raise UsageError(
            f"--overwrite: not supported yet for an experiment in a bucket "
            f"({storage.remote_of(folder)}); use --name NEW"
        )
    found = replaceable(folder)
    preflight(spec, options, folder.parent)
    aside = move_aside(folder, found)
    print(f"hpo: the earlier {folder.name} is now in {aside.trash} (delete it when sure)")
    return aside


def move_aside(folder: Path, found: tuple[ExperimentRecord, ...]) -> Aside:
    """Move the experiment in `folder` (whose records are `found`) into `.trash/` beside it."""
    trash = folder.parent / ".trash" / f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    trash.parent.mkdir(exist_ok=True)
    os.rename(folder, trash)
    return Aside(folder, trash, found)


def put_back(aside: Aside) -> None:
    """A failed start: remove what it made in the folder, and the old experiment returns."""
    if aside.folder.exists():
        shutil.rmtree(aside.folder)
    os.rename(aside.trash, aside.folder)


def discard_runs(aside: Aside) -> None:
    """The new experiment started: soft-delete the old one's MLflow runs (MLflow's `gc` or UI
    can still bring them back)."""
    for record in aside.found:
        if record.parent_run_id:
            delete_sweep_runs(record.tracking_uri, record.parent_run_id)
