"""What a sweep, a resume or a confirm run says when it ends: the trial table, the best trial,
how it ended, what failed, was retried or missed by MLflow, where to look next; and its exit
code (docs/architecture.md, "The command line")."""

from __future__ import annotations

from tune.core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from tune.core.signals import terminated
from tune.core.text import fmt_config
from tune.run.experiment import RunResult
from tune.run.tracking import Backfilled
from tune.store import storage
from tune.store.records import tensorboard_dir
from tune.store.rows import format_table, retried_lines, summary_line


def exit_code(result: RunResult) -> int:
    if result.interrupted or result.signalled:
        return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED
    failed = result.errors or result.best is None or result.unsaved
    return EXIT_FAILURE if failed else EXIT_OK


def summary_lines(
    result: RunResult,
    metric: str,
    tracking_uri: str,
    command_s: float | None = None,
    best_trial: bool = True,
) -> list[str]:
    """The trial table, the best trial, how the run ended, what failed, was retried or missed
    by MLflow, and where to look next. `command_s`: how long the command has run, start-up
    (imports, Ray) included, when the caller knows. `best_trial`: False for a confirm run,
    whose best single seed is no answer (its confirmed recommendation comes after)."""
    return [
        *_results(result, metric, best_trial),
        *_ending(result, tracking_uri),
        *_where(result, tracking_uri, command_s),
    ]


def _results(result: RunResult, metric: str, best_trial: bool) -> list[str]:
    lines = [f"\n{summary_line(result.rows, metric)}"]
    if result.rows:
        lines.append(format_table(result.rows, metric))
    best = result.best
    if best is None:
        return [*lines, f"\nhpo: no trial reported {metric}."]
    if not best_trial:
        return lines
    return [
        *lines,
        f"\nBest trial {best.trial_id}: {metric} {best.best:.4f} after {best.epochs} epochs",
        f"  config: {fmt_config(best.config)}",
    ]


def _ending(result: RunResult, tracking_uri: str) -> list[str]:
    """How the run ended, and what failed, was retried or never reached MLflow."""
    lines = []
    if result.interrupted:
        why = " by SIGTERM" if terminated() else ""
        lines.append(
            f"hpo: interrupted{why} with {result.unfinished} trial(s) unfinished; continue with:"
        )
        lines.append(f"  hpo resume {result.experiment_dir}")
    elif result.unsaved:
        lines.append(f"hpo: Ray could not save its last state into the folder: {result.unsaved}")
        lines.append("  the folder keeps the state before; once the cause is fixed, continue with:")
        lines.append(f"  hpo resume {result.experiment_dir}")
    elif result.signalled:
        why = "SIGTERM" if terminated() else "SIGINT"
        lines.append(f"hpo: {why} came as the last trials ended; every trial had finished")
    elif result.budget_hit:
        lines.append(f"hpo: the time budget ran out; {result.unfinished} trial(s) never started")
    if result.errors:
        lines.append(
            f"hpo: {result.errors} trial(s) failed; their error files are under {result.experiment_dir}"
        )
    lines += retried_lines(result.rows)
    lines += caught_up_lines(result.caught_up, tracking_uri)
    if result.tracking_failures:
        lines.append(
            f"hpo: {result.tracking_failures} MLflow/TensorBoard writes failed (see the warnings above)"
        )
    if result.tracking_missed:
        lines.append(
            f"hpo: MLflow at {tracking_uri} could not be reached for {result.tracking_missed} "
            "write(s); the experiment folder has all of it. Once the server is back, log it with:"
        )
        lines.append(f"  hpo resume {result.experiment_dir}")
    return lines


def _where(result: RunResult, tracking_uri: str, command_s: float | None) -> list[str]:
    """How long it took, and where the results are: the folder, MLflow, TensorBoard, hpo."""
    folder = result.experiment_dir
    where = storage.ray_path(folder)
    took = f"{result.seconds:.0f} s of trials"
    if command_s is not None:
        took = f"{command_s:.0f} s ({took}; the rest: start-up, Ray, reading back)"
    lines = [f"Finished in {took}. Results: {where}"]
    if where != str(folder):
        lines.append(f"  (this machine's copy, without checkpoints: {folder})")
    if tracking_uri.startswith(("http://", "https://")):
        lines.append(f"  MLflow UI:    {tracking_uri}")  # the server is the UI
    else:
        lines.append(
            f"  MLflow UI:    mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1"
        )
    return [
        *lines,
        f"  TensorBoard:  tensorboard --logdir {tensorboard_dir(folder)} --host 127.0.0.1",
        f"  Trials:       hpo status {folder}",
        f"  Report:       hpo report {folder}",
    ]


def caught_up_lines(caught_up: Backfilled, tracking_uri: str) -> list[str]:
    """What a resume logged that MLflow had missed while it could not be reached, and the runs
    of trials Ray never saved that it deleted."""
    lines = []
    if caught_up.epochs or caught_up.ended:
        lines.append(
            f"hpo: MLflow at {tracking_uri} had missed {caught_up.epochs} epoch(s) and "
            f"{caught_up.ended} run end(s) while it could not be reached; logged them now"
        )
    if caught_up.unsaved:
        lines.append(
            f"hpo: deleted {caught_up.unsaved} MLflow run(s) of trials Ray had not saved when "
            "the sweep was killed (Ray starts them again)"
        )
    return lines
