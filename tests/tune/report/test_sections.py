"""The report's sections on a hand-built sweep: no Ray, no MLflow, no trainer."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tests.conftest import SEARCH_SPACES
from tune import analysis
from tune.core.text import num
from tune.report.document import Heading, Image, Para
from tune.report.sections import Context, document, scales
from tune.space.spec import load_spec
from tune.store import records
from tune.store.records import ExperimentRecord
from tune.store.trials import Trial


def trial(tid: str, accs: list[float], state: str = "TERMINATED", **config: Any) -> Trial:
    history = tuple(
        {"epoch": i + 1, "val_accuracy": a, "train_loss": 1 - a, "val_loss": 1.1 - a,
         "loss_gap": 0.1, "train_seconds": 2.0, "eval_seconds": 1.0,
         "timestamp": 1000.0 + 3 * (i + 1), "time_this_iter_s": 3.0}
        for i, a in enumerate(accs)
    )  # fmt: skip
    return Trial(tid, state, dict(config), 3, history)


def sweep() -> tuple[ExperimentRecord, list[Trial]]:
    record = records.new_record(load_spec(SEARCH_SPACES / "fashion_seed.yaml"), "sqlite:///x.db")
    trials = [
        trial("t0", [0.80, 0.85, 0.90], dropout=0.0, normalization=True),
        trial("t1", [0.70], "STOPPED", dropout=0.5, normalization=True),
        trial("t2", [0.75, 0.78, 0.79], dropout=0.0, normalization=False),
        trial("t3", [0.60], "STOPPED", dropout=0.5, normalization=False),
    ]
    return record, trials


def test_num_is_fixed_digits_or_empty() -> None:
    assert (num(0.123456), num(2.0, 2), num(None)) == ("0.1235", "2.00", "")


def test_scales_follow_the_search_space_then_the_values() -> None:
    record, trials = sweep()
    lrs = [trial(f"u{i}", [0.5], lr=10.0**-i) for i in range(1, 13)]
    assert scales(record, trials, ["dropout", "normalization"]) == {
        "dropout": "discrete",
        "normalization": "discrete",
    }
    assert scales(record, lrs, ["lr"]) == {"lr": "linear"}  # a constant in the space: the values


def test_document_has_every_section_in_order_and_draws_its_figures(tmp_path: Path) -> None:
    record, trials = sweep()
    params = ["dropout", "normalization"]
    board = analysis.leaderboard(trials, record.metric, record.mode)
    ctx = Context(
        record, tmp_path, trials, board, params, scales(record, trials, params), tmp_path, None
    )
    acc = analysis.accounting(trials, len(trials), record.max_epochs)
    blocks = document(ctx, acc)
    assert [b.text for b in blocks if isinstance(b, Heading) and b.level < 3] == [
        "hpo report: fashion_seed",
        "Recommendation",
        "Best configuration of the sweep",
        "Leaderboard",
        "Learning curves",
        "Effect of each hyperparameter",
        "Interactions",
        "Hyperparameter importance",
        "Over- and underfitting",
        "Compute",
    ]
    images = [b.path for b in blocks if isinstance(b, Image)]
    assert images and all(p.parent == tmp_path and p.is_file() for p in images)


def test_the_overview_says_what_a_warm_start_took(tmp_path: Path) -> None:
    record, trials = sweep()
    line = "warm start: 2 of 3 trials of smoke reused (1 outside the new space)"
    texts = []
    for warm in ("", line):
        rec = dataclasses.replace(record, warm_start=warm)
        board = analysis.leaderboard(trials, rec.metric, rec.mode)
        ctx = Context(rec, tmp_path, trials, board, [], {}, tmp_path, None)
        texts.append([b.text for b in document(ctx, analysis.accounting(trials, 4, 3))
                      if isinstance(b, Para)])  # fmt: skip
    said = [[t for t in paras if t.startswith("Warm-started")] for paras in texts]
    assert said == [[], ["Warm-started: 2 of 3 trials of smoke reused (1 outside the new space)."]]
