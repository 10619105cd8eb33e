"""The ordered retry queue on a scripted target (a flag for up or down, a list for what it
holds); the same queue against a real MLflow server that dies: tests/tune/run/test_tracking.py."""

from __future__ import annotations

import threading

from tests.tune.conftest import wait_for
from tune.core.retry_queue import RetryQueue


class Target:
    """Takes writes while `up`; a write of a negative value is refused even then."""

    def __init__(self) -> None:
        self.up = True
        self.held: list[int] = []

    def write(self, value: int) -> None:
        if not self.up:
            raise ConnectionError("down")
        if value < 0:
            raise ValueError(f"bad value {value}")
        self.held.append(value)

    def answers(self) -> bool:
        return self.up


def queue_for(target: Target) -> RetryQueue:
    return RetryQueue(target.answers, retry_s=0.05, label="target", thread_name="test-queue")


def test_jobs_run_in_order_and_close_waits_for_them() -> None:
    target = Target()
    jobs = queue_for(target)
    assert not jobs.started and jobs.close(1.0)  # nothing submitted: nothing to wait for
    for n in range(20):
        jobs.submit(target.write, n)
    assert jobs.close(10.0)
    assert target.held == list(range(20))
    assert (jobs.refused, jobs.waiting) == (0, 0)


def test_a_refused_job_is_counted_and_dropped_and_the_rest_run() -> None:
    target = Target()
    jobs = queue_for(target)
    for n in (1, -2, 3):
        jobs.submit(target.write, n)
    assert jobs.close(10.0)
    assert target.held == [1, 3]
    assert jobs.refused == 1


def test_while_the_target_is_down_jobs_wait_in_order_and_catch_up() -> None:
    target = Target()
    jobs = queue_for(target)
    jobs.submit(target.write, 1)
    wait_for("the first write held", lambda: target.held == [1])
    target.up = False
    for n in (2, 3, 4):
        jobs.submit(target.write, n)
    wait_for("three writes waiting", lambda: len(jobs.backlog) == 3)
    assert target.held == [1]
    target.up = True
    wait_for("the backlog written", lambda: not jobs.backlog)
    jobs.submit(target.write, 5)
    assert jobs.close(10.0)
    assert target.held == [1, 2, 3, 4, 5]
    assert jobs.refused == 0


def test_close_gives_up_on_a_target_that_never_answers_and_counts_what_waits() -> None:
    target = Target()
    jobs = queue_for(target)
    release = threading.Event()
    jobs.submit(release.wait)  # a write that hangs, as a call to a silent server does
    jobs.submit(target.write, 1)
    assert not jobs.close(0.2)
    assert jobs.waiting >= 1 and target.held == []
    release.set()
    wait_for("the queue ends once the hung write returns", lambda: not jobs.thread.is_alive())  # type: ignore[union-attr]
    assert target.held == [1]
