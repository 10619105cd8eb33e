"""SIGTERM handled as Ctrl+C, and a step that a signal does not cut in half: real signals sent
to this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tune.core import signals


@pytest.fixture
def restored() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in handlers.items():
        signal.signal(s, handler)
    signals._received.clear()


def test_sigterm_is_raised_as_ctrl_c_and_remembered(restored: None) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signals.handle_sigterm()
    assert not signals.terminated()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # let the handler run here, in the main thread
    assert signals.terminated()


def test_a_signal_within_deferred_is_noted_not_raised(restored: None) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with signals.deferred() as stopped:
        assert not stopped()
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
        assert stopped()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_ended_puts_back_the_handler_ray_left_in_place(restored: None) -> None:
    before = signals.fit_starts()

    def rays_flag_only(signum: int, frame: object) -> None:
        pass

    signal.signal(signal.SIGINT, rays_flag_only)  # fit() is over: no signal reached it
    assert signals.fit_ended(before) is False
    assert signal.getsignal(signal.SIGINT) is before
    # Ray puts `before` back itself when a signal comes: then fit() was stopped.
    assert signals.fit_ended(before) is True


# A process that runs `hpo list` through the `hpo` entry point (tune.cli.run) with hpo's SIGTERM
# handler in place, and whose later exit handler (Ray's shutdown stands for it) is hit by a
# SIGTERM: the command's work is done, but it was asked to stop.
TERMINATED_AT_EXIT = """
import atexit, os, signal, sys
from tune import cli
from tune.core import signals

def shutdown():  # registered after tune's own handler, so run before it, as Ray's is
    os.kill(os.getpid(), signal.SIGTERM)
    signal.sigtimedwait([], 0)

atexit.register(shutdown)
signals.handle_sigterm()
sys.exit(cli.run(["list", "--storage", sys.argv[1]]))
"""


def test_a_sigterm_during_the_exit_still_exits_143(tmp_path: Path) -> None:
    """It exited 0 ("Exception ignored in atexit callback: KeyboardInterrupt") before."""
    done = subprocess.run(
        [sys.executable, "-c", TERMINATED_AT_EXIT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 143, done.stdout + done.stderr
    assert "no experiments in" in done.stdout  # the command's output, flushed before the exit
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr


def test_a_sigterm_that_another_sigint_handler_swallowed_still_ends_the_command_143(
    restored: None, tmp_path: Path
) -> None:
    """A library's own SIGINT handler (one that only sets a flag) held SIGINT when the SIGTERM
    came: the command ran on to its end. It returned 0 before."""
    from tune import cli

    signals.handle_sigterm()
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.sigtimedwait([], 0)
    assert cli.main(["list", "--storage", str(tmp_path)]) == 143
