"""Jobs run in order on one background thread; while their target is down, they wait in order.

Made for writes to a server that may go away for a while (MLflow: tune/run/tracking.py), so
that whoever submits a job never waits for the server. When a job raises, `reachable()` is
asked:
- the target answers: it refused this job (a bad value, say). The job is counted in `refused`
  and dropped, since running it again would not help;
- it does not answer: it is down. That job and every later one wait in `backlog`, in the order
  they came (nothing overtakes a waiting job), and `reachable()` is asked again every
  `retry_s` seconds. Once it answers, the backlog runs, oldest first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# A queued job: a function and its arguments.
Job = tuple[Callable[..., None], tuple[Any, ...]]


class RetryQueue:
    """`submit` jobs; `close` runs what is queued and stops. `label` names the target in the
    log lines ("MLflow at http://...")."""

    def __init__(
        self, reachable: Callable[[], bool], *, retry_s: float, label: str, thread_name: str
    ) -> None:
        self.reachable = reachable
        self.retry_s = retry_s
        self.label = label
        self.thread_name = thread_name
        self.jobs: queue.Queue[Job | None] = queue.Queue()  # None: the end
        self.backlog: deque[Job] = deque()
        self.next_try = 0.0
        self.refused = 0
        self.thread: threading.Thread | None = None  # started by the first submit

    @property
    def started(self) -> bool:
        return self.thread is not None

    @property
    def waiting(self) -> int:
        """Jobs not run yet: those in the backlog and those still queued."""
        return len(self.backlog) + self.jobs.qsize()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self.thread.start()
        self.jobs.put((function, args))

    def close(self, timeout: float) -> bool:
        """Run every queued job (one last try at the backlog), then stop the thread. False when
        it is still busy after `timeout` seconds: it is left running (a daemon thread)."""
        if self.thread is None:
            return True
        self.jobs.put(None)
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _loop(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=self.retry_s if self.backlog else None)
            except queue.Empty:
                self._catch_up()
                continue
            if job is None:
                self._catch_up()  # one last try before the end
                return
            if self.backlog:
                self.backlog.append(job)  # keep the order: nothing overtakes a waiting job
                if time.monotonic() >= self.next_try:
                    self._catch_up()
            elif not self._run(job):
                self.backlog.append(job)
                self.next_try = time.monotonic() + self.retry_s
                log.warning(
                    "%s cannot be reached; training goes on, writes wait and are retried "
                    "every %.0f s",
                    self.label,
                    self.retry_s,
                )

    def _run(self, job: Job) -> bool:
        """Run one job; False if it failed because the target is down (try it later)."""
        function, args = job
        try:
            function(*args)
            return True
        except Exception as e:  # a failing job must never end the thread
            if not self.reachable():
                return False
            self.refused += 1  # the target is there and refused it: retrying won't help
            log.warning("%s: a write failed: %s", self.label, e)
            return True

    def _catch_up(self) -> None:
        """Run the backlog in order while the target answers."""
        self.next_try = time.monotonic() + self.retry_s
        if not self.backlog or not self.reachable():
            return
        log.warning("%s is back; writing %d waiting writes", self.label, len(self.backlog))
        while self.backlog:
            if not self._run(self.backlog[0]):
                return
            self.backlog.popleft()
