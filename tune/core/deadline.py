"""A check that must answer in time: a server that trickles bytes or a storage endpoint that
never answers must cost seconds, not the user's afternoon. Library timeouts bound one read or
one attempt each, not the whole exchange; this bounds the whole."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def within(seconds: float, ask: Callable[[], T]) -> tuple[bool, T | None]:
    """(True, answer) when `ask()` returned within `seconds`, else (False, None). It runs on a
    daemon thread that is given up on at the deadline: it never holds the process open. An
    exception raised by `ask` is raised here."""
    answers: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            answers.append(ask())
        except BaseException as e:  # handed to the caller's thread
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if errors:
        raise errors[0]
    return (True, answers[0]) if answers else (False, None)
