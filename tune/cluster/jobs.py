"""Sweeps as Ray Jobs: `hpo submit` runs the sweep's driver on the cluster, so it goes on after
the submitting laptop sleeps or leaves; `hpo logs`, `hpo stop` and `hpo jobs` follow and stop it
through the same job API (the dashboard's, at http://HEAD:8265).

The job carries what the driver needs and the cluster lacks: this project's packages
(py_modules, tune/cluster/nodes.py) and the YAML file (the job's working_dir, a folder holding only
that file). The driver on the head node reads the data and ships it to the trials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.cluster import nodes
from tune.core.errors import UsageError

# Where the job API's address comes from when --address is not given, in Ray's own order
# (read by the CLI).
ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# `hpo stop` (Ray's stop_job) sends the driver SIGTERM, then SIGKILL after this many seconds
# (Ray's default: 3). hpo stops like on Ctrl+C and saves its state, which may take longer.
STOP_GRACE_S = "60"
QUIET = (
    "ray.dashboard.modules.dashboard_sdk",
    "ray.dashboard.modules.job.sdk",
    "ray._private.runtime_env.packaging",
)


@dataclass(frozen=True)
class Submitted:
    job_id: str
    address: str


def job_address(address: str | None) -> str:
    """The dashboard's http(s) address (the CLI takes it from --address, else
    $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS). Jobs are submitted over HTTP: a GCS address
    (HOST:6379) is refused."""
    if not address:
        raise UsageError(
            "--address: missing; the Ray dashboard of the cluster, e.g. http://HEAD:8265 "
            "(or set RAY_API_SERVER_ADDRESS)"
        )
    if not is_job_address(address):
        raise UsageError(
            f"--address {address}: jobs go to the Ray dashboard, an http(s):// address such "
            "as http://HEAD:8265 (not the GCS address HOST:6379)"
        )
    return address.rstrip("/")


def is_job_address(address: str | None) -> bool:
    """Whether an --address is the job API (http(s)://HEAD:8265) rather than a GCS address."""
    return address is not None and address.startswith(("http://", "https://"))


@contextlib.contextmanager
def _only(address: str) -> Iterator[None]:
    """Ray's job client lets $RAY_ADDRESS and $RAY_API_SERVER_ADDRESS override the address it
    is given; hpo's --address must win, so they are hidden while the client is made."""
    saved = {v: os.environ.pop(v) for v in ADDRESS_VARIABLES if v in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def client(address: str) -> Any:
    """A job client, connected (it asks the dashboard for its version): one line on failure."""
    from ray.job_submission import JobSubmissionClient

    # Ray's job client logs each upload and websocket at INFO (its modules set that level
    # themselves); hpo says what matters itself.
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with _only(address):
            return JobSubmissionClient(address)
    except Exception as e:  # ConnectionError, an auth refusal, a wrong port ...
        raise UsageError(f"--address {address}: no Ray job API there ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def cluster_storage(storage: str | None) -> str:
    """Storage for a sweep whose driver runs elsewhere: every node must reach it by the same
    name, so a relative folder (the default ./runs) means nothing there."""
    if not storage:
        raise UsageError(
            "--storage: missing; a submitted sweep needs storage every node reaches: "
            "a shared folder (absolute path) or s3://bucket/prefix (or set HPO_STORAGE)"
        )
    if "://" not in storage and not Path(storage).is_absolute():
        raise UsageError(
            f"--storage {storage}: relative to what? On the cluster it needs an absolute path "
            "every node mounts, or s3://bucket/prefix"
        )
    return str(storage)


def sweep_argv(
    file: str,
    name: str,
    storage: str,
    tracking_uri: str,
    values: dict[str, int | None],
    switches: dict[str, bool],
) -> list[str]:
    """`hpo sweep`'s arguments for the job's driver: the YAML file (in the job's working_dir),
    the name, storage and tracking URI resolved here, the flags given with a value, the
    switches that are on."""
    argv = ["sweep", file, "--name", name, "--storage", storage, "--tracking-uri", tracking_uri]
    return argv + _flags(values, switches)


def resume_argv(name: str, storage: str, switches: dict[str, bool]) -> list[str]:
    """`hpo resume`'s arguments for the job's driver, which finds and checks the experiment."""
    return ["resume", name, "--storage", storage, *_flags({}, switches)]


def _flags(values: dict[str, int | None], switches: dict[str, bool]) -> list[str]:
    given = [part for flag, v in values.items() if v is not None for part in (flag, str(v))]
    return given + [flag for flag, on in switches.items() if on]


def submit(
    address: str,
    cli_args: Sequence[str],
    name: str,
    spec_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    modules: Sequence[str] = (),
) -> Submitted:
    """Submit `hpo CLI_ARGS` as a job, with `env` set for its driver. With `spec_file`, the
    job's working_dir holds that file only (under its own name: a spec without `name:` is named
    after its file); `hpo resume` needs none. `modules`: the user's model and data modules
    (nodes.user_modules), shipped with this project's packages."""
    jobs = client(address)
    with tempfile.TemporaryDirectory(prefix="hpo-job-") as folder:
        runtime_env: dict[str, Any] = {
            **nodes.runtime_env(modules),
            "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": STOP_GRACE_S, **(env or {})},
        }
        if spec_file is not None:
            shutil.copyfile(spec_file, Path(folder) / spec_file.name)
            runtime_env["working_dir"] = folder
        job_id = jobs.submit_job(
            entrypoint=shlex.join(["python", "-m", "tune.cli", *cli_args]),
            runtime_env=runtime_env,
            metadata={"hpo.experiment": name},
            # The driver does no training: its CPU stays free for trials.
            entrypoint_num_cpus=0,
        )
    return Submitted(str(job_id), address)


@dataclass(frozen=True)
class Started:
    """How a submitted job's start went: `exit_code` None while it runs (its checks passed)."""

    status: str
    exit_code: int | None
    output: list[str]  # the driver's own lines (not Ray's log lines), when it ended


# Ray's own lines in a job's log, around the driver's output.
RAY_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(INFO|DEBUG|WARNING) |Running entrypoint for job )"
)


def wait_started(address: str, job_id: str, limit_s: float = 300.0) -> Started:
    """Wait until the job's driver passed its checks (it prints nodes.STARTED) or ended,
    so that `hpo submit` can say at once what a job would only say in its log: a data folder
    missing on the head, storage a node cannot see, a trial no node can hold. After
    `limit_s` (a runtime_env still installing, say) it stops waiting: the job goes on."""
    jobs = client(address)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        info = jobs.get_job_info(job_id)
        status = _name(info.status)
        logs = jobs.get_job_logs(job_id)
        if nodes.STARTED in logs and status not in TERMINAL:
            return Started(status, None, [])
        if status in TERMINAL:
            lines = [line for line in logs.splitlines() if line and not RAY_LOG_LINE.match(line)]
            code = info.driver_exit_code
            return Started(status, None if code is None else int(code), lines[-20:])
        time.sleep(0.5)
    return Started("PENDING", None, [])


def follow(address: str, job_id: str, follow: bool) -> str:
    """Print the job's log; with `follow`, until the job ends. Returns its status."""
    jobs = client(address)
    status = _status(jobs, job_id)
    if not follow:
        sys.stdout.write(jobs.get_job_logs(job_id))
        return status
    import asyncio

    async def tail() -> None:
        async for lines in jobs.tail_job_logs(job_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    asyncio.run(tail())
    return _status(jobs, job_id)


def stop(address: str, job_id: str) -> bool:
    """Ask the job to stop (Ray sends its driver SIGTERM: hpo stops as on Ctrl+C, resumable).
    False if it had ended already."""
    jobs = client(address)
    _status(jobs, job_id)
    return bool(jobs.stop_job(job_id))


def listing(address: str) -> list[dict[str, str]]:
    """Every job on the cluster, oldest first: id, status, the hpo experiment, entrypoint."""
    jobs = client(address)
    rows = []
    for job in sorted(jobs.list_jobs(), key=lambda j: j.start_time or 0):
        rows.append(
            {
                "job": str(job.submission_id or job.job_id),
                "status": _name(job.status),
                "experiment": str((job.metadata or {}).get("hpo.experiment", "")),
                "entrypoint": str(job.entrypoint)[:60],
            }
        )
    return rows


def _status(jobs: Any, job_id: str) -> str:
    try:
        status = jobs.get_job_status(job_id)
    except RuntimeError as e:  # Ray's client raises RuntimeError for an unknown id
        raise UsageError(f"job {job_id}: not found on the cluster ({_first_line(e)})") from None
    return _name(status)


def _name(status: Any) -> str:
    """A job status as its name: Ray gives a JobStatus enum (or, from older servers, a str)."""
    return str(getattr(status, "value", status))
