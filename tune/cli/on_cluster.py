"""The handlers of the commands that talk to a cluster's job API: `hpo submit`, `logs`, `stop`,
`jobs`, and `hpo resume NAME --address http://...` (a resume run as a Ray Job)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tune.cli.common import (
    driver_env,
    job_address_of,
    no_plan,
    storage_of,
    sweep_spec,
    tracking_of,
)
from tune.core.errors import EXIT_FAILURE, EXIT_OK, UsageError
from tune.store.tracking_uri import check_tracking_uri

if TYPE_CHECKING:
    from tune.cluster.jobs import Submitted


def cmd_submit(args: argparse.Namespace) -> int:
    """`hpo sweep` as a Ray Job on the cluster: checked here first, so that a bad file, flag,
    storage or tracking URI is a line now, not a failed job later."""
    from tune.cluster import jobs, nodes

    address = job_address_of(args)
    spec = sweep_spec(args, local=False, driver=False)  # the driver (and data) is on the head
    storage = _cluster_storage(args)
    tracking_uri = tracking_of(args)
    if not tracking_uri.startswith(("http://", "https://")):
        raise UsageError(
            f"--tracking-uri {tracking_uri}: a submitted sweep's driver runs on the head node, "
            "where a file store would land unseen; give an MLflow server, http://HOST:5000"
        )
    if (problem := check_tracking_uri(tracking_uri)) is not None:
        raise UsageError(problem)
    sweep_args = jobs.sweep_argv(
        Path(args.file).name,
        spec.name,
        storage,
        tracking_uri,
        {"--num-samples": args.num_samples, "--max-concurrent": args.max_concurrent},
        {
            "--smoke": args.smoke,
            "--overwrite": args.overwrite,
            "--verbose": args.verbose,
            "--no-plan": no_plan(args),
        },
    )
    submitted = jobs.submit(
        address,
        sweep_args,
        spec.name,
        spec_file=Path(args.file),
        env=driver_env(),
        modules=nodes.user_modules(spec),
    )
    return _after_submit(submitted, spec.name, storage)


def _cluster_storage(args: argparse.Namespace) -> str:
    from tune.cluster import jobs

    given = storage_of(args) if args.storage or os.environ.get("HPO_STORAGE") else None
    return jobs.cluster_storage(given)


def _after_submit(submitted: Submitted, name: str, storage: str) -> int:
    """Wait until the job's driver passed its checks: a job that fails them ends `hpo submit`
    with its lines and its exit code (2 for bad input), as `hpo sweep` would here."""
    from tune.cluster import jobs

    print(f"hpo: submitted '{name}' as Ray job {submitted.job_id}; waiting for its checks ...")
    started = jobs.wait_started(submitted.address, submitted.job_id)
    if started.status in jobs.TERMINAL:
        stream = sys.stdout if started.status == "SUCCEEDED" else sys.stderr
        for line in started.output:
            print(line, file=stream)
        if started.status == "SUCCEEDED":
            return EXIT_OK
        return started.exit_code or EXIT_FAILURE
    _said_submitted(submitted, name, storage)
    return EXIT_OK


def _said_submitted(submitted: Submitted, name: str, storage: str) -> None:
    at = f"--address {submitted.address}"
    print(f"hpo: '{name}' runs as Ray job {submitted.job_id} on {submitted.address}")
    print(f"  follow it:  hpo logs {submitted.job_id} --follow {at}")
    print(f"  stop it:    hpo stop {submitted.job_id} {at}   (resumable)")
    print(f"  its trials: hpo status {name} --storage {storage}")
    print(f"  all jobs:   hpo jobs {at}")


def cmd_logs(args: argparse.Namespace) -> int:
    from tune.cluster import jobs

    status = jobs.follow(job_address_of(args), args.job, args.follow)
    if args.follow:
        print(f"hpo: job {args.job} {status.lower()}")
    return EXIT_OK if status != "FAILED" else EXIT_FAILURE


def cmd_stop(args: argparse.Namespace) -> int:
    from tune.cluster import jobs

    if jobs.stop(job_address_of(args), args.job):
        print(f"hpo: job {args.job} asked to stop (it saves its state: `hpo resume` goes on)")
    else:
        print(f"hpo: job {args.job} had ended already")
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    from tune.cluster import jobs
    from tune.core.text import format_columns

    rows = jobs.listing(job_address_of(args))
    if not rows:
        print("hpo: no jobs on this cluster")
        return EXIT_OK
    print(format_columns(rows))
    return EXIT_OK


def submit_resume(args: argparse.Namespace, address: str) -> int:
    """`hpo resume` as a Ray Job: the experiment is found and checked by the job's driver."""
    from tune.cluster import jobs

    storage = _cluster_storage(args)
    name = args.experiment
    switches = {
        "--restart-errored": args.restart_errored,
        "--verbose": args.verbose,
        "--allow-changed-code": args.allow_changed_code,
    }
    resume_args = jobs.resume_argv(name, storage, switches)
    modules = _modules_to_ship(name, storage, args.allow_changed_code)
    submitted = jobs.submit(
        jobs.job_address(address), resume_args, name, env=driver_env(), modules=modules
    )
    return _after_submit(submitted, name, storage)


def _modules_to_ship(name: str, storage: str, allow_changed: bool) -> list[str]:
    """The user's model and data modules the experiment's record names, found here (an empty
    list for the built-in model, or where this machine cannot see the storage: the job's
    driver then finds the experiment or says it is not there)."""
    from tune.cluster import nodes
    from tune.store import records

    exp_dir = records.locate(name, storage)
    if exp_dir is None:
        return []
    return nodes.modules_here(records.load(exp_dir).spec, allow_changed)
