"""SIGTERM stops a run as Ctrl+C does.

`kill`, systemd, Kubernetes and Slurm send SIGTERM; Ray's own handler would exit at once
(`sys.exit(15)`), skipping Tune's last snapshot and leaving MLflow's parent run FAILED. hpo turns
SIGTERM into SIGINT instead: during fit() that is Ray Tune's graceful stop (a last snapshot,
trials PENDING for `hpo resume`), before it a KeyboardInterrupt. The run then ends KILLED with
the resume hint, and the command exits 143 (128 + 15), as shells expect of SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

_received = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.set()
    signal.raise_signal(signal.SIGINT)


def handle_sigterm() -> None:
    """Install the handler (after `ray.init`, which installs its own); main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def fit_starts() -> Any:
    """Before Tuner.fit(): the SIGINT handler that fit() will replace with Ray's."""
    return signal.getsignal(signal.SIGINT)


def fit_ended(before: Any) -> bool:
    """After Tuner.fit(), however it ended: whether a SIGINT (or a SIGTERM, turned into one)
    reached it. The handler `before` is put back: Ray's, which only sets a flag for the loop
    that is over, would swallow a signal from now on, and the command would go on (its
    summary, a confirm run's report) and exit 0.

    Ray's handler puts `before` back itself when a signal comes (Ray 2.60, tune.tune:
    _setup_signal_catching); it installs none off the main thread or when told not to."""
    if threading.current_thread() is not threading.main_thread() or int(
        os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0")
    ):
        return terminated()
    stopped = signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, before if before is not None else signal.default_int_handler)
    return stopped or terminated()


@contextmanager
def deferred() -> Iterator[Callable[[], bool]]:
    """Within: a SIGINT (or SIGTERM) is noted, not raised, so the step in it ends whole; the
    function it gives says whether one came. Off the main thread: whether SIGTERM came."""
    if threading.current_thread() is not threading.main_thread():
        yield terminated
        return
    noted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: noted.set())
    try:
        yield noted.is_set
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )


def terminated() -> bool:
    """Whether this process was asked to stop with SIGTERM."""
    return _received.is_set()


def _note_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.set()


def exiting() -> None:
    """From the command's return to the process's end (atexit: Ray's shutdown, MLflow's, the
    threads' joins), a SIGTERM is noted, not raised: a KeyboardInterrupt there is ignored
    ("Exception ignored in atexit callback") and the process would exit 0 though it was asked
    to stop. `_exit_code`, the last exit handler, turns the note into exit 143."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _note_sigterm)
        _exiting.set()


_exiting = threading.Event()


def _exit_code() -> None:
    """The last exit handler (registered when this module is first imported, before Ray or
    MLflow register theirs): a process that `exiting()` and was terminated on the way out
    exits 143, as a shell expects of SIGTERM."""
    if _exiting.is_set() and terminated():
        for stream in (sys.stdout, sys.stderr):
            # A reader gone, a stream closed: nothing more to save.
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(143)


atexit.register(_exit_code)
