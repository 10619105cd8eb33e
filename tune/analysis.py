"""What a finished (or running) sweep says, as pure functions of a table of trials.

Everything here takes `Trial`s (config + per-epoch history) and returns plain data: the
leaderboard, the effect of each hyperparameter, pairwise interactions, the input to a
parameter-importance model, an over/underfitting diagnosis per trial, the compute accounting and
the statistics of a confirmation run. No Ray, no MLflow, no files: tests build the tables by
hand, and tune/report/sections.py turns the results into plots and text. Two functions lean on a library:
`importance` fits Optuna's fANOVA (leaving Optuna's log level as it found it), and the
confidence intervals and Welch's test use scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tune.core import states
from tune.core.text import fmt_value
from tune.store.records import Candidate
from tune.store.trials import Trial

DISCRETE_MAX_VALUES = 8  # a randint with more values than this is plotted as a number line


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- leaderboard -------------------------------------------------------------------------------


def leaderboard(trials: Sequence[Trial], metric: str, mode: str) -> list[Trial]:
    """Trials that reported the metric, best first (ties: more epochs, then trial id)."""
    sign = -1.0 if mode == "max" else 1.0
    scored = [t for t in trials if t.best(metric, mode) is not None]
    return sorted(
        scored, key=lambda t: (sign * (t.best(metric, mode) or 0.0), -t.epochs, t.trial_id)
    )


def scale_of(values: Sequence[Any], kind: str | None = None) -> str:
    """How to show a hyperparameter: 'discrete' (one group per value), 'linear' or 'log'
    (a number line). `kind` is its distribution in the search space, when known."""
    if kind == "loguniform":
        return "log"
    if kind == "uniform":
        return "linear"
    if kind in ("choice", "grid"):
        return "discrete"
    distinct = {fmt_value(v) for v in values}
    numeric = all(_is_number(v) for v in values)
    if not numeric or len(distinct) <= DISCRETE_MAX_VALUES:
        return "discrete"
    return "linear"


def common_epoch(trials: Sequence[Trial]) -> int:
    """The last epoch every trial that reported anything reached: a budget at which all of them
    can be compared fairly (under ASHA, usually its grace period)."""
    reached = [t.epochs for t in trials if t.epochs > 0]
    return min(reached) if reached else 0


# -- effects of one hyperparameter -------------------------------------------------------------


@dataclass(frozen=True)
class ValueEffect:
    """The trials that used one value of a hyperparameter."""

    value: Any
    trials: int
    mean_best: float  # mean of their best metric (each over the epochs it ran)
    best: float  # the best of them
    mean_at_common: float | None  # mean of their metric at the common epoch (same budget)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, float(value)) if _is_number(value) or isinstance(value, bool) else (1, str(value))


def effects(trials: Sequence[Trial], param: str, metric: str, mode: str) -> list[ValueEffect]:
    """Per value of `param`: how many trials, their mean and best metric, and their mean metric
    at the epoch every trial reached (stopped-early trials ran fewer epochs, so the best
    metric alone favours values whose trials survived longer)."""
    epoch = common_epoch(trials)
    groups: dict[str, list[Trial]] = {}
    values: dict[str, Any] = {}
    for t in trials:
        if param in t.config and t.best(metric, mode) is not None:
            key = fmt_value(t.config[param])
            groups.setdefault(key, []).append(t)
            values[key] = t.config[param]
    out = []
    for key, group in groups.items():
        bests = [t.best(metric, mode) or 0.0 for t in group]
        at_common = [v for t in group if (v := t.at_epoch(metric, epoch)) is not None]
        out.append(
            ValueEffect(
                value=values[key],
                trials=len(group),
                mean_best=sum(bests) / len(bests),
                best=max(bests) if mode == "max" else min(bests),
                mean_at_common=sum(at_common) / len(at_common) if at_common else None,
            )
        )
    return sorted(out, key=lambda e: _sort_key(e.value))


@dataclass(frozen=True)
class Trend:
    """A least-squares line through (x or log10 x, best metric)."""

    slope: float  # metric change per unit of x, or per 10x of x on a log scale
    intercept: float
    log: bool
    points: int

    def at(self, x: float) -> float:
        return self.intercept + self.slope * (math.log10(x) if self.log else x)


def trend(xs: Sequence[float], ys: Sequence[float], log: bool) -> Trend | None:
    """The line that best fits the points, or None when x does not vary."""
    us = [math.log10(x) if log else x for x in xs]
    n = len(us)
    if n < 2:
        return None
    mu, my = sum(us) / n, sum(ys) / n
    suu = sum((u - mu) ** 2 for u in us)
    if suu == 0:
        return None
    slope = sum((u - mu) * (y - my) for u, y in zip(us, ys, strict=True)) / suu
    return Trend(slope=slope, intercept=my - slope * mu, log=log, points=n)


# -- interactions of two hyperparameters -------------------------------------------------------


@dataclass(frozen=True)
class Interaction:
    """Mean best metric over the trials of each (a, b) value pair; None where none ran."""

    a: str
    b: str
    a_values: list[Any]
    b_values: list[Any]
    means: list[list[float | None]]  # [i][j]: a_values[i] with b_values[j]
    counts: list[list[int]]


def interaction(trials: Sequence[Trial], a: str, b: str, metric: str, mode: str) -> Interaction:
    scored = [
        t for t in trials if t.best(metric, mode) is not None and a in t.config and b in t.config
    ]
    a_values = sorted({fmt_value(t.config[a]): t.config[a] for t in scored}.values(), key=_sort_key)
    b_values = sorted({fmt_value(t.config[b]): t.config[b] for t in scored}.values(), key=_sort_key)
    sums = [[0.0] * len(b_values) for _ in a_values]
    counts = [[0] * len(b_values) for _ in a_values]
    a_index = {fmt_value(v): i for i, v in enumerate(a_values)}
    b_index = {fmt_value(v): j for j, v in enumerate(b_values)}
    for t in scored:
        i, j = a_index[fmt_value(t.config[a])], b_index[fmt_value(t.config[b])]
        sums[i][j] += t.best(metric, mode) or 0.0
        counts[i][j] += 1
    means: list[list[float | None]] = [
        [s / c if c else None for s, c in zip(row, crow, strict=True)]
        for row, crow in zip(sums, counts, strict=True)
    ]
    return Interaction(a, b, a_values, b_values, means, counts)


def interaction_pairs(
    params: Sequence[str], scales: dict[str, str], limit: int = 6
) -> list[tuple[str, str]]:
    """Pairs of discrete hyperparameters to draw as heatmaps; pairs with normalization first
    (the study's question: does BatchNorm change what dropout and depth do?)."""
    discrete = [p for p in params if scales.get(p) == "discrete"]
    pairs = [(a, b) for i, a in enumerate(discrete) for b in discrete[i + 1 :]]
    pairs.sort(key=lambda p: "normalization" not in p)
    return pairs[:limit]


# -- parameter importance ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportanceInput:
    """Finished trials as (params, value) points for an importance model such as fANOVA."""

    params: list[str]
    points: list[dict[str, Any]]
    values: list[float]
    domains: dict[
        str, tuple[str, list[Any]]
    ]  # param -> ('categorical', choices) | ('float'|'int'|'log', [low, high])


MIN_IMPORTANCE_TRIALS = 4


def importance_input(
    trials: Sequence[Trial], params: Sequence[str], scales: dict[str, str], metric: str, mode: str
) -> ImportanceInput:
    """Finished trials (completed or stopped early) with their best metric; every varying
    parameter with the domain its values span."""
    done = [t for t in trials if t.state in states.DONE and t.best(metric, mode) is not None]
    domains: dict[str, tuple[str, list[Any]]] = {}
    for p in params:
        values = [t.config[p] for t in done if p in t.config]
        if len({fmt_value(v) for v in values}) < 2:
            continue  # nothing to learn from a parameter the finished trials share
        scale = scales.get(p, "discrete")
        if scale == "discrete":
            domains[p] = (
                "categorical",
                sorted({fmt_value(v): v for v in values}.values(), key=_sort_key),
            )
        elif all(isinstance(v, int) for v in values):
            domains[p] = ("int", [min(values), max(values)])
        else:
            domains[p] = ("log" if scale == "log" else "float", [min(values), max(values)])
    points = [{p: t.config[p] for p in domains} for t in done]
    return ImportanceInput(
        params=list(domains),
        points=points,
        values=[t.best(metric, mode) or 0.0 for t in done],
        domains=domains,
    )


def importance(data: ImportanceInput, mode: str, seed: int = 0) -> dict[str, float]:
    """Optuna's fANOVA importance (a random forest over the finished trials; sums to 1).
    Empty when there are too few trials or nothing varies."""
    if len(data.values) < MIN_IMPORTANCE_TRIALS or not data.params:
        return {}
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    def distribution(kind: str, spec: list[Any]) -> BaseDistribution:
        if kind == "categorical":
            return CategoricalDistribution(spec)
        if kind == "int":
            return IntDistribution(int(spec[0]), int(spec[1]))
        return FloatDistribution(float(spec[0]), float(spec[1]), log=kind == "log")

    dists = {p: distribution(*data.domains[p]) for p in data.params}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created": noise here
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(
        [
            optuna.trial.create_trial(params=point, distributions=dists, value=value)
            for point, value in zip(data.points, data.values, strict=True)
        ]
    )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    result = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return {k: float(v) for k, v in result.items()}


# -- over/underfitting -------------------------------------------------------------------------

MIN_EPOCHS_TO_JUDGE = 3
OVERFIT_RISE = 0.10  # validation loss this far (relative) above its own minimum at the end
OVERFIT_GAP = 0.15  # or validation loss this far (absolute) above training loss
UNDERFIT_GAP = -0.05  # training loss above validation loss by more than this
IMPROVING = 0.02  # validation loss fell this much (relative), epoch after epoch, over the last two

DIAGNOSIS_RULE = (
    f"Each trial is judged from its last epoch's training and validation loss (the loss gap is "
    f"validation minus training loss), in this order: "
    f"**diverged** if either loss became NaN or infinite (the learning rate is too high, most "
    f"likely; its curves stop at the last finite epoch); "
    f"**too short to judge** if it ran fewer than {MIN_EPOCHS_TO_JUDGE} epochs; "
    f"**overfitting** if validation loss ended at least {OVERFIT_RISE:.0%} above its own minimum "
    f"(it turned up) or the loss gap is at least {OVERFIT_GAP}; "
    f"**underfitting** if the loss gap is below {UNDERFIT_GAP} (training loss above validation "
    f"loss: the model does not fit even what it trains on, typically too much dropout); "
    f"**still improving** if validation loss fell in each of the last two epochs, by at least "
    f"{IMPROVING:.0%} in all (more epochs would likely help); otherwise **good fit**. Training loss is the mean "
    f"over the epoch with dropout active, validation loss is measured after it."
)


@dataclass(frozen=True)
class Diagnosis:
    label: str  # diverged | too short to judge | overfitting | underfitting | still improving | good fit
    reason: str  # the numbers behind it


def diagnose(trial: Trial) -> Diagnosis:
    """DIAGNOSIS_RULE applied to one trial."""
    if (epoch := trial.diverged_at) is not None:
        return Diagnosis("diverged", f"loss not finite from epoch {epoch}")
    val, train = trial.values("val_loss"), trial.values("train_loss")
    n = min(len(val), len(train))
    if n < MIN_EPOCHS_TO_JUDGE:
        return Diagnosis("too short to judge", f"{n} epoch(s)")
    gap = val[-1] - train[-1]
    low = min(val)
    rise = (val[-1] - low) / low if low > 0 else 0.0
    if rise >= OVERFIT_RISE or gap >= OVERFIT_GAP:
        return Diagnosis(
            "overfitting",
            f"val loss {val[-1]:.3f} is {rise:.0%} above its minimum {low:.3f}; gap {gap:+.3f}",
        )
    if gap < UNDERFIT_GAP:
        return Diagnosis(
            "underfitting", f"train loss {train[-1]:.3f} > val loss {val[-1]:.3f} (gap {gap:+.3f})"
        )
    fall = (val[-3] - val[-1]) / val[-3] if val[-3] > 0 else 0.0
    if val[-3] > val[-2] > val[-1] and fall >= IMPROVING:
        return Diagnosis(
            "still improving", f"val loss fell {fall:.1%} over the last two epochs (gap {gap:+.3f})"
        )
    return Diagnosis("good fit", f"gap {gap:+.3f}, val loss {rise:.0%} above its minimum")


# -- compute accounting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Accounting:
    trial_count: int  # trials the sweep will have in all
    trials_seen: int  # trials that exist so far (a running sweep creates them as it goes)
    epochs_run: int  # trial-epochs actually trained
    epochs_full: int  # trial-epochs had every trial run to its max epochs (ASHA's max_t)
    states: dict[str, int] = field(default_factory=dict)  # trials per state
    wall_seconds: float | None = None  # first epoch's start to last epoch's end
    compute_seconds: float = 0.0  # the trials' own training + evaluation seconds

    @property
    def saved(self) -> float:
        """Share of the full budget early stopping did not spend."""
        return 1.0 - self.epochs_run / self.epochs_full if self.epochs_full else 0.0


def accounting(trials: Sequence[Trial], trial_count: int, max_epochs: int) -> Accounting:
    """Trial-epochs run against running every trial to max_t; trials not created yet (a
    running sweep) count at max_epochs in the full budget and as NOT_CREATED."""
    missing = max(0, trial_count - len(trials))
    counts = states.count([t.state for t in trials] + [states.NOT_CREATED] * missing)
    starts, ends = [], []
    for t in trials:
        stamps = [h for h in t.history if _is_number(h.get("timestamp"))]
        if stamps:
            first = stamps[0]
            starts.append(float(first["timestamp"]) - float(first.get("time_this_iter_s", 0.0)))
            ends.append(float(stamps[-1]["timestamp"]))
    compute = sum(sum(t.values("train_seconds")) + sum(t.values("eval_seconds")) for t in trials)
    return Accounting(
        trial_count=max(trial_count, len(trials)),
        trials_seen=len(trials),
        epochs_run=sum(t.epochs for t in trials),
        epochs_full=sum(t.max_epochs for t in trials) + missing * max_epochs,
        states=counts,
        wall_seconds=max(ends) - min(starts) if starts else None,
        compute_seconds=compute,
    )


# -- confirmation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation and 95% confidence interval of the mean
    (Student's t; None with fewer than two values)."""

    n: int
    mean: float
    std: float
    ci_low: float | None
    ci_high: float | None


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, None, None)
    mean = sum(values) / n
    if n < 2:
        return Summary(1, mean, 0.0, None, None)
    from scipy import stats

    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that a and b have the same mean; None with fewer
    than two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    sa, sb = summarize(a), summarize(b)
    if sa.std == 0 and sb.std == 0:
        return 1.0 if sa.mean == sb.mean else 0.0
    from scipy import stats

    return float(stats.ttest_ind(list(a), list(b), equal_var=False).pvalue)


@dataclass(frozen=True)
class Confirmed(Candidate):
    """One configuration retrained with several seeds by `hpo confirm`, and what each seed got."""

    metric: list[float]  # the sweep's metric at the last epoch, one value a seed
    test_accuracy: list[float]
    test_loss: list[float]


@dataclass(frozen=True)
class Confirmation:
    candidates: list[Confirmed]  # by confirmed mean metric, best first
    p_value: float | None  # winner vs runner-up, Welch's t-test on the metric
    alpha: float = 0.05
    run_id: str | None = None  # the confirm run's MLflow parent run, to check the numbers there

    @property
    def winner(self) -> Confirmed | None:
        return self.candidates[0] if self.candidates else None

    @property
    def distinguishable(self) -> bool | None:
        """Whether the winner's metric differs from the runner-up's beyond seed noise."""
        return None if self.p_value is None else self.p_value < self.alpha


CONFIRM_RULE = (
    "Each configuration is retrained with every seed to its full epochs; the configurations are "
    "ranked by the mean of the sweep's metric at the last epoch over the seeds (the held-out test "
    "set is only reported, never used to choose). The winner is distinguishable from the "
    "runner-up when Welch's t-test on their per-seed values gives p < 0.05; 95% confidence "
    "intervals use Student's t."
)


def confirm(candidates: Sequence[Confirmed], mode: str, alpha: float = 0.05) -> Confirmation:
    """Rank the retrained configurations by their mean metric and test the top two."""
    ranked = sorted(
        [c for c in candidates if c.metric],
        key=lambda c: (-1.0 if mode == "max" else 1.0) * summarize(c.metric).mean,
    )
    p = welch_p(ranked[0].metric, ranked[1].metric) if len(ranked) >= 2 else None
    return Confirmation(candidates=ranked, p_value=p, alpha=alpha)
