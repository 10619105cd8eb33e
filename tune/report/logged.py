"""The report's files as artifacts of the sweep's MLflow parent run, made ready while the report
is drawn.

Loading MLflow and opening its store takes 2-3 s, as long as drawing the report; on a machine
with two CPUs the two go side by side: a second process (forked: it starts at once and needs
nothing sent) checks the store and the parent run while this one writes the files, then logs
them. A process that runs other threads (Ray's, after a confirm run) is not forked, since a
lock one of them held would stay held in the copy: there the same steps run here, one after
the other. Either way the answer is the same `Outcome`.

The checks, in order: a parent run and a store on this machine (`absent_store`: a SQLite store
is never created for a report), a store that answers in time (check_tracking_uri), and a parent
run that is this experiment's own (`foreign_parent`: a folder copied from another experiment
names the original's run).
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tune.report.write import Report, absent_store, foreign_parent, log_report
from tune.store.records import ExperimentRecord
from tune.store.tracking_uri import check_tracking_uri


@dataclass(frozen=True)
class Outcome:
    skipped: str | None = None  # why nothing was logged, and that is no failure
    error: str | None = None  # why logging failed


def check(record: ExperimentRecord, experiment_dir: Path) -> Outcome | None:
    """Why the report cannot or must not be logged, or None when it can."""
    if (absent := absent_store(record)) is not None:
        return Outcome(skipped=absent)
    if (error := check_tracking_uri(record.tracking_uri)) is not None:
        return Outcome(error=error)
    try:
        if (foreign := foreign_parent(record, experiment_dir)) is not None:
            return Outcome(skipped=foreign)
    except Exception as e:  # the store answered with an error
        return Outcome(error=f"{type(e).__name__}: {e}")
    return None


def logged(report: Report, experiment_dir: Path) -> Outcome:
    """Check, then log, here, one after the other."""
    found = check(report.record, experiment_dir)
    return found if found is not None else Outcome(error=log_report(report))


class Logger:
    """`start` it before the report is drawn; `finish` with the report once it is written."""

    def __init__(self, record: ExperimentRecord, experiment_dir: Path) -> None:
        self.experiment_dir = experiment_dir
        self.conn: Connection | None = None
        self.process: Any = None
        if threading.active_count() == 1:
            ours, theirs = multiprocessing.Pipe()
            context = multiprocessing.get_context("fork")
            self.process = context.Process(
                target=_second_process, args=(theirs, record, experiment_dir), daemon=True
            )
            self.process.start()
            theirs.close()
            self.conn = ours

    def finish(self, report: Report | None) -> Outcome:
        """Log `report` (None: it was not written; the second process is told to stop)."""
        if self.conn is None:
            return logged(report, self.experiment_dir) if report else Outcome()
        try:
            found: Outcome | None = self.conn.recv()
            if found is None:
                self.conn.send(report)
                found = self.conn.recv() if report else Outcome()
        except (EOFError, OSError):  # it died: do it here instead
            found = logged(report, self.experiment_dir) if report else Outcome()
        finally:
            self.conn.close()
            self.process.join(timeout=10)
        return found or Outcome()


def _second_process(conn: Connection, record: ExperimentRecord, experiment_dir: Path) -> None:
    # Ctrl+C reaches the whole process group: the first process answers it, this one goes with
    # it (a daemon), without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        found = check(record, experiment_dir)
        conn.send(found)
        if found is None and (report := conn.recv()) is not None:
            conn.send(Outcome(error=log_report(report)))
    except (EOFError, OSError):  # the first process is gone
        pass
    finally:
        conn.close()
