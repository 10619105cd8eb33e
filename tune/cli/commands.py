"""One handler per `hpo` subcommand, and the outside inputs they read: flags, then $HPO_STORAGE,
$MLFLOW_TRACKING_URI, $RAY_ADDRESS, $HPO_DATA_DIR, $HPO_REUSE_ACTORS and, for the job commands,
$RAY_API_SERVER_ADDRESS, each read here once and passed on as options. Each handler is thin:
the work is in the layers below (docs/architecture.md, "Layers")."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tune.cli.parser import DEFAULT_STORAGE, DEFAULT_TRACKING_URI
from tune.core.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    InputError,
    Problem,
    UsageError,
)
from tune.core.signals import terminated
from tune.store.tracking_uri import absolute_tracking_uri, check_tracking_uri

if TYPE_CHECKING:
    from tune.analysis import Confirmation
    from tune.cluster.jobs import Submitted
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


def cmd_validate(args: argparse.Namespace) -> int:
    from tune.space.spec import load_spec

    status = EXIT_OK
    # For a cluster, the trials and (with `hpo submit`) the driver run there: nothing of this
    # machine is checked, and a CPU laptop can validate a GPU sweep.
    here = not args.for_cluster and address_of(args) is None
    for file in args.files:
        try:
            spec = load_spec(file, local=here, driver=here, data_dir=data_dir())
        except InputError as e:
            print_input_error(e, args.verbose)
            status = EXIT_BAD_INPUT
            continue
        print(f"{file}: valid: sweep '{spec.name}': {spec.describe()}")
        warn(spec, file)
    return status


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


def _sweep_spec(args: argparse.Namespace, *, local: bool, driver: bool) -> SweepSpec:
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


def _not_a_job_address(address: str | None, command: str) -> None:
    from tune.cluster.jobs import is_job_address

    if is_job_address(address):
        raise UsageError(
            f"--address {address} is the cluster's job API: `hpo {command}` there runs as a "
            "Ray Job with `hpo submit` (or `hpo resume NAME --address http://...`); "
            "HEAD:6379 drives the cluster from this node"
        )


def cmd_sweep(args: argparse.Namespace) -> int:
    from tune.store import records
    from tune.store import storage as storage_module

    address = address_of(args)
    _not_a_job_address(address, "sweep")
    spec = _sweep_spec(args, local=address is None, driver=True)
    from tune.run import sweep
    from tune.run.aside import set_aside

    if args.smoke:
        spec = sweep.smoke_variant(spec)
    storage = storage_of(args)
    if (problem := storage_module.check_writable(storage)) is not None:
        raise UsageError(problem)
    tracking_uri = tracking_of(args)
    if (problem := check_tracking_uri(tracking_uri)) is not None:
        raise UsageError(problem)
    tracking_uri = absolute_tracking_uri(tracking_uri)
    exp_dir = records.experiment_dir(storage, spec.name)
    with records.lock(exp_dir):
        if exp_dir.exists() and not args.overwrite:
            raise UsageError(
                f"experiment '{spec.name}' already exists in {exp_dir.parent}: continue it with "
                f"`hpo resume {spec.name}`, or start it again with --overwrite (or use --name NEW)"
            )
        options = run_options(args)
        aside = set_aside(exp_dir, spec, options)
        print(
            f"hpo: sweep '{spec.name}': {spec.describe()}; results in "
            f"{storage_module.ray_path(exp_dir)}, MLflow at {tracking_uri}",
            flush=True,
        )
        result = sweep.run_sweep(spec, exp_dir, tracking_uri, options, replacing=aside)
    return finish(result, spec.metric.name, tracking_uri)


def cmd_submit(args: argparse.Namespace) -> int:
    """`hpo sweep` as a Ray Job on the cluster: checked here first, so that a bad file, flag,
    storage or tracking URI is a line now, not a failed job later."""
    from tune.cluster import jobs, nodes

    address = job_address_of(args)
    spec = _sweep_spec(args, local=False, driver=False)  # the driver (and data) is on the head
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
        {"--smoke": args.smoke, "--overwrite": args.overwrite, "--verbose": args.verbose},
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


def cmd_resume(args: argparse.Namespace) -> int:
    from tune.cluster.jobs import is_job_address
    from tune.run import confirm, experiment, summary, sweep
    from tune.store import records
    from tune.store.rows import experiment_rows, experiment_table

    address = address_of(args)
    if address is not None and is_job_address(address):
        return _submit_resume(args, address)
    exp_dir = _experiment(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        _check_recorded_uri(record)
        options = run_options(args)
        if experiment.is_finished(exp_dir):
            caught_up = experiment.catch_up(record, exp_dir, finished=True)
            _, rows = experiment_rows(exp_dir)
            print(f"hpo: '{record.name}' already finished; nothing to resume.")
            print(experiment_table(record, rows))
            for line in summary.caught_up_lines(caught_up, record.tracking_uri):
                print(line)
            return EXIT_OK
        _check_code(record, args, "hpo resume")
        print(f"hpo: resuming '{record.name}' in {exp_dir}, MLflow at {record.tracking_uri}")
        if record.is_confirm:
            # Resumed by the user's word: from now on `hpo confirm` may continue it too.
            record = confirm.sealed(record, exp_dir)
            plan = confirm.plan(record, options)
        else:
            plan = sweep.plan(record.spec, options)
        result = experiment.run_experiment(record, exp_dir, plan, options, args.restart_errored)
    if record.is_confirm:
        return _after_confirm(exp_dir.parent, result, record)
    return finish(result, record.metric, record.tracking_uri)


def _submit_resume(args: argparse.Namespace, address: str) -> int:
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


def _check_code(record: ExperimentRecord, args: argparse.Namespace, action: str) -> None:
    """The user's model and data modules must be those the sweep ran, unless the user says
    --allow-changed-code: trials of other code would be compared as if they were the same."""
    from tune.core.errors import InputError
    from tune.space.spec import changed_code

    problems = changed_code(record.spec, action)
    if problems and not args.allow_changed_code:
        raise InputError(str(Path(record.spec.source)), problems)


def _check_recorded_uri(record: ExperimentRecord) -> None:
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


def _experiment(args: argparse.Namespace) -> Path:
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


def cmd_list(args: argparse.Namespace) -> int:
    """One line an experiment in the storage: its trials' summary, or why it has none."""
    from tune.core.errors import InputError
    from tune.store import records, storage
    from tune.store.rows import experiment_rows, summary_line

    where = storage_of(args)
    names = records.names_in(where)
    if not names:
        print(f"hpo: no experiments in {where}")
    for name in names:
        folder = records.experiment_dir(where, name)
        storage.pull(folder)
        try:
            record, rows = experiment_rows(folder)
            line = summary_line(rows, record.metric, record.expected_trials(len(rows)))
        except InputError as e:  # no trials saved yet, or a record that cannot be read
            line = e.lines()[0].removeprefix(f"{folder}: ")
        confirmed = " (+ confirm run)" if records.exists(records.confirm_dir(folder)) else ""
        print(f"{name}: {line}{confirmed}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from tune.store.rows import experiment_rows, experiment_table, retried_lines

    record, rows = experiment_rows(_experiment(args))
    print(experiment_table(record, rows))
    for row in rows:
        if row.error:
            print(f"{row.trial_id} failed: {row.error}")
    for line in retried_lines(rows, most=len(rows)):
        print(line)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from tune.store import records

    exp_dir = _experiment(args)
    if records.load(exp_dir).is_confirm:
        exp_dir = exp_dir.parent  # a confirm run is reported with its sweep
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    from tune.report.confirmation import load_confirmation

    return _write_report(exp_dir, load_confirmation(exp_dir), out)


def cmd_export(args: argparse.Namespace) -> int:
    """`hpo export`: the confirmed model (else the sweep's best trial, said to be unconfirmed)
    as files plain PyTorch loads."""
    from tune.deploy import export, winner
    from tune.store import records

    exp_dir = _experiment(args)
    if records.load(exp_dir).is_confirm:
        exp_dir = exp_dir.parent  # a confirm run's model is its sweep's
    export.check_folder(Path(args.out))  # before any work: exit 2, nothing written
    done = export.export(winner.pick(exp_dir), Path(args.out), data_dir())
    for line in export.describe(done):
        print(line)
    return EXIT_OK


def _write_report(exp_dir: Path, confirmation: Confirmation | None, out: Path | None = None) -> int:
    from tune.report import write
    from tune.report.logged import Logger
    from tune.store import records

    # MLflow is made ready beside the drawing (tune/report/logged.py).
    logger = Logger(records.load(exp_dir), exp_dir)
    try:
        result = write.write_report(exp_dir, out, confirmation)
    except BaseException:
        logger.finish(None)
        raise
    for line in result.summary:
        print(f"hpo: {line}")
    print(
        f"Report: {result.folder / 'report.html'} (also report.md, best_config.yaml, trials.csv, plots/)"
    )
    outcome = logger.finish(result)
    if outcome.skipped is not None:
        print(f"hpo report: not logged to MLflow: {outcome.skipped}")
        return EXIT_OK
    if outcome.error is not None:
        print(
            f"hpo report: files written, but logging them to MLflow failed: {outcome.error}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    parent = result.record.parent_run_id
    print(f"  logged to MLflow run {parent} (artifacts: {records.REPORT_DIR}/)")
    return EXIT_OK


def cmd_confirm(args: argparse.Namespace) -> int:
    from tune.run import confirm
    from tune.store import records

    exp_dir = _experiment(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        if record.is_confirm:
            raise UsageError(f"{exp_dir} is a confirm run; name its sweep ({exp_dir.parent})")
        _check_recorded_uri(record)

        def options() -> RunOptions:  # only when something will run
            _check_code(record, args, "hpo confirm")
            return run_options(args)

        result = confirm.start_or_continue(
            exp_dir, record, args.top, args.seeds, args.overwrite, options
        )
    if result is None:  # confirmed already, with these numbers
        return _report_and_recommend(exp_dir, record)
    return _after_confirm(exp_dir, result, record)


def _after_confirm(exp_dir: Path, result: RunResult, record: ExperimentRecord) -> int:
    """The confirm run's trial table, then the report with its confirmation section."""
    from tune.core.signals import deferred

    status = finish(result, record.metric, record.tracking_uri, confirm=True)
    if result.interrupted or status:
        return status
    # A signal now is noted and the report finishes whole: interrupted mid-way (plots, the
    # MLflow upload) with Ray's threads still up, the interpreter aborted at exit (-6).
    with deferred() as stopped:
        status = _report_and_recommend(exp_dir, record)
    if stopped() or terminated():
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    return status


def _register(exp_dir: Path, confirmation: Confirmation) -> int:
    """The recommended configuration's best-validated model into MLflow (tune/deploy/): its
    registry version, or only its run where the store has no registry. A failure here costs
    neither the confirm run nor the report: exit 1 after the report."""
    from tune.deploy import registry, winner
    from tune.store import records
    from tune.store import registered as registered_model

    try:
        picked = winner.pick_from(exp_dir, confirmation)
        net, input_shape, raw = winner.module(picked, data_dir())
        done = registry.register(picked, net, input_shape, raw.num_classes)
    except Exception as e:
        print(f"hpo confirm: the model was not logged to MLflow: {type(e).__name__}: {e}")
        return EXIT_FAILURE
    registered_model.save(records.confirm_dir(exp_dir), done)
    for line in registry.describe(done, picked):
        print(line)
    return EXIT_OK


def _report_and_recommend(exp_dir: Path, record: ExperimentRecord) -> int:
    """The report, read from the confirm run once, then the answer (_recommend)."""
    from tune.report.confirmation import load_confirmation

    confirmation = load_confirmation(exp_dir)
    registered = (
        _register(exp_dir, confirmation) if confirmation and confirmation.winner else EXIT_OK
    )
    status = _write_report(exp_dir, confirmation) or registered
    if confirmation is not None:
        _recommend(confirmation, record)
    return status


def _recommend(confirmation: Confirmation, record: ExperimentRecord) -> None:
    """End with the answer: the configuration the confirm run recommends, its mean test
    accuracy with its confidence interval, and whether it beat the runner-up beyond seed
    noise; the same figures go to the confirm run's MLflow parent run as its metrics."""
    from tune.report.confirmation import confirmed_results, recommendation
    from tune.store.runs import log_results

    print("\n" + "\n".join(recommendation(confirmation, record.metric)))
    if confirmation.run_id is None:
        return
    try:
        results = confirmed_results(confirmation, record.metric)
        log_results(record.tracking_uri, confirmation.run_id, results)
    except Exception as e:  # the answer is printed and in the report; MLflow is a copy
        print(f"hpo confirm: could not log the results to MLflow: {e}", file=sys.stderr)
