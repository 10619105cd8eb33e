"""What the `hpo` handlers share: the outside inputs, each read here once and passed on as
options (flags, then $HPO_STORAGE, $MLFLOW_TRACKING_URI, $RAY_ADDRESS, $HPO_DATA_DIR,
$HPO_REUSE_ACTORS, $HPO_NO_PLAN and, for the job commands, $RAY_API_SERVER_ADDRESS); the checks of a named
experiment and of a sweep's file; and the summary a run ends with."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tune.cli.parser import DEFAULT_STORAGE, DEFAULT_TRACKING_URI
from tune.core.errors import InputError, Problem, UsageError
from tune.store.tracking_uri import check_tracking_uri

if TYPE_CHECKING:
    from tune.run.experiment import RunResult
    from tune.run.process import RunOptions
    from tune.space.spec import SweepSpec
    from tune.store.records import ExperimentRecord


# When this command started (main() sets it): the summary says how long the command took.
STARTED = time.monotonic()

# -- outside inputs, read once ------------------------------------------------------------------


def storage_of(args: argparse.Namespace) -> str:
    """--storage, else $HPO_STORAGE, else ./runs: a folder, or s3://bucket/prefix[?options]."""
    from tune.store import storage

    where = str(args.storage or os.environ.get("HPO_STORAGE") or DEFAULT_STORAGE)
    if (problem := storage.check(where)) is not None:
        raise UsageError(problem)
    return where


def tracking_of(args: argparse.Namespace) -> str:
    return str(args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)


def address_of(args: argparse.Namespace) -> str | None:
    """The Ray cluster to join: --address, else $RAY_ADDRESS; None = Ray in this process."""
    return getattr(args, "address", None) or os.environ.get("RAY_ADDRESS") or None


def job_address_of(args: argparse.Namespace) -> str:
    """The cluster's job API: --address, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS."""
    from tune.cluster.jobs import ADDRESS_VARIABLES, job_address

    flag = getattr(args, "address", None)
    return job_address(
        flag or next((os.environ[v] for v in ADDRESS_VARIABLES if os.environ.get(v)), None)
    )


def data_dir() -> str | None:
    """The user's data folder, searched before the system's: $HPO_DATA_DIR."""
    return os.environ.get("HPO_DATA_DIR") or None


def reuse_actors() -> bool:
    """$HPO_REUSE_ACTORS: 1 (the default) lets a finished trial's process run the next trial."""
    value = os.environ.get("HPO_REUSE_ACTORS", "1")
    if value not in ("0", "1"):
        raise UsageError(f"HPO_REUSE_ACTORS: {value!r} is not allowed; use 1 (default) or 0")
    return value == "1"


def no_plan(args: argparse.Namespace) -> bool:
    """--no-plan, or $HPO_NO_PLAN set to anything but 0: a sweep starts without `hpo plan`'s
    forecast (a submitted job's sweep too)."""
    return bool(args.no_plan) or os.environ.get("HPO_NO_PLAN", "") not in ("", "0")


def driver_env() -> dict[str, str]:
    """What a submitted job's driver is to read as this process would: $HPO_REUSE_ACTORS."""
    return {} if reuse_actors() else {"HPO_REUSE_ACTORS": "0"}


def run_options(args: argparse.Namespace) -> RunOptions:
    """The options of a command that runs Ray, and this process set up for it: Ray Tune's
    environment variables and the libraries' log levels."""
    from tune.run.process import RunOptions, quiet_loggers, ray_environment

    # Read (and check) the inputs first: a bad value is refused before the set-up's imports.
    options = RunOptions(
        address=address_of(args),
        verbose=args.verbose,
        data_dir=data_dir(),
        reuse_actors=reuse_actors(),
    )
    os.environ.update(ray_environment(args.verbose))
    quiet_loggers(args.verbose)
    return options


def print_input_error(e: InputError, verbose: bool) -> None:
    """Its lines on stderr; with --verbose first what the user's code printed and the
    tracebacks behind them (tune/space/user_code.py)."""
    from tune.space import user_code

    if verbose and (kept := user_code.kept()):
        print(kept, file=sys.stderr, end="" if kept.endswith("\n") else "\n")
    for line in e.lines():
        print(line, file=sys.stderr)


def warn(spec: SweepSpec, file: str) -> None:
    """Valid, but likely not what was meant: a line each on stderr; the command goes on."""
    for warning in spec.warnings():
        print(warning.format(f"{file}: warning"), file=sys.stderr)


def sweep_spec(args: argparse.Namespace, *, local: bool, driver: bool) -> SweepSpec:
    """The sweep's spec with the command line's overrides, checked: exit 2 on any problem."""
    from tune.space.checks import sample_checks
    from tune.space.spec import check_name, load_spec, with_overrides

    if args.name is not None and (bad := check_name(args.name)) is not None:
        raise InputError("--name", [Problem("", bad.message, bad.allowed)])
    spec = load_spec(args.file, local=local, driver=driver, name=args.name, data_dir=data_dir())
    spec = with_overrides(
        spec, num_samples=args.num_samples, max_concurrent_trials=args.max_concurrent
    )
    if args.num_samples is not None and (problems := sample_checks(spec)):
        raise InputError(f"{args.file} with --num-samples {args.num_samples}", problems)
    warn(spec, args.file)
    return spec


def not_a_job_address(address: str | None, command: str) -> None:
    from tune.cluster.jobs import is_job_address

    if is_job_address(address):
        raise UsageError(
            f"--address {address} is the cluster's job API: `hpo {command}` there runs as a "
            "Ray Job with `hpo submit` (or `hpo resume NAME --address http://...`); "
            "HEAD:6379 drives the cluster from this node"
        )


def experiment_of(args: argparse.Namespace) -> Path:
    from tune.store import records

    storage = storage_of(args)
    exp_dir = records.locate(args.experiment, storage)
    if exp_dir is None:
        names = records.names_in(storage)
        listed = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        there = f"; there: {listed} (`hpo list`)" if names else ", which holds none"
        raise UsageError(
            f"no experiment '{args.experiment}' (neither a folder nor a name in {storage}{there})"
        )
    return exp_dir


def check_code(record: ExperimentRecord, args: argparse.Namespace, action: str) -> None:
    """The user's model and data modules must be those the sweep ran, unless the user says
    --allow-changed-code: trials of other code would be compared as if they were the same."""
    from tune.core.errors import InputError
    from tune.space.spec import changed_code

    problems = changed_code(record.spec, action)
    if problems and not args.allow_changed_code:
        raise InputError(str(Path(record.spec.source)), problems)


def check_recorded_uri(record: ExperimentRecord) -> None:
    """The tracking store an experiment recorded must still be there before anything runs."""
    if (problem := check_tracking_uri(record.tracking_uri)) is not None:
        raise UsageError(problem.replace("--tracking-uri", "the recorded tracking URI", 1))


def finish(result: RunResult, metric: str, tracking_uri: str, confirm: bool = False) -> int:
    """Print the summary of a sweep, resume or confirm run and choose the exit code."""
    from tune.run import summary

    took = time.monotonic() - STARTED
    lines = summary.summary_lines(result, metric, tracking_uri, took, best_trial=not confirm)
    # Flushed: read through a pipe (a log, `tee`, a job's logs) the run's end shows when it
    # ends, not when a confirm run's report is written after it, or at exit.
    print("\n".join(lines), flush=True)
    return summary.exit_code(result)
