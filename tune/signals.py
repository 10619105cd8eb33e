"""SIGTERM stops a run as Ctrl+C does.

`kill`, systemd, Kubernetes and Slurm send SIGTERM; Ray's own handler would exit at once
(`sys.exit(15)`), skipping Tune's last snapshot and leaving MLflow's parent run FAILED. hpo turns
SIGTERM into SIGINT instead: during fit() that is Ray Tune's graceful stop (a last snapshot,
trials PENDING for `hpo resume`), before it a KeyboardInterrupt. The run then ends KILLED with
the resume hint, and the command exits 143 (128 + 15), as shells expect of SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_received = threading.Event()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _received.set()
    signal.raise_signal(signal.SIGINT)


def handle_sigterm() -> None:
    """Install the handler (after `ray.init`, which installs its own); main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def terminated() -> bool:
    """Whether this process was asked to stop with SIGTERM."""
    return _received.is_set()
