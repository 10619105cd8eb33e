"""SIGTERM handled as Ctrl+C, and a step that a signal does not cut in half: real signals sent
to this process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

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
