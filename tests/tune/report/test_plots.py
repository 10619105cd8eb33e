"""Each figure of the report drawn from hand-built trials, including the awkward ones (a trial
with no epoch, a diverged one, one value only): a PNG written whole, nothing left open."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from tune import analysis
from tune.core import states
from tune.report import plots
from tune.store.trials import Trial

PNG = b"\x89PNG\r\n\x1a\n"


def trial(tid: str, state: str, dropout: float, accs: list[float]) -> Trial:
    history = tuple(
        {"epoch": n, "val_accuracy": a, "train_loss": 1 - a, "val_loss": 1.1 - a, "timestamp": n}
        for n, a in enumerate(accs, start=1)
    )
    return Trial(tid, state, {"dropout": dropout, "epochs": 3}, 3, history)


TRIALS = [
    trial("t0", states.COMPLETED, 0.0, [0.6, 0.7, 0.8]),
    trial("t1", states.STOPPED_EARLY, 0.5, [0.5]),
    trial("t2", states.COMPLETED, 0.2, [0.65, 0.75, 0.82]),
    trial("t3", states.PENDING, 0.8, []),  # no epoch yet
    Trial("t4", states.ERROR, {"dropout": 0.5, "epochs": 3}, 3,
          ({"epoch": 1, "val_accuracy": 0.1, "train_loss": float("nan"), "val_loss": 9.0},)),
]  # fmt: skip


def is_png(path: Path) -> bool:
    return path.read_bytes().startswith(PNG)


def test_every_figure_is_a_whole_png_and_closed(tmp_path: Path) -> None:
    drawn = [
        plots.learning_curves(TRIALS, "val_accuracy", "t2", tmp_path / "curves.png"),
        plots.loss_curves([(t, analysis.diagnose(t)) for t in TRIALS], tmp_path / "loss.png"),
        plots.effect_discrete(
            "dropout",
            analysis.effects(TRIALS, "dropout", "val_accuracy", "max"),
            [(t.config["dropout"], t.best("val_accuracy", "max") or 0.0, t.state) for t in TRIALS],
            "val_accuracy",
            1,
            tmp_path / "effect.png",
        ),
        plots.importance_bars({"dropout": 0.7, "lr": 0.3}, tmp_path / "importance.png"),
        plots.compute_bars(
            TRIALS, analysis.accounting(TRIALS, 5, 3), tmp_path / "plots" / "compute.png"
        ),
    ]
    assert all(is_png(p) for p in drawn), drawn
    assert plt.get_fignums() == []  # every figure closed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png", "effect.png", "importance.png", "loss.png", "plots",
    ]  # fmt: skip


def test_a_heatmap_with_empty_cells(tmp_path: Path) -> None:
    mixed = [
        replace(t, config={**t.config, "normalization": t.trial_id in ("t0", "t5")})
        for t in [*TRIALS, trial("t5", states.COMPLETED, 0.0, [0.7])]
    ]
    data = analysis.interaction(mixed, "dropout", "normalization", "val_accuracy", "max")
    assert is_png(plots.heatmap(data, "val_accuracy", tmp_path / "heat.png"))
