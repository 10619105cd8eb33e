"""ASHA against the full grid on the seed study's space (search_spaces/fashion_seed.yaml: 24
configurations, up to 12 epochs of 100 batches): once with every configuration trained to its
12th epoch, once with ASHA (grace 1, reduction factor 3), both through `hpo sweep`, one after
the other. Then `hpo confirm --top 3 --seeds 3` on each, and whether ASHA's confirmed winner is
distinguishable from the grid's (Welch's t-test on their per-seed validation accuracy).

Target: ASHA runs <= 0.35x the grid's trial-epochs, with a best within 0.5 points of the grid's.
Run alone on the machine (about 15 minutes here):

    .venv/bin/python bench/asha_vs_grid.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from harness import ROOT, header, outcome, sweep_and_confirm, table, verdict

NAME = "asha_vs_grid"
TARGET = 0.35  # ASHA's trial-epochs / the grid's
SPACE = ROOT / "search_spaces" / "fashion_seed.yaml"
ASHA_BLOCK = "scheduler:\n  asha: {grace_period: 1, reduction_factor: 3}\n"


# --quick: the same two ways over two configurations of two epochs of 5 batches, one trial at a
# time (a check: one trial process, not one per CPU).
QUICK_SPACE = """\
name: quick
dataset: {train_steps: 5, eval_steps: 2}
search: {dropout: {grid: [0.0, 0.5]}, normalization: false, conv_layers: 2, epochs: 2}
search_algorithm: grid
max_concurrent_trials: 1
scheduler:
  asha: {grace_period: 1, reduction_factor: 3}
"""


def spaces(work: Path, quick: bool) -> dict[str, Path]:
    """The seed study as shipped (ASHA), and the same with no scheduler (the full grid)."""
    text = QUICK_SPACE if quick else SPACE.read_text()
    if ASHA_BLOCK not in text:
        raise SystemExit(f"{SPACE}: its scheduler block changed; update {Path(__file__).name}")
    grid = work / "grid.yaml"
    grid.write_text(text.replace(ASHA_BLOCK, "scheduler: none\n"))
    asha = work / "asha.yaml"
    asha.write_text(text)
    return {"grid": grid, "asha": asha}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tiny configurations, 1 x 1 confirm")
    args = parser.parse_args()
    top, seeds = (1, 1) if args.quick else (3, 3)
    header(NAME, f"the seed study's 24 configurations, full grid vs ASHA, confirm {top} x {seeds}")
    from scipy import stats

    rows, found = [], {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        for name, space in spaces(Path(work), args.quick).items():
            done = sweep_and_confirm(space, name, Path(work), top, seeds, here=args.quick)
            _, epochs, best = outcome(done.experiment)
            wall, confirm_s, winner = done.sweep_s, done.confirm_s, done.confirmation.winner
            found[name] = (best, epochs, winner)
            config = ", ".join(
                f"{k}={winner.config[k]}" for k in ("dropout", "normalization", "conv_layers")
            )
            rows.append(
                (
                    "full grid" if name == "grid" else "ASHA",
                    epochs,
                    f"{wall:.0f}",
                    f"{best:.4f}",
                    f"{confirm_s:.0f}",
                    config,
                    f"{statistics.mean(winner.metric):.4f}",
                    f"{statistics.mean(winner.test_accuracy):.4f}",
                )
            )
    print()
    table(
        rows,
        (
            "",
            "trial-epochs",
            "sweep s",
            "best val_accuracy",
            "confirm s",
            "confirmed winner",
            "its mean val_accuracy",
            "mean test_accuracy",
        ),
    )
    (g_best, g_epochs, g_win), (a_best, a_epochs, a_win) = found["grid"], found["asha"]
    if g_win.config == a_win.config:
        print("\nASHA and the grid confirmed the same configuration.")
    else:
        p = stats.ttest_ind(a_win.metric, g_win.metric, equal_var=False).pvalue
        same = "not distinguishable" if not p < 0.05 else "distinguishable"
        print(f"\nASHA's winner against the grid's: Welch p = {p:.3f} over {seeds} seeds: {same}.")
    gap = g_best - a_best
    print(f"best: ASHA {'-' if gap > 0 else '+'}{abs(gap) * 100:.2f} points against the grid")
    print(f"target: trial-epochs <= {TARGET}x the grid's, best within 0.5 points")
    ok = verdict(NAME, a_epochs / g_epochs, TARGET, higher_is_better=False, also=gap <= 0.005)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
