"""`hpo`: one handler per subcommand (docs/architecture.md, "The command line").

Exit codes: 0 done, 1 failure at run time, 2 bad input (file, flag, name), 130 interrupted.
Bad input prints one line per problem on stderr and starts nothing; a traceback only with
--verbose. Everything hpo takes from outside (flags, then $HPO_STORAGE, $MLFLOW_TRACKING_URI,
$RAY_ADDRESS, $HPO_DATA_DIR, and for the job commands $RAY_API_SERVER_ADDRESS) is read here,
once, and passed on as options.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tune.core.errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    InUseError,
    Problem,
    SpecError,
    UsageError,
)
from tune.core.signals import terminated
from tune.store.tracking_uri import absolute_tracking_uri, check_tracking_uri

if TYPE_CHECKING:
    from tune.cluster.jobs import Submitted
    from tune.run.experiment import Aside, RunOptions, RunResult
    from tune.run.tracking import Backfilled
    from tune.space.spec import SweepSpec
    from tune.store.record import ExperimentRecord

DEFAULT_STORAGE = "./runs"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
VERBOSE_HELP = "Ray's and MLflow's own logs, tracebacks"


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


def run_options(args: argparse.Namespace) -> RunOptions:
    """The options of a command that runs Ray, and this process set up for it: Ray Tune's
    environment variables and the libraries' log levels."""
    from tune.run.experiment import RunOptions, quiet_loggers, ray_environment

    os.environ.update(ray_environment(args.verbose))
    quiet_loggers(args.verbose)
    return RunOptions(address=address_of(args), verbose=args.verbose, data_dir=data_dir())


# -- the parser ---------------------------------------------------------------------------------


def _positive(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an integer (a whole number >= 1)"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{value} is too small (a whole number >= 1)")
        return value

    parse.__name__ = flag
    return parse


def _shared(
    p: argparse.ArgumentParser, *, experiment: bool = True, verbose: str = VERBOSE_HELP
) -> None:
    """NAME|PATH of an experiment (unless `experiment` is False), --storage and --verbose."""
    if experiment:
        p.add_argument("experiment", metavar="NAME|PATH")
    where = "for experiments" if not experiment else "the experiment is in"
    p.add_argument(
        "--storage",
        default=None,
        help=f"folder {where} (default: $HPO_STORAGE or {DEFAULT_STORAGE})",
    )
    if verbose:
        p.add_argument("--verbose", action="store_true", help=verbose)


def _sweep_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("sweep", help="run a search from a search-space YAML")
    _sweep_flags(
        s,
        address="Ray cluster to join from this node, HEAD:6379 (default: $RAY_ADDRESS, else a "
        "local Ray in this process); to run the sweep on a cluster, use `hpo submit`",
    )
    sub_ = sub.add_parser(
        "submit", help="run a sweep on a Ray cluster as a Ray Job; it goes on without you"
    )
    _sweep_flags(
        sub_,
        address="the cluster's Ray dashboard, http://HEAD:8265 (default: "
        "$RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)",
        storage="storage every node reaches: a shared folder (absolute path) or "
        "s3://bucket/prefix (default: $HPO_STORAGE)",
    )


def _sweep_flags(p: argparse.ArgumentParser, address: str, storage: str = "") -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="experiment name (default: the YAML's name, else its file stem)")
    if storage:
        p.add_argument("--storage", default=None, help=storage)
        p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    else:
        _shared(p, experiment=False)
    p.add_argument(
        "--tracking-uri",
        default=None,
        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})",
    )
    p.add_argument("--address", default=None, help=address)
    p.add_argument("--num-samples", type=_positive("num-samples"), help="override num_samples")
    p.add_argument(
        "--max-concurrent", type=_positive("max-concurrent"), help="override max_concurrent_trials"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="2 tiny epochs, at most 2 samples: check the whole path in seconds",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete an existing experiment of this name (folder and its MLflow runs) first",
    )


def _jobs_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    address = "the cluster's Ray dashboard, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)"
    lg = sub.add_parser("logs", help="print a submitted sweep's output (--follow: until it ends)")
    lg.add_argument("job", metavar="JOB_ID")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    lg.add_argument("--address", default=None, help=address)
    sp = sub.add_parser("stop", help="stop a submitted sweep as Ctrl+C would: `hpo resume` goes on")
    sp.add_argument("job", metavar="JOB_ID")
    sp.add_argument("--address", default=None, help=address)
    js = sub.add_parser("jobs", help="the sweeps submitted to a cluster, with their status")
    js.add_argument("--address", default=None, help=address)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hpo", description="Hyperparameter search on Ray Tune, tracked in MLflow."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("validate", help="check search-space files; exit 0 valid, 2 invalid")
    v.add_argument("files", nargs="+", metavar="FILE")
    _sweep_parser(sub)
    r = sub.add_parser("resume", help="continue an interrupted sweep where it stopped")
    _shared(r)
    r.add_argument(
        "--address",
        default=None,
        help="Ray cluster: HEAD:6379 to drive it from this node, or http://HEAD:8265 to submit "
        "the resume as a Ray Job (default: $RAY_ADDRESS, else a local Ray)",
    )
    r.add_argument(
        "--restart-errored",
        action="store_true",
        help="run failed trials again from epoch 1 (default: from their last checkpoint)",
    )
    st = sub.add_parser("status", help="one row a trial: id, state, epochs, best metric, config")
    _shared(st, verbose="")
    rp = sub.add_parser(
        "report", help="write the report (HTML, Markdown, best_config.yaml, trials.csv, plots)"
    )
    _shared(rp, verbose="tracebacks")
    rp.add_argument("--out", default=None, help="report folder (default: EXPERIMENT/report)")
    c = sub.add_parser(
        "confirm",
        help="retrain the top K configurations with S fresh seeds each, test them once, report",
    )
    _shared(c)
    c.add_argument("--top", type=_positive("top"), default=3, help="configurations (default 3)")
    c.add_argument("--seeds", type=_positive("seeds"), default=3, help="seeds each (default 3)")
    c.add_argument("--overwrite", action="store_true", help="discard an earlier confirm run first")
    _jobs_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {
        "validate": cmd_validate,
        "sweep": cmd_sweep,
        "resume": cmd_resume,
        "status": cmd_status,
        "report": cmd_report,
        "confirm": cmd_confirm,
        "submit": cmd_submit,
        "logs": cmd_logs,
        "stop": cmd_stop,
        "jobs": cmd_jobs,
    }[args.command]
    try:
        status = handler(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return status
    except SpecError as e:
        for line in e.lines():
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except (UsageError, InUseError) as e:
        print(f"hpo {args.command}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("hpo: interrupted", file=sys.stderr)
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    except BrokenPipeError:
        return _reader_gone()
    except Exception as e:  # a run-time failure: one line unless asked for more
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"hpo {args.command}: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE


def run(argv: Sequence[str] | None = None) -> int:
    """The `hpo` command: main(), then the interpreter's exit with less to do. That exit collects
    every object once more before it tears the modules down; with torch, Ray and MLflow loaded
    the pass takes 1-1.5 s of CPU (measured: a smoke sweep's exit 4.0 s -> 2.5 s), for memory
    the OS frees anyway. Frozen objects are left out of it; threads are joined and atexit
    handlers (Ray's shutdown, MLflow's, logging's flush) run as ever. Not in main(), which tests
    call in their own process."""
    status = main(argv)
    gc.freeze()
    return status


def _reader_gone() -> int:
    """`hpo status | head`: the reader closed the pipe, which is no failure of ours. Whatever is
    still buffered goes to /dev/null, or Python's flush at exit would print a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def cmd_validate(args: argparse.Namespace) -> int:
    from tune.space.spec import load_spec

    status = EXIT_OK
    for file in args.files:
        try:
            spec = load_spec(file, local=address_of(args) is None, data_dir=data_dir())
        except SpecError as e:
            for line in e.lines():
                print(line, file=sys.stderr)
            status = EXIT_BAD_INPUT
            continue
        print(f"{file}: valid: sweep '{spec.name}': {spec.describe()}")
    return status


def _sweep_spec(args: argparse.Namespace, *, local: bool, driver: bool) -> SweepSpec:
    """The sweep's spec with the command line's overrides, checked: exit 2 on any problem."""
    from tune.space.spec import check_name, load_spec, sample_checks, with_overrides

    if args.name is not None and (bad := check_name(args.name)) is not None:
        raise SpecError("--name", [Problem("", bad.message, bad.allowed)])
    spec = load_spec(args.file, local=local, driver=driver, name=args.name, data_dir=data_dir())
    spec = with_overrides(
        spec, num_samples=args.num_samples, max_concurrent_trials=args.max_concurrent
    )
    if args.num_samples is not None and (problems := sample_checks(spec)):
        raise SpecError(f"{args.file} with --num-samples {args.num_samples}", problems)
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
    from tune.store import record as records
    from tune.store import storage as storage_module

    address = address_of(args)
    _not_a_job_address(address, "sweep")
    spec = _sweep_spec(args, local=address is None, driver=True)
    from tune.run import experiment, sweep

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
        aside = experiment.set_aside(exp_dir, spec, options)
        _said_aside(aside)
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
    from tune.cluster import jobs

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
    sweep_args = [
        "sweep", Path(args.file).name, "--name", spec.name,
        "--storage", storage, "--tracking-uri", tracking_uri,
    ]  # fmt: skip
    for flag, value in (
        ("--num-samples", args.num_samples),
        ("--max-concurrent", args.max_concurrent),
    ):
        if value is not None:
            sweep_args += [flag, str(value)]
    sweep_args += [
        f
        for f, on in (
            ("--smoke", args.smoke),
            ("--overwrite", args.overwrite),
            ("--verbose", args.verbose),
        )
        if on
    ]
    submitted = jobs.submit(address, sweep_args, spec.name, spec_file=Path(args.file))
    return _after_submit(submitted, spec.name, storage)


def _cluster_storage(args: argparse.Namespace) -> str:
    """Storage for a sweep whose driver runs elsewhere: every node must reach it by the same
    name, so a relative folder (the default ./runs) means nothing there."""
    storage = storage_of(args) if args.storage or os.environ.get("HPO_STORAGE") else None
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
    from tune.run import confirm, experiment, sweep
    from tune.store import record as records
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
            _said_caught_up(caught_up, record.tracking_uri)
            return EXIT_OK
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
    resume_args = ["resume", name, "--storage", storage]
    resume_args += [
        f
        for f, on in (("--restart-errored", args.restart_errored), ("--verbose", args.verbose))
        if on
    ]
    submitted = jobs.submit(jobs.job_address(address), resume_args, name)
    return _after_submit(submitted, name, storage)


def _said_caught_up(caught_up: Backfilled, tracking_uri: str) -> None:
    if caught_up.epochs or caught_up.ended:
        print(
            f"hpo: MLflow at {tracking_uri} had missed {caught_up.epochs} epoch(s) and "
            f"{caught_up.ended} run end(s) while it could not be reached; logged them now"
        )


def _said_aside(aside: Aside | None) -> None:
    if aside is not None:
        print(f"hpo: the earlier {aside.folder.name} is now in {aside.trash} (delete it when sure)")


def _check_recorded_uri(record: ExperimentRecord) -> None:
    """The tracking store an experiment recorded must still be there before anything runs."""
    if (problem := check_tracking_uri(record.tracking_uri)) is not None:
        raise UsageError(problem.replace("--tracking-uri", "the recorded tracking URI", 1))


def finish(result: RunResult, metric: str, tracking_uri: str) -> int:
    """Print the summary of a sweep or resume and choose the exit code."""
    print_summary(result, metric, tracking_uri)
    if result.interrupted or result.signalled:
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    return EXIT_FAILURE if result.errors or result.best is None else EXIT_OK


def print_summary(result: RunResult, metric: str, tracking_uri: str) -> None:
    from tune.core.text import fmt_value
    from tune.store import storage
    from tune.store.record import tensorboard_dir
    from tune.store.rows import format_table, retried_lines, summary_line

    print(f"\n{summary_line(result.rows, metric)}")
    if result.rows:
        print(format_table(result.rows, metric))
    best = result.best
    if best is None:
        print(f"\nhpo: no trial reported {metric}.")
    else:
        config = ", ".join(f"{k}={fmt_value(v)}" for k, v in best.config.items())
        print(f"\nBest trial {best.trial_id}: {metric} {best.best:.4f} after {best.epochs} epochs")
        print(f"  config: {config}")
    if result.interrupted:
        why = " by SIGTERM" if terminated() else ""
        print(f"hpo: interrupted{why} with {result.unfinished} trial(s) unfinished; continue with:")
        print(f"  hpo resume {result.experiment_dir}")
    elif result.signalled:
        why = "SIGTERM" if terminated() else "SIGINT"
        print(f"hpo: {why} came as the last trials ended; every trial had finished")
    elif result.budget_hit:
        print(f"hpo: the time budget ran out; {result.unfinished} trial(s) never started")
    if result.errors:
        print(
            f"hpo: {result.errors} trial(s) failed; their error files are under {result.experiment_dir}"
        )
    for line in retried_lines(result.rows):
        print(line)
    _said_caught_up(result.caught_up, tracking_uri)
    if result.tracking_failures:
        print(
            f"hpo: {result.tracking_failures} MLflow/TensorBoard writes failed (see the warnings above)"
        )
    if result.tracking_missed:
        print(
            f"hpo: MLflow at {tracking_uri} could not be reached for {result.tracking_missed} "
            "write(s); the experiment folder has all of it. Once the server is back, log it with:"
        )
        print(f"  hpo resume {result.experiment_dir}")
    where = storage.ray_path(result.experiment_dir)
    print(f"Finished in {result.seconds:.0f} s. Results: {where}")
    if where != str(result.experiment_dir):
        print(f"  (this machine's copy, without checkpoints: {result.experiment_dir})")
    if tracking_uri.startswith(("http://", "https://")):
        print(f"  MLflow UI:    {tracking_uri}")  # the server is the UI
    else:
        print(f"  MLflow UI:    mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1")
    print(
        f"  TensorBoard:  tensorboard --logdir {tensorboard_dir(result.experiment_dir)} --host 127.0.0.1"
    )
    print(f"  Trials:       hpo status {result.experiment_dir}")
    print(f"  Report:       hpo report {result.experiment_dir}")


def _experiment(args: argparse.Namespace) -> Path:
    from tune.store import record as records

    storage = storage_of(args)
    exp_dir = records.locate(args.experiment, storage)
    if exp_dir is None:
        raise UsageError(
            f"no experiment '{args.experiment}' (neither a folder nor a name in {storage})"
        )
    return exp_dir


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
    from tune.store import record as records

    exp_dir = _experiment(args)
    if records.load(exp_dir).is_confirm:
        exp_dir = exp_dir.parent  # a confirm run is reported with its sweep
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} is a file, not a folder")
    return _write_report(exp_dir, out)


def _write_report(exp_dir: Path, out: Path | None = None) -> int:
    from tune.report import write
    from tune.run import confirm
    from tune.store import record as records

    result = write.write_report(exp_dir, out, confirm.load_confirmation(exp_dir))
    for line in result.summary:
        print(f"hpo: {line}")
    print(
        f"Report: {result.folder / 'report.html'} (also report.md, best_config.yaml, trials.csv, plots/)"
    )
    record = result.record
    # The store is checked first (bounded in time: MLflow's own client retries for minutes),
    # and the parent run must be this experiment's: a folder from elsewhere names a store and
    # a run this machine may not have, or another experiment's run.
    if (absent := write.absent_store(record)) is not None:
        print(f"hpo report: not logged to MLflow: {absent}")
        return EXIT_OK
    error = check_tracking_uri(record.tracking_uri)
    if error is None:
        try:
            if (foreign := write.foreign_parent(result, exp_dir)) is not None:
                print(f"hpo report: not logged to MLflow: {foreign}")
                return EXIT_OK
        except Exception as e:  # the store answered with an error
            error = f"{type(e).__name__}: {e}"
    error = error or write.log_report(result)
    if error is not None:
        print(
            f"hpo report: files written, but logging them to MLflow failed: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    print(f"  logged to MLflow run {record.parent_run_id} (artifacts: {records.REPORT_DIR}/)")
    return EXIT_OK


def cmd_confirm(args: argparse.Namespace) -> int:
    from tune.store import record as records

    exp_dir = _experiment(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        if record.is_confirm:
            raise UsageError(f"{exp_dir} is a confirm run; name its sweep ({exp_dir.parent})")
        _check_recorded_uri(record)
        result = _confirm(args, exp_dir, record)
    if result is None:
        return _write_report(exp_dir)
    return _after_confirm(exp_dir, result, record)


def _confirm(args: argparse.Namespace, exp_dir: Path, record: ExperimentRecord) -> RunResult | None:
    """Start, continue or (with --overwrite) replace the sweep's confirm run; None when it is
    finished already and only the report is due."""
    from tune.run import confirm, experiment
    from tune.store import record as records

    earlier = confirm.existing(exp_dir)
    folder = records.confirm_dir(exp_dir)
    if earlier is not None and not args.overwrite:
        if (len(earlier.candidates), len(earlier.seeds)) != (args.top, args.seeds):
            raise UsageError(
                f"{folder} already holds a confirm run with --top {len(earlier.candidates)} "
                f"--seeds {len(earlier.seeds)}: run that again to continue it, or add --overwrite"
            )
        if experiment.is_finished(folder):
            print(f"hpo: '{record.name}' is confirmed already; writing the report again.")
            return None
        if not confirm.started_here(earlier, folder):
            # Continuing unpickles Ray's state in the folder: only by the user's explicit word.
            raise UsageError(
                f"{folder} holds an unfinished confirm run that hpo on this machine did not "
                "start (a folder from elsewhere, copied or moved); continuing it runs what its "
                f"saved state says: if you trust it, `hpo resume {folder}`; or start it again "
                "with --overwrite"
            )
        options = run_options(args)
        print(f"hpo: continuing the confirm run in {folder}")
        return experiment.run_experiment(earlier, folder, confirm.plan(earlier, options), options)
    new = confirm.new_confirm(exp_dir, args.top, args.seeds)  # refuses a --top too large
    options = run_options(args)
    aside = experiment.set_aside(folder, record.spec, options)
    _said_aside(aside)
    print(
        f"hpo: confirm '{record.name}': the top {args.top} configurations x {args.seeds} "
        f"fresh seeds, full epochs, then one test-set evaluation each; results in {folder}",
        flush=True,
    )
    plan = confirm.plan(new, options)
    return experiment.run_experiment(new, folder, plan, options, replacing=aside)


def _after_confirm(exp_dir: Path, result: RunResult, record: ExperimentRecord) -> int:
    """The confirm run's trial table, then the report with its confirmation section."""
    from tune.core.signals import deferred

    status = finish(result, record.metric, record.tracking_uri)
    if result.interrupted or status:
        return status
    # A signal now is noted and the report finishes whole: interrupted mid-way (plots, the
    # MLflow upload) with Ray's threads still up, the interpreter aborted at exit (-6).
    with deferred() as stopped:
        status = _write_report(exp_dir)
    if stopped():
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(run())
