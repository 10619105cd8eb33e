"""`hpo report`: what a sweep found and why its winner won, as files a person can open.

Writes into the report folder (default `<experiment>/report/`): report.html (one self-contained
file, images inline), report.md, best_config.yaml (a search space of just the recommended
configuration), trials.csv and plots/*.png, then logs the folder as artifacts of the sweep's
MLflow parent run. Works on finished, interrupted and running sweeps (a snapshot).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from tune import analysis
from tune.analysis import Accounting, Confirmation, Diagnosis, diagnose, summarize
from tune.core import states
from tune.core.errors import Problem, SpecError, show
from tune.core.files import UnreadableFile, inside, load_json, write_atomic
from tune.core.text import duration, fmt_value, varying_keys
from tune.report import plots
from tune.report.document import Block, Heading, Image, Para, Table, to_html, to_markdown
from tune.space.distributions import Distribution
from tune.space.hyperparams import RULES
from tune.store import record as records
from tune.store.record import ExperimentRecord
from tune.store.trials import Trial, load_trials

LEADERBOARD_SIZE = 10
LOSS_PANELS = 12  # trials shown in the training-vs-validation loss figure


@dataclass(frozen=True)
class Report:
    record: ExperimentRecord  # of the experiment it reports
    folder: Path  # where the files are
    files: list[Path]  # every file it wrote there
    summary: list[str]  # a few lines for the console


def scales(
    record: ExperimentRecord, trials: Sequence[Trial], params: Sequence[str]
) -> dict[str, str]:
    """How each varying hyperparameter is shown, from its distribution in the search space."""
    out = {}
    for p in params:
        entry = record.spec.search.get(p)
        kind = entry.kind if isinstance(entry, Distribution) else None
        if kind == "randint":
            kind = None  # few integers: groups; many: a number line (decided by the values)
        out[p] = analysis.scale_of([t.config[p] for t in trials if p in t.config], kind)
    return out


# -- the files besides the report ---------------------------------------------------------------


def best_config(record: ExperimentRecord, config: dict[str, Any], note: str) -> str:
    """A valid search-space YAML whose search holds just `config`, as constants: `hpo sweep`
    on it retrains exactly that configuration (same data split, steps and seed)."""
    spec = record.spec
    data = {
        "name": f"{spec.name[:95]}_best",  # sweep names have at most 100 characters
        "dataset": asdict(spec.dataset),
        "metric": asdict(spec.metric),
        "search": {k: v for k, v in config.items() if k in RULES},
        "search_algorithm": "random",
        "scheduler": "none",
        "num_samples": 1,
        "resources": asdict(spec.resources),
        "max_failures": spec.max_failures,
        "seed": spec.seed,
    }
    header = f"# {note}\n# Retrain it: hpo sweep THIS_FILE\n"
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
                [t.trial_id, t.state, t.epochs, t.max_epochs, _num(t.best(metric, mode)),
                 _num(t.last(metric)), _num(t.last("train_loss")), _num(t.last("val_loss")),
                 _num(t.last("loss_gap")), diagnose(t).label,
                 *(fmt_value(t.config.get(k, "")) for k in keys)]
            )  # fmt: skip
        return f.getvalue()


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


# -- sections -----------------------------------------------------------------------------------


@dataclass
class _Context:
    record: ExperimentRecord
    experiment_dir: Path
    trials: list[Trial]
    board: list[Trial]
    params: list[str]
    scales: dict[str, str]
    plots_dir: Path
    confirmation: Confirmation | None

    @property
    def metric(self) -> str:
        return self.record.metric

    @property
    def mode(self) -> str:
        return self.record.mode


def _state_text(record: ExperimentRecord, trials: Sequence[Trial]) -> str:
    open_ = sum(t.state in states.RESUMABLE for t in trials)
    missing = max(0, record.expected_trials(len(trials)) - len(trials))
    if open_ or missing:
        return (
            f"**Snapshot of an unfinished sweep**: {open_} trial(s) pending or running, {missing} "
            f"not created yet. Numbers below cover what has been reported so far; `hpo resume` "
            f"continues an interrupted sweep, and `hpo report` again updates this report."
        )
    done = "every trial completed, stopped early or failed"
    if record.budget_ended:
        return (
            f"The sweep is finished: its time budget ({record.spec.time_budget_s:g} s) ended it "
            f"at {record.budget_ended}, when it had created {len(trials)} of the "
            f"{record.trial_count} trials num_samples allows; {done}, or never started."
        )
    return f"The sweep is finished: {done}."


def _config_table(config: dict[str, Any]) -> Table:
    return Table(["hyperparameter", "value"], [[k, fmt_value(v)] for k, v in config.items()])


def _overview(ctx: _Context) -> list[Block]:
    r = ctx.record
    return [
        Heading(f"hpo report: {r.name}", 1),
        Para(
            f"Experiment folder `{ctx.experiment_dir}`; generated "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}. Metric: `{ctx.metric}` ({ctx.mode}). "
            f"MLflow: experiment `{r.name}` at `{r.tracking_uri}`, sweep run "
            f"`{r.parent_run_id}` (each trial a child run tagged `hpo.trial_id`)."
        ),
        Para(_state_text(r, ctx.trials)),
        *[
            Para(f"Trial `{t.trial_id}` failed after {t.epochs} epoch(s): {t.error}")
            for t in ctx.trials
            if t.error
        ],
        *[
            Para(
                f"Trial `{t.trial_id}` diverged: its loss was not a finite number from epoch "
                f"{t.diverged_at} on (see Over- and underfitting)."
            )
            for t in ctx.trials
            if t.diverged_at is not None
        ],
    ]


def _recommendation(ctx: _Context) -> list[Block]:
    blocks: list[Block] = [Heading("Recommendation")]
    c = ctx.confirmation
    if c is not None and c.winner is not None:
        w = c.winner
        s, test = summarize(w.metric), summarize(w.test_accuracy)
        verdict = (
            "It is distinguishable from the runner-up"
            if c.distinguishable
            else "It is **not** distinguishable from the runner-up"
            if c.distinguishable is False
            else "With one configuration or one seed there is no runner-up test"
        )
        p = f" (Welch's t-test p = {c.p_value:.3g})" if c.p_value is not None else ""
        blocks.append(
            Para(
                f"After confirmation, use configuration **#{w.rank}** (sweep trial `{w.trial_id}`): "
                f"mean {ctx.metric} {s.mean:.4f} over {s.n} seeds, mean test accuracy "
                f"{test.mean:.4f}. {verdict}{p}; see Confirmation below. `best_config.yaml` holds it."
            )
        )
        blocks.append(_config_table(w.config))
        return blocks
    best = ctx.board[0] if ctx.board else None
    if best is None:
        return [*blocks, Para("No trial has reported the metric yet.")]
    blocks.append(
        Para(
            f"The sweep's best trial is `{best.trial_id}` with {ctx.metric} "
            f"{best.best(ctx.metric, ctx.mode):.4f}. It is one run with one seed: run "
            f"`hpo confirm {ctx.record.name} --top {min(3, len(ctx.board))} --seeds 3` to retrain the top "
            f"configurations with fresh seeds and test them once on the held-out test set before "
            f"trusting the ranking. `best_config.yaml` holds this configuration."
        )
    )
    return blocks


def _best(ctx: _Context) -> list[Block]:
    if not ctx.board:
        return []
    t = ctx.board[0]
    epochs, values = t.series(ctx.metric)
    best_value = t.best(ctx.metric, ctx.mode)
    at = epochs[values.index(best_value)] if best_value in values else t.epochs
    d = diagnose(t)
    return [
        Heading("Best configuration of the sweep"),
        _config_table(t.config),
        Table(
            [
                "trial",
                "state",
                "epochs",
                f"best {ctx.metric}",
                "at epoch",
                "last train loss",
                "last val loss",
                "loss gap",
                "diagnosis",
            ],
            [
                [
                    t.trial_id,
                    states.label(t.state),
                    f"{t.epochs}/{t.max_epochs}",
                    _num(best_value),
                    str(at),
                    _num(t.last("train_loss")),
                    _num(t.last("val_loss")),
                    _num(t.last("loss_gap")),
                    f"{d.label} ({d.reason})",
                ]
            ],
        ),
    ]


def _leaderboard(ctx: _Context) -> list[Block]:
    rows = []
    for i, t in enumerate(ctx.board[:LEADERBOARD_SIZE], start=1):
        rows.append(
            [str(i), t.trial_id, states.label(t.state), f"{t.epochs}/{t.max_epochs}",
             _num(t.best(ctx.metric, ctx.mode)), _num(t.last("val_loss")), diagnose(t).label,
             *(fmt_value(t.config.get(p)) for p in ctx.params)]
        )  # fmt: skip
    return [
        Heading("Leaderboard"),
        Para(
            f"The top {len(rows)} of {len(ctx.board)} trials that reported {ctx.metric}, by their "
            f"best epoch ({ctx.mode}). `trials.csv` has every trial."
        ),
        Table(
            [
                "#",
                "trial",
                "state",
                "epochs",
                f"best {ctx.metric}",
                "last val loss",
                "diagnosis",
                *ctx.params,
            ],
            rows,
        ),
    ]


def _curves(ctx: _Context) -> list[Block]:
    best_id = ctx.board[0].trial_id if ctx.board else None
    path = plots.learning_curves(
        ctx.trials, ctx.metric, best_id, ctx.plots_dir / "learning_curves.png"
    )
    return [
        Heading("Learning curves"),
        Image(
            path,
            f"{ctx.metric} after every epoch. Grey dashed lines with a cross: trials stopped early "
            f"(by ASHA or the time budget); coloured: trials that ran all their epochs; black: the best.",
        ),
    ]


def _effects(ctx: _Context) -> list[Block]:
    if not ctx.params:
        return [Heading("Effect of each hyperparameter"), Para("No hyperparameter varied.")]
    epoch = analysis.common_epoch(ctx.trials)
    blocks: list[Block] = [
        Heading("Effect of each hyperparameter"),
        Para(
            f"Each trial's best {ctx.metric} by the value it used. Trials stopped early ran fewer "
            f"epochs, so their best is lower partly for that reason; the red diamonds compare every "
            f"value at epoch {epoch}, which all trials reached (the same budget for all)."
        ),
    ]
    for p in ctx.params:
        blocks.append(Heading(p, 3))
        if ctx.scales[p] == "discrete":
            blocks += _effect_discrete(ctx, p, epoch)
        else:
            blocks += _effect_continuous(ctx, p)
    return blocks


def _points(ctx: _Context, param: str) -> list[tuple[Any, float, str]]:
    """(value of `param`, best metric, state) of every trial that reported the metric."""
    return [
        (t.config[param], t.best(ctx.metric, ctx.mode) or 0.0, t.state)
        for t in ctx.board
        if param in t.config
    ]


def _effect_discrete(ctx: _Context, p: str, epoch: int) -> list[Block]:
    """One group a value: every trial's best, the mean, and the mean at the common epoch."""
    rows = analysis.effects(ctx.trials, p, ctx.metric, ctx.mode)
    path = ctx.plots_dir / f"effect_{p}.png"
    plots.effect_discrete(p, rows, _points(ctx, p), ctx.metric, epoch, path)
    header = ["value", "trials", f"mean best {ctx.metric}", "best", f"mean at epoch {epoch}"]
    body = [
        [fmt_value(r.value), str(r.trials), _num(r.mean_best), _num(r.best), _num(r.mean_at_common)]
        for r in rows
    ]
    return [Image(path, f"Effect of {p} on {ctx.metric}"), Table(header, body)]


def _effect_continuous(ctx: _Context, p: str) -> list[Block]:
    """A number line: every trial's best against its value, with a least-squares trend."""
    points = [(float(x), y, s) for x, y, s in _points(ctx, p)]
    line = analysis.trend(
        [x for x, _, _ in points], [y for _, y, _ in points], log=ctx.scales[p] == "log"
    )
    path = ctx.plots_dir / f"effect_{p}.png"
    plots.effect_continuous(p, points, line, ctx.metric, path)
    blocks: list[Block] = [
        Image(path, f"Effect of {p} on {ctx.metric}, with a least-squares trend")
    ]
    if line is not None:
        per = "for every 10x increase of" if line.log else "per unit of"
        blocks.append(
            Para(
                f"Trend: {ctx.metric} changes by {line.slope:+.4g} {per} {p} (over {line.points} trials)."
            )
        )
    return blocks


def _interactions(ctx: _Context) -> list[Block]:
    pairs = analysis.interaction_pairs(ctx.params, ctx.scales)
    if not pairs:
        return []
    blocks: list[Block] = [
        Heading("Interactions"),
        Para(
            f"Mean best {ctx.metric} of the trials with each pair of values. A pattern that changes "
            f"from one row to the next means the two hyperparameters interact (for example, dropout "
            f"that helps only without normalization)."
        ),
    ]
    for a, b in pairs:
        data = analysis.interaction(ctx.trials, a, b, ctx.metric, ctx.mode)
        if not data.a_values or not data.b_values:
            continue  # no trial with a result has both: nothing to draw
        path = plots.heatmap(data, ctx.metric, ctx.plots_dir / f"interaction_{a}_x_{b}.png")
        blocks.append(Image(path, f"{a} x {b}"))
    return blocks


def _importance(ctx: _Context) -> list[Block]:
    data = analysis.importance_input(ctx.trials, ctx.params, ctx.scales, ctx.metric, ctx.mode)
    values = analysis.importance(data, ctx.mode)
    head: list[Block] = [Heading("Hyperparameter importance")]
    if not values:
        return [
            *head,
            Para(
                f"Not computed: it needs at least {analysis.MIN_IMPORTANCE_TRIALS} finished trials and "
                f"a hyperparameter that varies among them ({len(data.values)} finished, "
                f"{len(data.params)} varying)."
            ),
        ]
    path = plots.importance_bars(values, ctx.plots_dir / "importance.png")
    return [
        *head,
        Para(
            f"Optuna's fANOVA evaluator on the {len(data.values)} finished trials (completed or "
            f"stopped early, each with its best {ctx.metric}): the share of the metric's variance "
            f"a random forest attributes to each hyperparameter. With few trials treat it as a hint."
        ),
        Image(path, "Hyperparameter importance (fANOVA)"),
        Table(["hyperparameter", "importance"], [[k, f"{v:.3f}"] for k, v in values.items()]),
    ]


def _fitting(ctx: _Context) -> list[Block]:
    judged: list[tuple[Trial, Diagnosis]] = [(t, diagnose(t)) for t in ctx.board]
    counts = Counter(d.label for _, d in judged)
    blocks: list[Block] = [
        Heading("Over- and underfitting"),
        Para(f"Rule: {analysis.DIAGNOSIS_RULE}"),
        Para("Counts: " + ", ".join(f"{n} {label}" for label, n in sorted(counts.items())) + "."),
    ]
    shown = [(t, d) for t, d in judged if d.label != "too short to judge"][:LOSS_PANELS]
    if shown:
        path = plots.loss_curves(shown, ctx.plots_dir / "loss_curves.png")
        blocks.append(
            Image(path, "Training and validation loss of the best trials long enough to judge")
        )
    blocks.append(
        Table(
            ["trial", "epochs", "diagnosis", "numbers"],
            [[t.trial_id, f"{t.epochs}/{t.max_epochs}", d.label, d.reason] for t, d in judged],
        )
    )
    return blocks


def _compute(ctx: _Context, acc: Accounting) -> list[Block]:
    path = plots.compute_bars(ctx.trials, acc, ctx.plots_dir / "compute.png")
    slots = acc.compute_seconds / acc.wall_seconds if acc.wall_seconds else None
    rows = [
        ["trials (all the sweep will have)", str(acc.trial_count)],
        [
            "trials by state",
            ", ".join(f"{n} {states.label(s)}" for s, n in acc.states.items()),
        ],
        ["trial-epochs run", str(acc.epochs_run)],
        ["trial-epochs if every trial ran to max_t", str(acc.epochs_full)],
        [
            "saved by early stopping",
            f"{acc.saved:.0%} ({acc.epochs_full - acc.epochs_run} trial-epochs)",
        ],
        ["wall time (first epoch start to last epoch end)", duration(acc.wall_seconds)],
        ["trials' own training + evaluation time", duration(acc.compute_seconds)],
        ["mean trials running at once", "-" if slots is None else f"{slots:.2f}"],
    ]
    return [
        Heading("Compute"),
        Table(["", "value"], rows),
        Image(
            path, "Epochs each trial ran (filled) against the epochs it could have run (outline)"
        ),
    ]


def _confirmation(ctx: _Context) -> list[Block]:
    c = ctx.confirmation
    if c is None:
        return []
    blocks: list[Block] = [
        Heading("Confirmation"),
        Para(f"Rule: {analysis.CONFIRM_RULE}"),
        Para(
            f"In MLflow: run `{ctx.record.name}-confirm` (`{c.run_id}`) in the same experiment; "
            f"its child runs have params `candidate` (the sweep rank) and `seed`, and the metrics "
            f"`test_loss` and `test_accuracy` at their last epoch."
        ),
    ]
    if not c.candidates:
        return [*blocks, Para("No confirm trial has completed yet.")]
    rows = []
    for i, cand in enumerate(c.candidates, start=1):
        m, ta, tl = summarize(cand.metric), summarize(cand.test_accuracy), summarize(cand.test_loss)
        rows.append(
            [str(i), f"#{cand.rank} {cand.trial_id}", _num(cand.sweep_value), str(m.n),
             f"{m.mean:.4f} ± {m.std:.4f}", _ci(m), f"{ta.mean:.4f} ± {ta.std:.4f}", _ci(ta),
             f"{tl.mean:.4f}"]
        )  # fmt: skip
    if c.p_value is None:
        verdict = "Only one configuration (or one seed) completed: nothing to compare."
    else:
        a, b = c.candidates[0], c.candidates[1]
        word = "is" if c.distinguishable else "is **not**"
        verdict = (
            f"The winner #{a.rank} {word} distinguishable from the runner-up #{b.rank}: Welch's "
            f"t-test on {ctx.metric} gives p = {c.p_value:.3g} (threshold {c.alpha})."
        )
        if not c.distinguishable:
            verdict += " Either is a sound choice; more seeds would separate them if anything does."
    path = plots.confirmation(c, ctx.metric, ctx.plots_dir / "confirmation.png")
    return [
        *blocks,
        Table(
            [
                "place",
                "configuration (sweep rank, trial)",
                f"sweep best {ctx.metric}",
                "seeds",
                f"{ctx.metric} mean ± std",
                "95% CI",
                "test accuracy mean ± std",
                "95% CI",
                "test loss mean",
            ],
            rows,
        ),
        Para(verdict),
        Image(path, "Confirmation: per-seed values and means with 95% confidence intervals"),
    ]


def _ci(s: analysis.Summary) -> str:
    return "-" if s.ci_low is None or s.ci_high is None else f"[{s.ci_low:.4f}, {s.ci_high:.4f}]"


# -- the whole report ---------------------------------------------------------------------------


MARKER = ".hpo-report.json"  # in a report folder: the files hpo wrote there, nothing else
MARKER_LIMIT = 1_000_000  # bytes; a report lists a few dozen names
# The only names hpo writes in a report folder, so the only ones it replaces or deletes there.
WRITTEN = re.compile(r"(report\.md|report\.html|trials\.csv|best_config\.yaml|plots/[\w.-]+\.png)")


def report_folder(experiment_dir: Path, out: Path | None) -> Path:
    """Where the report goes: `out` (the user's own folder, as given), else the experiment's
    report/. The folder hpo writes into, and its plots/, must be real folders, not links (a
    received experiment's report/ could lead anywhere), and the default one must lie inside
    the experiment; SpecError (exit 2) otherwise, before anything is written."""
    folder = out.absolute() if out is not None else records.report_dir(experiment_dir)
    source = f"--out {out}" if out is not None else str(folder)
    if out is None and (folder.is_symlink() or inside(experiment_dir, records.REPORT_DIR) is None):
        raise SpecError(source, [Problem("", "is a link", "a folder inside the experiment")])
    plots = folder / "plots"
    for path in (folder, plots):
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            what = "a link" if path.is_symlink() else "not a folder"
            raise SpecError(str(path), [Problem("", f"is {what}", "a folder hpo writes into")])
    return folder


def claim(folder: Path, default: bool) -> list[Path]:
    """The files hpo wrote in the report folder last time (to remove those the new report
    does not write again: a hyperparameter that no longer varies must not keep its old plot).
    Only names hpo writes (WRITTEN) that are files in the folder count; a listing that names
    anything else (an absolute path, `..`, a link) is refused, as is a folder given with
    --out that holds files hpo did not write: hpo neither deletes nor uploads a user's files."""
    listed = folder / MARKER
    if listed.exists() or listed.is_symlink():
        try:
            if listed.is_symlink():
                raise UnreadableFile("a link")
            names = load_json(listed, MARKER_LIMIT, 1)
        except UnreadableFile as e:
            raise SpecError(
                str(listed), [Problem("", f"cannot be read: {e}", FIX_MARKER)]
            ) from None
        if not isinstance(names, list):
            raise SpecError(str(listed), [Problem("", "is not a list of names", FIX_MARKER)])
        return [_written(folder, listed, n) for n in names]
    if default:
        # A report of hpo before the marker: its plots, never a link.
        return [p for p in (folder / "plots").glob("*.png") if not p.is_symlink()]
    if folder.exists() and any(folder.iterdir()):
        raise SpecError(
            f"--out {folder}",
            [
                Problem(
                    "",
                    "holds files hpo did not write",
                    "a new or empty folder, or one hpo wrote a report into before",
                )
            ],
        )
    return []


FIX_MARKER = "the names of the files hpo wrote; remove the report folder to start afresh"


def _written(folder: Path, listed: Path, name: object) -> Path:
    """A name from the listing, as a path that is safe to replace or delete: one hpo writes,
    inside the folder, and not a link."""
    path = inside(folder, name) if isinstance(name, str) and WRITTEN.fullmatch(name) else None
    if path is None or path.is_symlink():
        raise SpecError(
            str(listed),
            [Problem("", f"names {show(name)}, not a file hpo writes in {folder}", FIX_MARKER)],
        )
    return path


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
    ctx = _Context(
        record, experiment_dir, trials, board, params, scales(record, trials, params), plots_dir,
        confirmation,
    )  # fmt: skip
    acc = analysis.accounting(trials, record.expected_trials(len(trials)), record.max_epochs)
    blocks: list[Block] = [
        *_overview(ctx), *_recommendation(ctx), *_confirmation(ctx), *_best(ctx),
        *_leaderboard(ctx), *_curves(ctx), *_effects(ctx), *_interactions(ctx),
        *_importance(ctx), *_fitting(ctx), *_compute(ctx, acc),
    ]  # fmt: skip
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


def foreign_parent(report: Report, experiment_dir: Path) -> str | None:
    """Why the recorded parent run is not this experiment's (a copied folder), or None."""
    from tune.run.tracking import foreign_run

    return foreign_run(report.record.tracking_uri, str(report.record.parent_run_id), experiment_dir)


def log_report(report: Report) -> str | None:
    """Log the files the report wrote, and only those, as artifacts (under report/) of the
    sweep's MLflow parent run; returns the error, if any."""
    from tune.run.tracking import log_artifact

    record = report.record
    run_id = str(record.parent_run_id)
    try:
        for path in report.files:
            where = Path(records.REPORT_DIR) / path.relative_to(report.folder).parent
            log_artifact(record.tracking_uri, run_id, path, where.as_posix())
    except Exception as e:  # the files are written; a store that is down must not hide them
        return f"{type(e).__name__}: {e}"
    return None
