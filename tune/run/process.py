"""The driver process and Ray: how to run (RunOptions, resolved once by the CLI), the
environment variables and log levels Ray and MLflow read, starting or joining Ray, and the
checks made before an experiment writes anything (preflight)."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.cluster import nodes
from tune.core.signals import handle_sigterm
from tune.space.spec import SweepSpec
from tune.store import storage


@dataclass(frozen=True)
class RunOptions:
    """How to run, resolved once by the CLI from flags and environment variables."""

    address: str | None = None  # Ray cluster to join; None = start Ray in this process
    verbose: bool = False  # Ray's and MLflow's own logs and console output
    progress_interval: float = 10.0  # seconds between progress tables
    data_dir: str | None = None  # the user's data folder ($HPO_DATA_DIR), searched first
    # A finished trial's process runs the next trial ($HPO_REUSE_ACTORS, default 1): ~4 s of
    # start-up saved per trial. Off, each trial has a process of its own, on the node its
    # resources were reserved on, even while another node's actor is still starting.
    reuse_actors: bool = True


def preflight(spec: SweepSpec, options: RunOptions, where: Path) -> None:
    """Everything checked before an experiment writes anything: Ray is up, one trial fits a
    node (also locally: Ray may see fewer CPUs than os.cpu_count() in a container), and on a
    cluster every node sees the storage."""
    start_ray(options, nodes.user_modules(spec))
    nodes.check_fits(spec.resources.cpu, spec.resources.gpu, spec.source)
    if options.address is not None:
        nodes.check_storage(storage.ray_path(where))


def ray_environment(verbose: bool) -> dict[str, str]:
    """Environment variables Ray Tune reads in the driver; the CLI sets them once at start."""
    env = {
        # Ray's auto-added TensorBoard logger would write a second set of event files with
        # other names; its JSON and CSV loggers are added explicitly (_callbacks), and
        # tune/run/tracking.py writes the TensorBoard files.
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        # MLflow retries a dead server for minutes by default; a sweep's write gives up within
        # seconds (a minute if nothing answers) and waits in the tracking backlog
        # (tune/run/tracking.py) for the server to return.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
        # With a tracking server, MLflow prints two lines with links each time a run ends,
        # into the progress table; the summary names the server once.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        # A Ray started in this process would start one idle worker per CPU for tasks, at once;
        # a sweep runs actors, which get workers of their own, so those only took CPU from the
        # trials' start (a smoke sweep: 2.4 CPU-s less, done 4.5 s sooner; BENCHMARKS.md, "Sweep
        # overhead"). No effect on a cluster joined with --address: `ray start` set up its nodes.
        "RAY_prestart_worker_first_driver": "0",
    }
    if not verbose:
        # Ray's own console table and tips; ours replaces them (tune/run/progress.py).
        env["RAY_AIR_NEW_OUTPUT"] = "0"
        # With one checkpoint kept, Ray snapshots its state after each epoch and warns that
        # this may be slow; for a few small trials it is not, and resume wants the snapshots.
        env["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
        env["MLFLOW_LOGGING_LEVEL"] = "WARNING"
    return env


def quiet_loggers(verbose: bool) -> None:
    """Ray, MLflow, alembic and Optuna talk a lot; unless --verbose, the progress table says
    what matters and only their errors get through. The CLI calls this once at start."""
    import mlflow  # noqa: F401  (mlflow sets its loggers' levels on import; ours must come after)
    import optuna

    level = logging.INFO if verbose else logging.ERROR
    for name in ("ray", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(level)
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)


def start_ray(options: RunOptions, modules: Sequence[str] = ()) -> None:
    """Join `options.address`, or start a new Ray in this process: never a cluster that merely
    happens to run on this machine (plain `ray.init()` would join one started with `ray start`,
    or try a dead one's leftover address). Says which it used."""
    import ray

    if ray.is_initialized():
        return
    # On a cluster, this project's code and the user's `modules` go to every node with the
    # job (a Ray Job's driver already has them: its runtime_env is the job's).
    ship = options.address is not None and not nodes.in_job()
    ray.init(
        address=options.address or "local",
        runtime_env=nodes.runtime_env(modules) if ship else None,
        include_dashboard=False,  # a web server nobody asked for; and it binds a port
        log_to_driver=options.verbose,
        logging_level=logging.INFO if options.verbose else logging.ERROR,
        configure_logging=True,
    )
    if not options.verbose:  # verbose: Ray's own exit, which waits for its workers' last logs
        atexit.unregister(stop_ray)  # once, however often a process starts Ray (tests do)
        atexit.register(stop_ray)  # after Ray's own handler, so it runs first
    handle_sigterm()  # after ray.init, which installs its own
    have = ray.cluster_resources()
    size = f"{have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs"
    where = (
        f"joined the cluster at {options.address}" if options.address else "started in this process"
    )
    print(f"hpo: Ray {where} ({size})", flush=True)


def stop_ray() -> None:
    """`ray.shutdown()`, 1.5 s sooner. A Ray started in this process is stopped one process at a
    time, each sent SIGTERM and given up to a second; the autoscaler's monitor always takes the
    whole second (its SIGTERM handler reports to GCS, which Ray stopped just before it), and at
    the interpreter's exit Ray first sleeps 0.5 s for its workers' log lines, which hpo does not
    show unless --verbose. The monitor of a Ray on one machine holds nothing to save, so it is
    killed first. Measured: bench/ray_stop.py (BENCHMARKS.md). A joined cluster is only left."""
    import ray

    try:
        from ray._private import ray_constants, worker

        node = worker._global_node
        monitors: Sequence[Any] = (
            node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, ()) if node else ()
        )
    except (ImportError, AttributeError):  # Ray's internals moved: the plain shutdown
        monitors = ()
    for info in monitors:
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait()
    ray.shutdown()
