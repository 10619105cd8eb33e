"""The tracking server check before a sweep starts: a server that trickles bytes fails it in
seconds, one that answers HTTP 200 but is no MLflow fails it, and either way nothing is started
or written. The servers here are small fakes on 127.0.0.1 that misbehave on purpose (a real
`mlflow server` passing the check is tested wherever the suite uses one)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SEARCH_SPACES
from tests.tune.conftest import hpo
from tune.store.tracking_uri import TRACKING_TIMEOUT_S, check_tracking_uri

SMOKE = str(SEARCH_SPACES / "smoke.yaml")
Handler = Callable[[socket.socket, bytes, threading.Event], None]


class FakeServer:
    """Answers each connection on 127.0.0.1 with `handler(connection, request, stop)`."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.stop = handler, threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up: fine
            self.handler(conn, conn.recv(65536), self.stop)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def trickle(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """A status line, then one header line every half second, never the end of the headers."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.5):
        conn.sendall(b"X-Slow: 1\r\n")


def reply(conn: socket.socket, status: str, body: bytes, kind: str) -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
    conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)


def web_page(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """HTTP 200 and a page for any path, /health included: a web server, not MLflow."""
    reply(conn, "200 OK", b"<html><body>It works!</body></html>", "text/html")


def half_mlflow(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """MLflow's answer to the check's one call, and HTTP 500 to everything else: passes the
    check, then fails the sweep's first real MLflow call (its parent run)."""
    if b"/api/2.0/mlflow/experiments/search" in request.split(b"\r\n")[0]:
        reply(conn, "200 OK", json.dumps({"experiments": []}).encode(), "application/json")
    else:
        reply(conn, "500 Internal Server Error", b'{"error_code": "INTERNAL_ERROR"}', "text/json")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    fake = FakeServer(request.param)
    yield fake
    fake.close()


@pytest.mark.parametrize("server", [trickle], indirect=True)
def test_a_trickling_server_fails_the_check_by_its_deadline(server: FakeServer) -> None:
    answers: list[str | None] = []
    asking = threading.Thread(target=lambda: answers.append(check_tracking_uri(server.uri)))
    asking.daemon = True
    asking.start()
    asking.join(timeout=TRACKING_TIMEOUT_S * 12)  # a hang guard only
    assert answers == [
        f"--tracking-uri {server.uri} did not answer within 5 s; start the server or check "
        "the address"
    ]


@pytest.mark.parametrize("server", [web_page], indirect=True)
def test_a_server_that_is_not_mlflow_is_exit_2_and_nothing_written(
    server: FakeServer, tmp_path: Path, hpo_here: Any
) -> None:
    storage = tmp_path / "runs"
    result = hpo_here(
        ["sweep", SMOKE, "--tracking-uri", server.uri, "--storage", str(storage)], tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"hpo sweep: --tracking-uri {server.uri} answers, but not as an MLflow server (no JSON "
        "from /api/2.0/mlflow/experiments/search?max_results=1)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
@pytest.mark.parametrize("server", [half_mlflow], indirect=True)
def test_a_sweep_whose_parent_run_fails_leaves_no_experiment(
    server: FakeServer, tmp_path: Path
) -> None:
    """Ray has started and the record was written when MLflow refuses the parent run: the
    sweep fails (exit 1) and leaves nothing that the next `hpo sweep` calls 'already exists'."""
    storage = tmp_path / "runs"
    result = hpo(
        ["sweep", SMOKE, "--tracking-uri", server.uri, "--storage", str(storage)], tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hpo sweep: failed:" in result.stderr
    assert not (storage / "smoke").exists()
    assert not storage.exists() or list(storage.iterdir()) == []
