"""`hpo report`: what a sweep found and why its winner won, as files a person can open.

Writes into the report folder (default `<experiment>/report/`): report.html (one self-contained
file, images inline), report.md, best_config.yaml (a search space of just the recommended
configuration), trials.csv and plots/*.png, then logs the folder as artifacts of the sweep's
MLflow parent run. Works on finished, interrupted and running sweeps (a snapshot). The sections
and their figures are sections.py's; which files hpo may replace or delete is folder.py's.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from tune import analysis
from tune.analysis import Confirmation, diagnose, summarize
from tune.core.files import write_atomic
from tune.core.text import fmt_value, num, varying_keys
from tune.report import sections
from tune.report.document import Image, to_html, to_markdown
from tune.report.folder import MARKER, claim, report_folder
from tune.space.spec import as_data
from tune.store import records
from tune.store.records import ExperimentRecord
from tune.store.trials import Trial, load_trials


@dataclass(frozen=True)
class Report:
    record: ExperimentRecord  # of the experiment it reports
    folder: Path  # where the files are
    files: list[Path]  # every file it wrote there
    summary: list[str]  # a few lines for the console


# -- the files besides the report ---------------------------------------------------------------


def best_config(record: ExperimentRecord, config: dict[str, Any], note: str) -> str:
    """A valid search-space YAML whose search holds just `config`, as constants: `hpo sweep`
    on it retrains exactly that configuration (same data split, steps and seed)."""
    spec = record.spec
    data = {
        "name": f"{spec.name[:95]}_best",  # sweep names have at most 100 characters
        "model": as_data(spec)["model"],
        "dataset": as_data(spec)["dataset"],
        "metric": asdict(spec.metric),
        "search": {k: v for k, v in config.items() if k in spec.search},
        "search_algorithm": "random",
        "scheduler": "none",
        "num_samples": 1,
        "resources": asdict(spec.resources),
        "max_failures": spec.max_failures,
        "seed": spec.seed,
    }
    header = f"# {note}\n# Retrain it: hpo sweep THIS_FILE\n"
    folders = {c.search_dir for c in (spec.model.code, spec.dataset.code) if c is not None}
    if folders:  # the user's module is found in the YAML's folder, which this one is not
        path = ":".join(sorted(folders))
        header = f"# {note}\n# Retrain it: PYTHONPATH={path} hpo sweep THIS_FILE\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def trials_csv(trials: Sequence[Trial], metric: str, mode: str) -> str:
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.config if k not in keys]
    with io.StringIO(newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["trial_id", "state", "epochs_run", "max_epochs", f"best_{metric}", f"last_{metric}",
             "last_train_loss", "last_val_loss", "last_loss_gap", "diagnosis", *keys]
        )  # fmt: skip
        for t in trials:
            w.writerow(
                [t.trial_id, t.state, t.epochs, t.max_epochs, num(t.best(metric, mode)),
                 num(t.last(metric)), num(t.last("train_loss")), num(t.last("val_loss")),
                 num(t.last("loss_gap")), diagnose(t).label,
                 *(fmt_value(t.config.get(k, "")) for k in keys)]
            )  # fmt: skip
        return f.getvalue()


# -- the whole report ---------------------------------------------------------------------------


def write_report(
    experiment_dir: Path, folder: Path | None = None, confirmation: Confirmation | None = None
) -> Report:
    """Every report file for the experiment, each written whole (tune/core/files.py) and listed in
    MARKER; returns what was written. MLflow logging is separate (log_report) so that a failing
    tracking store never costs the files."""
    record, trials = load_trials(experiment_dir)
    default = folder is None
    folder = report_folder(experiment_dir, folder)
    old = claim(folder, default)
    plots_dir = folder / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    metric, mode = record.metric, record.mode
    board = analysis.leaderboard(trials, metric, mode)
    params = varying_keys(trials)
    ctx = sections.Context(
        record, experiment_dir, trials, board, params, sections.scales(record, trials, params),
        plots_dir, confirmation,
    )  # fmt: skip
    acc = analysis.accounting(trials, record.expected_trials(len(trials)), record.max_epochs)
    blocks = sections.document(ctx, acc)
    files = [b.path for b in blocks if isinstance(b, Image)]
    files.append(write_atomic(folder / "report.md", to_markdown(blocks, folder)))
    files.append(
        write_atomic(folder / "report.html", to_html(blocks, f"hpo report: {record.name}"))
    )
    files.append(write_atomic(folder / "trials.csv", trials_csv(trials, metric, mode)))
    recommended, note = _recommended(record, board, confirmation)
    if recommended is not None:
        files.append(
            write_atomic(folder / "best_config.yaml", best_config(record, recommended, note))
        )
    names = [str(p.relative_to(folder)) for p in files]
    write_atomic(folder / MARKER, json.dumps(names, indent=1))
    for path in set(old) - set(files):  # only now: a failed write leaves the old report whole
        path.unlink(missing_ok=True)  # never a link's target: unlink removes the link itself
    summary = [
        f"{len(trials)} trials; {acc.epochs_run} of {acc.epochs_full} trial-epochs run "
        f"({acc.saved:.0%} saved by early stopping)",
        note,
    ]
    return Report(record, folder, files, summary=[line for line in summary if line])


def _recommended(
    record: ExperimentRecord, board: list[Trial], confirmation: Confirmation | None
) -> tuple[dict[str, Any] | None, str]:
    """The configuration to recommend, and the note that says why: the confirmed winner, else
    the sweep's best trial."""
    metric, mode = record.metric, record.mode
    if confirmation is not None and confirmation.winner is not None:
        w = confirmation.winner
        return w.config, (
            f"Recommended configuration of sweep {record.name} after `hpo confirm`: #{w.rank} "
            f"(trial {w.trial_id}), mean {metric} {summarize(w.metric).mean:.4f} over {len(w.metric)} seeds."
        )
    if board:
        return board[0].config, (
            f"Best configuration of sweep {record.name}: trial {board[0].trial_id}, {metric} "
            f"{board[0].best(metric, mode):.4f} (one seed; `hpo confirm` checks it)."
        )
    return None, ""


def absent_store(record: ExperimentRecord) -> str | None:
    """Why there is nothing to log the report into on this machine: no parent run recorded,
    or a SQLite store that is not here (it is never created for a report); else None."""
    uri = record.tracking_uri
    if not record.parent_run_id:
        return "the sweep has no MLflow parent run recorded"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return f"its tracking store {uri} is not on this machine"
    return None


def foreign_parent(record: ExperimentRecord, experiment_dir: Path) -> str | None:
    """Why the recorded parent run is not this experiment's (a copied folder), or None."""
    from tune.store.runs import foreign_run

    return foreign_run(record.tracking_uri, str(record.parent_run_id), experiment_dir)


def log_report(report: Report) -> str | None:
    """Log the files the report wrote, and only those, as artifacts (under report/) of the
    sweep's MLflow parent run; returns the error, if any."""
    from tune.store.runs import log_artifact

    record = report.record
    run_id = str(record.parent_run_id)
    try:
        for path in report.files:
            where = Path(records.REPORT_DIR) / path.relative_to(report.folder).parent
            log_artifact(record.tracking_uri, run_id, path, where.as_posix())
    except Exception as e:  # the files are written; a store that is down must not hide them
        return f"{type(e).__name__}: {e}"
    return None
