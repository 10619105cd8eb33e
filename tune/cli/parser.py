"""`hpo`'s command line: every subcommand, flag and help text (README, "Use")."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

DEFAULT_STORAGE = "./runs"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
VERBOSE_HELP = "Ray's and MLflow's own logs, tracebacks"


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
    s.add_argument(
        "--warm-start",
        metavar="NAME|PATH",
        default=None,
        help="an earlier experiment (same metric and mode): Optuna is first told its finished "
        "trials that lie inside this space; random and grid search name its best as a baseline",
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
        "--no-plan",
        action="store_true",
        help="start without `hpo plan`'s forecast, which is otherwise measured (seconds) and "
        "recorded for the report (so too with $HPO_NO_PLAN=1)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing experiment of this name: its folder is moved to .trash/ beside it and its MLflow runs are soft-deleted, once the new one has started",
    )


def _plan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="what a sweep will cost, before it runs: trial-epochs, wall time and memory, "
        "from a few real training steps of each model shape; writes nothing",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--name", help="experiment name (default: the YAML's name, else its file stem)")
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to measure on, HEAD:6379 (default: $RAY_ADDRESS, else this machine)",
    )
    p.add_argument("--num-samples", type=_positive("num-samples"), help="override num_samples")
    p.add_argument(
        "--max-concurrent", type=_positive("max-concurrent"), help="override max_concurrent_trials"
    )
    p.add_argument("--json", action="store_true", help="end with the figures as one JSON line")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)


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
    p.add_argument("--version", action="version", version=f"hpo {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("validate", help="check search-space files; exit 0 valid, 2 invalid")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.add_argument(
        "--for-cluster",
        action="store_true",
        help="check the files for a Ray cluster: this machine's CPUs, GPUs and data files are "
        "not checked (so too with --address or $RAY_ADDRESS)",
    )
    v.add_argument("--address", default=None, help="the Ray cluster the files are for")
    v.add_argument(
        "--verbose",
        action="store_true",
        help="what your model and data code printed, and the tracebacks behind its errors",
    )
    _sweep_parser(sub)
    _plan_parser(sub)
    _resume_parser(sub)
    _extend_parser(sub)
    ls = sub.add_parser("list", help="the experiments in the storage, a line each")
    _shared(ls, experiment=False, verbose="")
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
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier confirm run: moved to .trash/, its MLflow runs soft-deleted",
    )
    _allow_changed_code(c)
    _export_parser(sub)
    _jobs_parsers(sub)
    return p


def _export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser(
        "export",
        help="the winning model as files: model.pt2 (torch.export), model_card.md, labels.json, "
        "best_config.yaml",
    )
    _shared(ex, verbose="tracebacks")
    ex.add_argument("--out", required=True, help="folder to write (new, empty, or an export's)")


def _resume_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    _allow_changed_code(r)


def _extend_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser(
        "extend",
        help="add trials to a finished or interrupted random or Optuna sweep, which continues "
        "its searcher and ASHA",
    )
    _shared(e)
    e.add_argument(
        "--num-samples",
        type=_positive("num-samples"),
        required=True,
        help="samples to add, counted as num_samples is (trials, times the grid's points "
        "where the space has grid entries)",
    )
    _allow_changed_code(e)


def _allow_changed_code(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-changed-code",
        action="store_true",
        help="go on although your model or data module changed since the sweep started",
    )


def _version() -> str:
    try:
        return version("hpo")
    except PackageNotFoundError:  # a checkout run without `pip install`
        return "(not installed)"
