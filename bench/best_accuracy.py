"""The best model in a budget: `hpo sweep search_spaces/fashion_best.yaml` (45 minutes on 2 CPUs,
Optuna's TPE under ASHA), then `hpo confirm --top 3 --seeds 3`, which retrains the top three
configurations with three new seeds each and tests each final model once on the held-out test
set. The figure is the recommended (confirmed first) configuration's mean test accuracy.

`--search random` runs the same budget with `search_algorithm: random` instead, to say which
searcher found the better confirmed model. Each search takes over an hour with its confirm, so
each run saves its outcome in bench/results/best_accuracy-SEARCH.json (and hpo's report of it,
with the plots, in bench/results/best_accuracy-SEARCH/), and the table shows every saved one.
Run alone on the machine:

    .venv/bin/python bench/best_accuracy.py [--search optuna|random] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import ROOT, header, machine, outcome, sweep_and_confirm, table, verdict

NAME = "best_accuracy"
TARGET = 0.92  # mean test accuracy of the recommended configuration
SPACE = ROOT / "search_spaces" / "fashion_best.yaml"
RESULTS = ROOT / "bench" / "results"
SHOWN = ("conv_layers", "filters", "dropout", "lr", "augment")
KEPT_PLOTS = ("learning_curves.png", "confirmation.png", "importance.png", "effect_augment.png")


def keep_report(report: Path, to: Path) -> None:
    """report.md and the plots that show the search (learning curves, confirmation, what
    mattered); the rest of the folder is hpo's to remake (`hpo report`)."""
    shutil.rmtree(to, ignore_errors=True)
    (to / "plots").mkdir(parents=True)
    shutil.copy2(report / "report.md", to / "report.md")
    for plot in KEPT_PLOTS:
        if (report / "plots" / plot).exists():
            shutil.copy2(report / "plots" / plot, to / "plots" / plot)


def run(search: str, quick: bool) -> dict[str, Any]:
    """The sweep and its confirmation, in a folder of their own; returns what they found."""
    top, seeds = (1, 1) if quick else (3, 3)
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        space = Path(work) / f"fashion_best_{search}.yaml"
        text = SPACE.read_text()
        space.write_text(text.replace("search_algorithm: optuna", f"search_algorithm: {search}"))
        quick_flags = ["--smoke", "--max-concurrent", "1"]  # a check: one small trial at a time
        flags = quick_flags if quick else []
        done = sweep_and_confirm(space, search, Path(work), top, seeds, *flags, here=quick)
        trials, epochs, _ = outcome(done.experiment)
        if not quick:  # the report hpo wrote, with its plots, outlives the folder
            keep_report(done.experiment / "report", RESULTS / f"{NAME}-{search}")
    sweep_s, confirm_s, confirmation = done.sweep_s, done.confirm_s, done.confirmation
    winner = confirmation.winner
    return {
        "search": search,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "sweep_s": round(sweep_s),
        "confirm_s": round(confirm_s),
        "trials": trials,
        "trial_epochs": epochs,
        "winner": {k: winner.config.get(k) for k in SHOWN},
        "val_accuracy": winner.metric,
        "test_accuracy": winner.test_accuracy,
        "distinguishable_from_runner_up": confirmation.distinguishable,
    }


def compare(found: dict[str, dict[str, Any]]) -> str:
    """Which searcher's confirmed model tested better, and whether the seeds tell them apart
    (Welch's t-test on their per-seed test accuracy)."""
    from tune.analysis import welch_p

    means = {s: statistics.mean(r["test_accuracy"]) for s, r in found.items()}
    better, worse = sorted(means, key=lambda s: -means[s])
    p = welch_p(found[better]["test_accuracy"], found[worse]["test_accuracy"])
    if p is None:
        raise ValueError("comparing two searchers takes at least 2 seeds each")
    apart = "distinguishable" if p < 0.05 else "not distinguishable over these seeds"
    return (
        f"the better confirmed model: {better} ({means[better]:.4f} against {means[worse]:.4f}, "
        f"{(means[better] - means[worse]) * 100:+.2f} points; Welch p = {p:.2f}: {apart})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--search", choices=("optuna", "random"), default="optuna")
    parser.add_argument("--quick", action="store_true", help="a --smoke sweep, 1 x 1 confirm")
    args = parser.parse_args()
    header(NAME, f"{SPACE.name} ({args.search}), then hpo confirm")
    result = run(args.search, args.quick)
    found = {args.search: result}
    if not args.quick:  # a check's numbers mean nothing: never saved
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{NAME}-{args.search}.json").write_text(json.dumps(result, indent=1) + "\n")
        for path in sorted(RESULTS.glob(f"{NAME}-*.json")):
            saved = json.loads(path.read_text())
            found.setdefault(saved["search"], saved)
    rows = [
        (
            r["search"],
            r["date"],
            f"{r['sweep_s']} + {r['confirm_s']}",
            f"{r['trials']} / {r['trial_epochs']}",
            ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in r["winner"].items()
            ),
            f"{statistics.mean(r['test_accuracy']):.4f} ({min(r['test_accuracy']):.4f}-{max(r['test_accuracy']):.4f})",
        )
        for r in found.values()
    ]
    print()
    table(
        rows,
        (
            "search",
            "run",
            "sweep + confirm s",
            "trials / trial-epochs",
            "recommended",
            "mean test_accuracy (range over seeds)",
        ),
    )
    if len(found) == 2:
        print(f"\n{compare(found)}")
    mean = statistics.mean(result["test_accuracy"])
    ok = verdict(NAME, mean, TARGET, higher_is_better=True)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
