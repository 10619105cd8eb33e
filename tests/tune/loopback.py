"""A two-node Ray cluster on this machine whose nodes stand for separate hosts, and an
S3-compatible server, for the cluster tests (real processes: `ray start`, moto's server).

- The head runs on 127.0.0.3, the worker on 127.0.0.2 (Ray rewrites 127.0.0.1 to the machine's
  address; other loopback addresses are kept), each with its own --temp-dir and free ports, and
  token authentication on.
- Each node runs inside a private mount namespace (`unshare -m`) where tmpfs mounts hide this
  checkout (the virtualenv is bound back, so the pinned packages import, but not this project:
  its editable install points into the hidden checkout) and every local storage folder the
  test names. The worker also loses the data folders; the head keeps them, as a head node
  prepared with the dataset would. Whatever reaches a node went through Ray.
- Stopping kills each node's whole process group: a test never leaves a node behind. Its
  folder (the nodes' logs, Ray's session folders) is deleted too, unless HPO_KEEP_LOOPBACK=1:
  then its path is printed, for a failure to be read afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HEAD_IP, WORKER_IP = "127.0.0.3", "127.0.0.2"

NODE_SCRIPT = """\
#!/bin/bash
# In a private mount namespace: hide the checkout (keeping the virtualenv), then the folders
# in $HIDE, then start a Ray node with the pinned environment first on PATH.
set -e
hold="$BASE/hold-$ROLE"
mkdir -p "$hold"
if [ -n "$VENV_IN_CHECKOUT" ]; then mount --bind "$VENV" "$hold"; fi
mount -t tmpfs tmpfs "$CHECKOUT"
if [ -n "$VENV_IN_CHECKOUT" ]; then mkdir -p "$VENV"; mount --bind "$hold" "$VENV"; fi
for d in $HIDE; do if [ -d "$d" ]; then mount -t tmpfs tmpfs "$d"; fi; done
export PATH="$VENV/bin:$PATH"
cd /
exec ray start "$@" --block
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def why_not() -> str | None:
    """Why this machine cannot run the loopback cluster, or None if it can."""
    if sys.platform != "linux":
        return "needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "needs root for `unshare -m` and tmpfs mounts"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"unshare -m failed: {probe.stderr.strip()[:200]}"
    return None


class LoopbackCluster:
    def __init__(
        self, hide: Sequence[Path], data: Sequence[Path], extra_env: dict[str, str] | None = None
    ) -> None:
        """`hide`: local folders no node may see (storage the test keeps for itself);
        `data`: the data folders, hidden from the worker only; `extra_env`: what every node
        and client runs with besides (credentials of the test's S3 server, say)."""
        self.extra_env = dict(extra_env or {})
        # Short: Ray's socket paths live under it and must stay within 107 characters.
        self.base = Path(tempfile.mkdtemp(prefix="hpo-lb-", dir="/tmp"))
        self.hide, self.data = [str(p) for p in hide], [str(p) for p in data]
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.gcs = f"{HEAD_IP}:{self.gcs_port}"
        self.dashboard = f"http://{HEAD_IP}:{self.dashboard_port}"
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        (self.base / "node.sh").write_text(NODE_SCRIPT)
        (self.base / "node.sh").chmod(0o755)

    def env(self) -> dict[str, str]:
        """What every process of the cluster and its clients runs with."""
        from tests.tune.conftest import hpo_env

        return hpo_env(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0", **self.extra_env)

    def start(self) -> None:
        self._node(
            "head",
            self.hide,
            ["--head", f"--node-ip-address={HEAD_IP}", f"--port={self.gcs_port}",
             f"--dashboard-host={HEAD_IP}", f"--dashboard-port={self.dashboard_port}",
             f"--ray-client-server-port={free_port()}"],
        )  # fmt: skip
        self._wait_for_nodes(1)
        self._node(
            "worker",
            [*self.hide, *self.data],
            [f"--address={self.gcs}", f"--node-ip-address={WORKER_IP}"],
        )
        self._wait_for_nodes(2)

    def _node(self, role: str, hide: Sequence[str], args: list[str]) -> None:
        venv = Path(sys.prefix)
        in_checkout = venv.is_relative_to(REPO)
        env = {
            **self.env(),
            "BASE": str(self.base),
            "ROLE": role,
            "CHECKOUT": str(REPO),
            "VENV": str(venv),
            "VENV_IN_CHECKOUT": "1" if in_checkout else "",
            "HIDE": " ".join(hide),
        }
        ports = [
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        log = (self.base / f"{role}.log").open("ab")
        self.nodes[role] = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", str(self.base / "node.sh"),
             *args, *ports, f"--temp-dir={self.base / role}", "--num-cpus=1", "--num-gpus=0",
             "--disable-usage-stats"],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def _wait_for_nodes(self, count: int, limit_s: float = 180.0) -> None:
        deadline = time.monotonic() + limit_s
        while len(self.alive_nodes()) < count:
            for role, proc in self.nodes.items():
                assert proc.poll() is None, f"{role} exited:\n{self.log(role)}"
            assert time.monotonic() < deadline, f"{count} nodes never came up:\n{self.logs()}"
            time.sleep(0.5)

    def alive_nodes(self) -> list[str]:
        """The IPs of the nodes the head counts alive: its dashboard's HTTP API, asked
        directly (Ray's own clients read the auth mode once, when ray is first imported)."""
        try:
            summary = self.api("/nodes?view=summary")["data"]["summary"]
        except (OSError, ValueError, KeyError):
            return []  # the dashboard is still starting
        # A node still registering can be listed without its "ip" yet (seen once): not up.
        return [
            n["ip"] for n in summary if n.get("raylet", {}).get("state") == "ALIVE" and "ip" in n
        ]

    def api(self, path: str) -> Any:
        """GET one of the dashboard's JSON endpoints, with the cluster's token."""
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        request = urllib.request.Request(
            f"{self.dashboard}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's details: status, driver_exit_code, ..."""
        return dict(self.api(f"/api/jobs/{job_id}"))

    def log(self, role: str) -> str:
        path = self.base / f"{role}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {role}\n{self.log(role)}" for role in self.nodes)

    def stop(self) -> None:
        for proc in self.nodes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.nodes.clear()
        if os.environ.get("HPO_KEEP_LOOPBACK") == "1":
            print(f"loopback cluster's logs kept in {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)
