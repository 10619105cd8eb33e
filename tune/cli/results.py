"""The handlers of the commands that read a finished sweep and hand on its results: `hpo
report`, `hpo confirm` (a run of its own, then the report and the registered model) and `hpo
export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tune.cli.common import (
    check_code,
    check_recorded_uri,
    data_dir,
    experiment_of,
    finish,
    run_options,
)
from tune.core.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    UsageError,
)
from tune.core.signals import terminated

if TYPE_CHECKING:
    from tune.analysis import Confirmation
    from tune.run.experiment import RunResult
    from tune.run.process import RunOptions
    from tune.store.records import ExperimentRecord


def cmd_report(args: argparse.Namespace) -> int:
    from tune.store import records

    exp_dir = experiment_of(args)
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

    exp_dir = experiment_of(args)
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

    exp_dir = experiment_of(args)
    with records.lock(exp_dir):
        record = records.load(exp_dir)
        if record.is_confirm:
            raise UsageError(f"{exp_dir} is a confirm run; name its sweep ({exp_dir.parent})")
        check_recorded_uri(record)

        def options() -> RunOptions:  # only when something will run
            check_code(record, args, "hpo confirm")
            return run_options(args)

        result = confirm.start_or_continue(
            exp_dir, record, args.top, args.seeds, args.overwrite, options
        )
    if result is None:  # confirmed already, with these numbers
        return _report_and_recommend(exp_dir, record)
    return after_confirm(exp_dir, result, record)


def after_confirm(exp_dir: Path, result: RunResult, record: ExperimentRecord) -> int:
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
