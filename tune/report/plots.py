"""The report's figures, one function a figure, each written as a PNG.

matplotlib with the Agg backend (no display needed); every figure has a title, labelled axes and
a legend where colours carry meaning. Trials that ASHA stopped early are drawn grey and dashed,
trials that ran all their epochs in colour, the best trial thick.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tune.analysis import (
    Accounting,
    Confirmation,
    Diagnosis,
    Interaction,
    Trend,
    ValueEffect,
    summarize,
)
from tune.core import states
from tune.core.files import write_atomic
from tune.core.text import fmt_value
from tune.store.trials import Trial

DPI = 100
STOPPED_STYLE: dict[str, Any] = {"color": "0.6", "linestyle": "--", "linewidth": 1.0, "alpha": 0.8}
STATE_COLORS = {
    states.COMPLETED: "tab:blue",
    states.STOPPED_EARLY: "0.55",
    states.RUNNING: "tab:orange",
}


def label(metric: str) -> str:
    """'val_accuracy' -> 'validation accuracy (fraction correct)'."""
    text = metric.replace("val_", "validation ").replace("train_", "training ").replace("_", " ")
    if metric.endswith("accuracy"):
        return f"{text} (fraction correct)"
    if metric.endswith("loss") or metric == "loss_gap":
        return f"{text} (cross-entropy, nats)"
    return text


def _save(fig: Figure, path: Path) -> Path:
    """The figure as a PNG, written whole (tune/core/files.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine on the figure, for which savefig draws the
    # whole figure once more before drawing the PNG: the same bytes, a fifth slower.
    fig.set_layout_engine(None)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI)
    plt.close(fig)
    return write_atomic(path, png.getvalue())


def learning_curves(trials: Sequence[Trial], metric: str, best_id: str | None, path: Path) -> Path:
    """The metric after every epoch of every trial."""
    fig, ax = plt.subplots(figsize=(8, 5))
    completed_drawn = stopped_drawn = False
    for t in trials:
        xs, ys = t.series(metric)
        if not ys or t.trial_id == best_id:
            continue
        if t.state == states.COMPLETED:
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, alpha=0.85,
                    label=None if completed_drawn else "ran all epochs")  # fmt: skip
            completed_drawn = True
        else:
            ax.plot(xs, ys, marker="x", markersize=5, **STOPPED_STYLE,
                    label=None if stopped_drawn else "stopped early (or unfinished)")  # fmt: skip
            stopped_drawn = True
    best = next((t for t in trials if t.trial_id == best_id), None)
    if best is not None:
        ax.plot(*best.series(metric), color="black", linewidth=2.8, marker="o",
                label=f"best: {best.trial_id}")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Learning curves: {metric} per epoch, {len(trials)} trials")
    ax.set_xlabel("epoch")
    ax.set_ylabel(label(metric))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def loss_curves(items: Sequence[tuple[Trial, Diagnosis]], path: Path) -> Path:
    """Training against validation loss for the trials judged, one small panel each."""
    n = max(1, len(items))
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, (t, d) in zip(axes.flat, items, strict=False):
        ax.plot(*t.series("train_loss"), label="training", color="tab:blue")
        ax.plot(*t.series("val_loss"), label="validation", color="tab:red")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{t.trial_id}: {d.label}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("loss (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Training vs validation loss (over/underfitting)", fontsize=11)
    return _save(fig, path)


def effect_discrete(
    param: str, rows: Sequence[ValueEffect], points: Sequence[tuple[Any, float, str]],
    metric: str, common: int, path: Path,
) -> Path:  # fmt: skip
    """Every trial's best metric per value of `param` (dots), the mean per value (bar) and the
    mean at the epoch all trials reached (diamond)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    index = {fmt_value(r.value): i for i, r in enumerate(rows)}
    ax.bar(range(len(rows)), [r.mean_best for r in rows], color="tab:blue", alpha=0.25,
           label="mean of trials' best")  # fmt: skip
    for state in sorted({s for _, _, s in points}):
        xs = [index[fmt_value(v)] for v, _, s in points if s == state and fmt_value(v) in index]
        ys = [y for v, y, s in points if s == state and fmt_value(v) in index]
        ax.scatter(xs, ys, s=22, color=STATE_COLORS.get(state, "tab:purple"), zorder=3,
                   label=f"trial ({states.label(state)})")  # fmt: skip
    commons = [(i, r.mean_at_common) for i, r in enumerate(rows) if r.mean_at_common is not None]
    if commons:
        ax.scatter([i for i, _ in commons], [m for _, m in commons], marker="D", color="tab:red",
                   zorder=4, label=f"mean at epoch {common} (all trials)")  # fmt: skip
    ax.set_xticks(range(len(rows)), [f"{fmt_value(r.value)}\n(n={r.trials})" for r in rows])
    low = min([y for _, y, _ in points] + [m for _, m in commons], default=0.0)
    high = max([y for _, y, _ in points] + [m for _, m in commons], default=1.0)
    pad = (high - low) * 0.15 or 0.01
    ax.set_ylim(low - pad, high + pad)
    ax.set_title(f"Effect of {param} on {metric}")
    ax.set_xlabel(param)
    ax.set_ylabel(label(metric))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def effect_continuous(
    param: str,
    points: Sequence[tuple[float, float, str]],
    line: Trend | None,
    metric: str,
    path: Path,
) -> Path:
    """Best metric against a numeric hyperparameter, with the least-squares trend."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for state in sorted({s for _, _, s in points}):
        xs = [x for x, _, s in points if s == state]
        ys = [y for _, y, s in points if s == state]
        ax.scatter(xs, ys, s=22, color=STATE_COLORS.get(state, "tab:purple"),
                   label=f"trial ({states.label(state)})")  # fmt: skip
    if line is not None:
        xs = sorted(x for x, _, _ in points)
        if line.log:
            grid = [xs[0] * (xs[-1] / xs[0]) ** (i / 50) for i in range(51)]
        else:
            grid = [xs[0] + (xs[-1] - xs[0]) * i / 50 for i in range(51)]
        per = "per 10x" if line.log else "per unit"
        ax.plot(grid, [line.at(x) for x in grid], color="tab:red",
                label=f"trend: {line.slope:+.3g} {per}")  # fmt: skip
        if line.log:
            ax.set_xscale("log")
    ax.set_title(f"Effect of {param} on {metric}")
    ax.set_xlabel(param + (" (log scale)" if line is not None and line.log else ""))
    ax.set_ylabel(label(metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def heatmap(data: Interaction, metric: str, path: Path) -> Path:
    """Mean best metric per pair of values; each cell also says how many trials it averages."""
    fig, ax = plt.subplots(figsize=(1.6 * len(data.b_values) + 3, 1.0 * len(data.a_values) + 2))
    nan = float("nan")
    grid = [[nan if v is None else v for v in row] for row in data.means]
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"mean best {metric}")
    ax.set_xticks(range(len(data.b_values)), [fmt_value(v) for v in data.b_values])
    ax.set_yticks(range(len(data.a_values)), [fmt_value(v) for v in data.a_values])
    finite = [v for row in grid for v in row if not math.isnan(v)]
    middle = (min(finite) + max(finite)) / 2 if finite else 0.0
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            text = "no trial" if math.isnan(v) else f"{v:.3f}\nn={data.counts[i][j]}"
            color = "black" if not math.isnan(v) and v > middle else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xlabel(data.b)
    ax.set_ylabel(data.a)
    ax.set_title(f"{data.a} x {data.b}: mean best {metric}")
    return _save(fig, path)


def importance_bars(values: dict[str, float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(values) + 1.5))
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="tab:green")
    for i, n in enumerate(names):
        ax.text(values[n], i, f" {values[n]:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(values.values(), default=1.0) * 1.2 or 1.0)
    ax.set_title("Hyperparameter importance (fANOVA, share of the metric's variance)")
    ax.set_xlabel("importance (sums to 1)")
    ax.set_ylabel("hyperparameter")
    return _save(fig, path)


def compute_bars(trials: Sequence[Trial], acc: Accounting, path: Path) -> Path:
    """Epochs each trial ran, against the epochs it could have run."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(trials) + 2), 4.2))
    xs = range(len(trials))
    ax.bar(xs, [t.max_epochs for t in trials], color="none", edgecolor="0.5", label="max epochs")
    ax.bar(xs, [t.epochs for t in trials], color=[STATE_COLORS.get(t.state, "tab:purple") for t in trials],
           label="epochs run")  # fmt: skip
    ax.set_xticks(list(xs), [t.trial_id.split("_")[-1] for t in trials], rotation=90, fontsize=7)
    ax.set_title(
        f"Compute: {acc.epochs_run} of {acc.epochs_full} trial-epochs run "
        f"({acc.saved:.0%} saved by early stopping)"
    )
    ax.set_xlabel("trial")
    ax.set_ylabel("epochs")
    ax.legend(fontsize=8)
    return _save(fig, path)


def confirmation(result: Confirmation, metric: str, path: Path) -> Path:
    """Per retrained configuration: each seed's value (dots) and the mean with its 95% CI."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels: list[tuple[Axes, str, str]] = [
        (axes[0], "metric", f"{metric} at the last epoch"),
        (axes[1], "test_accuracy", "test accuracy (held-out test set)"),
    ]
    names = [f"#{c.rank} {c.trial_id.split('_')[-1]}" for c in result.candidates]
    for ax, field, title in panels:
        for i, c in enumerate(result.candidates):
            values = list(getattr(c, field))
            if not values:
                continue
            s = summarize(values)
            ax.scatter([i] * len(values), values, color="0.5", s=18, zorder=3)
            if s.ci_low is not None and s.ci_high is not None:
                ax.errorbar([i], [s.mean], yerr=[[s.mean - s.ci_low], [s.ci_high - s.mean]],
                            fmt="D", color="tab:red", capsize=6, zorder=4)  # fmt: skip
            else:
                ax.scatter([i], [s.mean], marker="D", color="tab:red", zorder=4)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("configuration (sweep rank, trial)")
        ax.set_ylabel("fraction correct" if "accuracy" in title else label(metric))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Confirmation: every seed (grey) and the mean with its 95% CI (red)", fontsize=11)
    return _save(fig, path)
