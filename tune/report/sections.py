"""The report's sections, each a list of document blocks (tune/report/document.py) built from
the sweep's trials, with its figures drawn into the plots folder on the way (tune/report/plots.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune import analysis
from tune.analysis import Accounting, Confirmation, Diagnosis, diagnose, summarize
from tune.core import states
from tune.core.text import duration, fmt_value, num
from tune.report import planned, plots
from tune.report.document import Block, Heading, Image, Para, Table
from tune.space.distributions import Distribution
from tune.store import records, registered
from tune.store.records import ExperimentRecord
from tune.store.trials import Trial

LEADERBOARD_SIZE = 10
LOSS_PANELS = 12  # trials shown in the training-vs-validation loss figure


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


@dataclass
class Context:
    """What every section reads: the sweep, its trials, the leaderboard (the trials that
    reported the metric, best first), the hyperparameters that varied and how each is shown,
    where the figures go, and the confirmation if there is one."""

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


def document(ctx: Context, acc: Accounting) -> list[Block]:
    """Every section of the report, in the order a reader wants them: the answer first, then
    the evidence for it, then what the sweep cost."""
    return [
        *_overview(ctx), *_recommendation(ctx), *_confirmation(ctx), *_best(ctx),
        *_leaderboard(ctx), *_curves(ctx), *_effects(ctx), *_interactions(ctx),
        *_importance(ctx), *_fitting(ctx), *_compute(ctx, acc),
    ]  # fmt: skip


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


def _overview(ctx: Context) -> list[Block]:
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
        *(
            [Para(f"Warm-started: {r.warm_start.removeprefix('warm start: ')}.")]
            if r.warm_start
            else []
        ),
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


def _recommendation(ctx: Context) -> list[Block]:
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
        blocks.append(Para(_the_model(ctx)))
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
    blocks.append(Para(_the_model(ctx)))
    return blocks


def _the_model(ctx: Context) -> str:
    """Where the trained model is: its MLflow registry version once confirmed, and the export
    command (which before confirm hands over the sweep's best trial, marked unconfirmed)."""
    name = ctx.record.name
    export = (
        f"`hpo export {name} --out DIR` writes it as files plain PyTorch loads "
        "(model.pt2, model_card.md, labels.json, best_config.yaml)"
    )
    if ctx.confirmation is None or ctx.confirmation.winner is None:
        return f"The model: {export}, marked as not confirmed."
    r = registered.load(records.confirm_dir(ctx.experiment_dir))
    if r is None:
        return f"The model: not logged to MLflow. {export}."
    if r.version is None:
        return (
            f"The model: logged in MLflow as `{r.model_uri}` (the store has no registry). {export}."
        )
    return (
        f"The model: version {r.version} of `{r.name}` in MLflow's model registry, alias "
        f'`best`: `mlflow.pytorch.load_model("{r.alias_uri}")`. {export}.'
    )


def _best(ctx: Context) -> list[Block]:
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
                    num(best_value),
                    str(at),
                    num(t.last("train_loss")),
                    num(t.last("val_loss")),
                    num(t.last("loss_gap")),
                    f"{d.label} ({d.reason})",
                ]
            ],
        ),
    ]


def _leaderboard(ctx: Context) -> list[Block]:
    rows = []
    for i, t in enumerate(ctx.board[:LEADERBOARD_SIZE], start=1):
        rows.append(
            [str(i), t.trial_id, states.label(t.state), f"{t.epochs}/{t.max_epochs}",
             num(t.best(ctx.metric, ctx.mode)), num(t.last("val_loss")), diagnose(t).label,
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


def _curves(ctx: Context) -> list[Block]:
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


def _effects(ctx: Context) -> list[Block]:
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


def _points(ctx: Context, param: str) -> list[tuple[Any, float, str]]:
    """(value of `param`, best metric, state) of every trial that reported the metric."""
    return [
        (t.config[param], t.best(ctx.metric, ctx.mode) or 0.0, t.state)
        for t in ctx.board
        if param in t.config
    ]


def _effect_discrete(ctx: Context, p: str, epoch: int) -> list[Block]:
    """One group a value: every trial's best, the mean, and the mean at the common epoch."""
    rows = analysis.effects(ctx.trials, p, ctx.metric, ctx.mode)
    path = ctx.plots_dir / f"effect_{p}.png"
    plots.effect_discrete(p, rows, _points(ctx, p), ctx.metric, epoch, path)
    header = ["value", "trials", f"mean best {ctx.metric}", "best", f"mean at epoch {epoch}"]
    body = [
        [fmt_value(r.value), str(r.trials), num(r.mean_best), num(r.best), num(r.mean_at_common)]
        for r in rows
    ]
    return [Image(path, f"Effect of {p} on {ctx.metric}"), Table(header, body)]


def _effect_continuous(ctx: Context, p: str) -> list[Block]:
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


def _interactions(ctx: Context) -> list[Block]:
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


def _importance(ctx: Context) -> list[Block]:
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


def _fitting(ctx: Context) -> list[Block]:
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


def _compute(ctx: Context, acc: Accounting) -> list[Block]:
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
        *planned.rows(ctx.record.plan),
    ]
    return [
        Heading("Compute"),
        Table(["", "value"], rows),
        Image(
            path, "Epochs each trial ran (filled) against the epochs it could have run (outline)"
        ),
    ]


def _confirmation(ctx: Context) -> list[Block]:
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
            [str(i), f"#{cand.rank} {cand.trial_id}", num(cand.sweep_value), str(m.n),
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
