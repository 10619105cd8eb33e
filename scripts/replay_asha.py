"""Replay Ray's asynchronous ASHA on a finished full-grid sweep, in other trial orders.

    .venv/bin/python scripts/replay_asha.py runs/NAME [--orders 2000] [--slots 2]

NAME must be an hpo sweep with `scheduler: none` that ran every trial to its last epoch (what
bench/asha_vs_grid.py runs as "full grid"). Each trial's real learning curve and epoch times
are read as `hpo report` reads them; ASHA's decisions (Ray's AsyncHyperBandScheduler, one bracket:
a trial at a rung goes on only if it is in the top 1/reduction_factor of the results recorded
at that rung so far, so the first trial at a rung always goes on) are replayed with `--slots`
trials at a time, started in Ray's grid order and in shuffled orders. It prints the
trial-epochs ASHA would run and how far its best falls behind the grid's: the question is how
much of the measured ratio is the order the grid is enumerated in (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

from tune.forecast.simulate import Asha, Rungs


@dataclass(frozen=True)
class Curve:
    """One trial of the full grid: validation accuracy and seconds of each epoch."""

    val: tuple[float, ...]
    seconds: tuple[float, ...]


def load(folder: Path) -> dict[str, Curve]:
    """Per trial id, its curve: hpo's own reading of a sweep (tune/store/trials.py: JSON only,
    nothing unpickled; Ray's echo of a last epoch read once)."""
    from tune.store.trials import load_trials

    _, trials = load_trials(folder)
    return {
        t.trial_id: Curve(
            tuple(e["val_accuracy"] for e in t.history),
            tuple(e["time_this_iter_s"] for e in t.history),
        )
        for t in trials
    }


def replay(
    order: list[str],
    curves: dict[str, Curve],
    slots: int = 2,
    grace: int = 1,
    factor: int = 3,
    max_t: int = 12,
) -> tuple[int, float]:
    """Trial-epochs run and best val_accuracy seen by ASHA with trials started in `order`."""
    rungs = Rungs(Asha(grace, factor, max_t))  # Ray's rule, as `hpo plan` replays it
    stops = rungs.stops

    waiting, running = list(order), {}  # running: trial -> (time its epoch ends, epoch index)
    now, epochs, best = 0.0, 0, 0.0
    while waiting or running:
        while waiting and len(running) < slots:
            trial = waiting.pop(0)
            running[trial] = (now + curves[trial].seconds[0], 0)
        trial, (now, index) = min(running.items(), key=lambda item: item[1][0])
        curve = curves[trial]
        epochs, best = epochs + 1, max(best, curve.val[index])
        if stops(trial, index + 1, curve.val[index]) or index + 1 >= min(max_t, len(curve.val)):
            del running[trial]
        else:
            running[trial] = (now + curve.seconds[index + 1], index + 1)
    return epochs, best


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a finished full-grid sweep's folder")
    parser.add_argument("--orders", type=int, default=2000, help="shuffled orders to replay")
    parser.add_argument("--slots", type=int, default=2, help="trials at a time")
    args = parser.parse_args()
    curves = load(args.folder)
    if not curves:
        raise SystemExit(f"{args.folder}: no trials in it")
    total = sum(len(c.val) for c in curves.values())
    grid_best = max(max(c.val) for c in curves.values())
    in_order = sorted(curves)  # trial ids count up in the order Ray created the trials
    epochs, best = replay(in_order, curves, args.slots)
    print(f"{len(curves)} trials, {total} trial-epochs in the full grid, best {grid_best:.4f}")
    print(
        f"Ray's grid order: {epochs} trial-epochs ({epochs / total:.2f}x), best "
        f"{(grid_best - best) * 100:.2f} points behind the grid's"
    )
    rng = random.Random(0)
    runs = []
    for _ in range(args.orders):
        order = in_order[:]
        rng.shuffle(order)
        runs.append(replay(order, curves, args.slots))
    counts = sorted(e for e, _ in runs)
    gaps = [(grid_best - b) * 100 for _, b in runs]

    def share(n: float) -> str:
        return f"{n / total:.2f}x"

    low, mid, high = (counts[int(q * (len(counts) - 1))] for q in (0.1, 0.5, 0.9))
    print(
        f"{args.orders} shuffled orders: median {mid} trial-epochs ({share(mid)}), 10-90% "
        f"{low}-{high} ({share(low)}-{share(high)}); at most 0.35x in "
        f"{sum(c <= 0.35 * total for c in counts) / len(counts):.0%}; best within 0.5 points "
        f"in {sum(g <= 0.5 for g in gaps) / len(gaps):.0%} (worst {max(gaps):.2f} points behind)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
