"""Helpers shared by the tests of tune/: `hpo` as a user runs it, MLflow's view of a sweep, an
in-process Ray session, and fake trainables with scripted learning curves (for scheduling and
state logic only; the real trainer runs everywhere else)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

# Variables a user may have set that would send a test's `hpo` elsewhere.
OUTSIDE = ("MLFLOW_TRACKING_URI", "HPO_STORAGE", "RAY_ADDRESS", "HPO_DATA_DIR")


def hpo_env(**extra: str) -> dict[str, str]:
    """This process's environment without OUTSIDE, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if k not in OUTSIDE}, **extra}


def hpo(
    args: list[str], cwd: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """`hpo ARGS` in its own process, as a user runs it."""
    release_ray()
    return subprocess.run(
        [sys.executable, "-m", "tune.cli", *args],
        cwd=cwd,
        env=hpo_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def hpo_started(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    """`hpo ARGS` started in its own process, its output joined on one pipe, for a test that
    stops it (a signal) once it reaches a state."""
    release_ray()
    return subprocess.Popen(
        [sys.executable, "-m", "tune.cli", *args],
        cwd=cwd,
        env=hpo_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


Runner = Callable[..., subprocess.CompletedProcess[str]]


# The Ray the last in-process command left running, and what it was started with (its
# environment, --verbose); None when there is none. See hpo_in_process.
_kept_ray: tuple[object, ...] | None = None


def release_ray() -> None:
    """Stop the Ray an in-process command left running, if any."""
    global _kept_ray
    if _kept_ray is not None:
        from tune.run.process import stop_ray

        stop_ray()
        _kept_ray = None


@pytest.fixture(autouse=True)
def _no_ray_outlives_its_test() -> Iterator[None]:
    yield
    release_ray()


def hpo_in_process(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`hpo ARGS` run by this process: the same exit code and lines as `hpo` in a process of its
    own, without a new interpreter's 3-4 s of imports (CPU the suite is short of). For a command
    no test signals and whose process-wide effects no test looks at. The working folder, the
    environment (less OUTSIDE, plus `env`) and the signal handlers the CLI installs are put back.

    A local Ray the command started and ended cleanly with is kept for the test's next
    in-process command with the same environment (`start_ray` uses it): each Ray start costs
    the machine about 5 CPU-s. A command in a fresh process, with a Ray of its own, is what the
    signalled tests and the subprocess ones check. The kept Ray is stopped before any other
    command, and when the test ends (_no_ray_outlives_its_test)."""
    global _kept_ray
    from tune.cli import main
    from tune.run.process import stop_ray

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    command_env = hpo_env(**env)
    key = (tuple(sorted(command_env.items())), "--verbose" in args)
    joins = any(a.startswith("--address") for a in args)  # a cluster: never a kept local Ray
    if key != _kept_ray or joins:
        release_ray()
    os.environ.clear()
    os.environ.update(command_env)
    os.chdir(cwd)
    code = 1
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as e:  # argparse's own refusals
                code = int(e.code or 0)
            finally:
                ray = sys.modules.get("ray")
                running = ray is not None and ray.is_initialized()
                _kept_ray = key if code == 0 and running and not joins else None
                if running and _kept_ray is None:
                    stop_ray()  # a failed command's Ray, or a joined cluster, is not reused
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, handler in handlers.items():
            if handler is not None:  # None: set outside Python, left as it is
                signal.signal(sig, handler)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture
def hpo_here() -> Runner:
    """`hpo_in_process`, as a fixture."""
    return hpo_in_process


def runs_of(tracking_uri: str, experiment: str, name: str | None = None) -> tuple[Any, list[Any]]:
    """The parent run named `name` (default: the experiment's own name) and its child runs."""
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment}"
    runs = client.search_runs([exp.experiment_id])
    parents = [
        r
        for r in runs
        if "mlflow.parentRunId" not in r.data.tags and r.info.run_name == (name or experiment)
    ]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent_id = parents[0].info.run_id
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]
    return parents[0], children


@pytest.fixture
def ray_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For tests that run an experiment in this process: the environment the CLI would set,
    and Ray shut down afterwards."""
    from tune.run.process import ray_environment, stop_ray

    for key, value in ray_environment(verbose=False).items():
        monkeypatch.setenv(key, value)
    yield
    stop_ray()


def wait_for(what: str, ready: Callable[[], bool], limit_s: float = 180.0) -> None:
    """Wait until `ready()` holds: a state, polled. The limit only turns a hang into a
    failure that says what never happened."""
    deadline = time.monotonic() + limit_s
    while not ready():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


class MlflowServer:
    """A real `mlflow server` process on 127.0.0.1 that a test can kill and start again on the
    same port. Its runs live in a SQLite file (`store`), which the test reads directly, also
    while the server is down."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.store = f"sqlite:///{folder / 'server.db'}"
        self.artifacts = folder / "server-artifacts"
        self.log = folder / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--backend-store-uri", self.store]
        command += ["--default-artifact-root", str(self.artifacts), "--workers", "1"]
        # Without its job runner: seven more processes this test does not need.
        env = hpo_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, start_new_session=True
            )
        wait_for(f"mlflow server answers at {self.uri} (log: {self.log})", self.answers)

    def answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """Dies at once, as a crashed server or a lost host does (its whole process group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# moto takes any credentials; pyarrow must not go looking for an EC2 instance's role.
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class Bucket:
    """The bucket `hpo` on the test's S3 server, and its storage URI for hpo and Ray."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.uri = f"s3://hpo/runs?endpoint_override={endpoint}&scheme=http"

    def keys(self, prefix: str = "") -> list[str]:
        from pyarrow import fs as pafs

        from tune.store import storage

        fs, base = storage.filesystem(self.uri)
        found = fs.get_file_info(pafs.FileSelector(f"{base}/{prefix}", recursive=True))
        return sorted(i.path[len(base) + 1 :] for i in found if i.type == pafs.FileType.File)


@pytest.fixture(scope="module")
def bucket() -> Iterator[Bucket]:
    """A real S3-compatible server on loopback (moto's, as Ray's own tests use), in this
    process; the credentials in AWS are set here and for every process a test starts."""
    import boto3
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS}
    os.environ.update(AWS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="hpo")
    try:
        yield Bucket(endpoint)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- fake trainables: scripted curves, for scheduling and state logic ----------------------------


def scripted_curve_trainable(config: dict[str, Any]) -> None:
    """Fake trainable: val_accuracy follows a scripted curve whose ceiling falls with dropout,
    so every trial is clearly worse than those with less dropout."""
    from ray import tune as ray_tune

    ceiling = 0.95 - config["dropout"]
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(0.05)
        acc = ceiling * (1 - 0.5**epoch)
        ray_tune.report(
            {
                "epoch": epoch,
                "val_accuracy": acc,
                "train_loss": 1 - acc,
                "val_loss": 1 - acc,
                "loss_gap": 0.0,
            }
        )


def overlap_recording_trainable(config: dict[str, Any], folder: str) -> None:
    """Fake trainable: notes in `folder` how many trials were running while it ran (a file
    per running trial, counted at start and at each epoch)."""
    from ray import tune as ray_tune

    mine = Path(folder) / f"running-{config['dropout']}"
    mine.touch()
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(0.05)
        seen = len(list(Path(folder).glob("running-*")))
        (Path(folder) / f"seen-{config['dropout']}-{epoch}-{seen}").touch()
        ray_tune.report({"epoch": epoch, "val_accuracy": 0.5, "train_loss": 1.0, "val_loss": 1.0})
    mine.unlink()


def held_trainable(config: dict[str, Any], release: str) -> None:
    """Fake trainable: reports epoch 1, then waits until the file `release` exists (which the
    test controls) before each further epoch. A test can so catch a sweep in a known state."""
    from ray import tune as ray_tune

    for epoch in range(1, config["epochs"] + 1):
        if epoch > 1:
            while not Path(release).exists():
                time.sleep(0.05)
        acc = 0.5 + 0.01 * epoch - 0.1 * config["dropout"]
        ray_tune.report(
            {"epoch": epoch, "val_accuracy": acc, "train_loss": 1.0, "val_loss": 1.0 - acc}
        )


def run_held_sweep(space: str, folder: str, tracking_uri: str, release: str) -> int:
    """A driver for a subprocess: the sweep in `space` with held_trainable; exits as `hpo
    sweep` does (130 when interrupted)."""
    from ray import tune as ray_tune

    from tune.cli import finish
    from tune.run.process import RunOptions, ray_environment
    from tune.run.sweep import run_sweep
    from tune.space.spec import load_spec

    os.environ.update(ray_environment(verbose=False))
    spec = load_spec(space)
    trainable = ray_tune.with_parameters(held_trainable, release=release)
    options = RunOptions(progress_interval=3600)
    result = run_sweep(spec, Path(folder), tracking_uri, options, trainable=trainable)
    return finish(result, spec.metric.name, tracking_uri)
