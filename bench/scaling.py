"""How to spend the CPUs: fewer trials with more threads each, or more trials with one thread.
The same sweep (the real trainer, epochs of 100 batches, every trial to the last epoch) runs
through `hpo sweep` once per split of the machine's CPUs, one after the other, alternating over
repeats; the figure is trial-epochs per minute while trials ran (first trial start to last
trial end: Ray's start-up is the same for both and left out) and over the whole command.

On 2 CPUs: 1 trial x 2 threads against 2 trials x 1 thread, which decides the default
`resources.cpu` (1). On a machine with more cores every power of two up to its count runs.
Run alone on the machine:

    .venv/bin/python bench/scaling.py [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from harness import header, hpo, spread, table, verdict

NAME = "scaling"
SPACE = """\
name: scaling
dataset: {{train_steps: {steps}, eval_steps: null}}
search:
  dropout: {{grid: {dropouts}}}
  normalization: true
  conv_layers: 2
  epochs: {epochs}
search_algorithm: grid
scheduler: none
resources: {{cpu: {cpu}, gpu: 0}}
"""


def trial_epochs_per_minute(
    cpu: int, trials: int, steps: int, epochs: int, here: bool
) -> tuple[float, float]:
    """One sweep of `trials` trials holding `cpu` CPUs each: (while trials ran, whole command);
    `here`: as harness.hpo has it."""
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        space = Path(work) / "scaling.yaml"
        dropouts = [round(0.05 * i, 2) for i in range(trials)]
        space.write_text(SPACE.format(steps=steps, dropouts=dropouts, epochs=epochs, cpu=cpu))
        wall = hpo("sweep", str(space), "--storage", f"{work}/runs",
                   "--tracking-uri", f"sqlite:///{work}/mlflow.db", here=here)  # fmt: skip
        starts, ends, count = [], [], 0
        for path in (Path(work) / "runs" / "scaling").glob("*/result.json"):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            starts.append(rows[0]["reported_at"] - rows[0]["time_this_iter_s"])
            ends.append(rows[-1]["reported_at"])
            count += len(rows)
    return 60 * count / (max(ends) - min(starts)), 60 * count / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny epochs, one repeat: a check")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    steps, epochs, repeats = (5, 1, 1) if args.quick else (100, 4, args.repeats)
    per_trial = [c for c in (1, 2, 4, 8, 16) if c <= cores]  # threads per trial
    # Enough trials that the narrowest split keeps every CPU busy twice over (--quick: once).
    trials = cores if args.quick else 2 * cores
    header(
        NAME, f"{trials} trials x {epochs} epochs of {steps} batches, every split of {cores} CPUs"
    )
    rates: dict[int, list[tuple[float, float]]] = {c: [] for c in per_trial}
    for _ in range(repeats):
        for cpu in per_trial:
            rates[cpu].append(trial_epochs_per_minute(cpu, trials, steps, epochs, args.quick))
    rows = [
        (
            f"{cores // cpu} trial{'s' if cores // cpu > 1 else ''} x {cpu} thread{'s' if cpu > 1 else ''}",
            spread([r[0] for r in rates[cpu]]),
            spread([r[1] for r in rates[cpu]]),
        )
        for cpu in per_trial
    ]
    print()
    table(rows, ("split", "trial-epochs/min while trials ran", "over the whole command"))
    median = {cpu: statistics.median(r[0] for r in rates[cpu]) for cpu in per_trial}
    best = max(median, key=lambda c: median[c])
    print(f"\nbest split: resources.cpu = {best}; the default is 1")
    # The default (1 CPU per trial) against the best other split: >= 1 means it is the right one.
    others = [median[c] for c in per_trial if c != 1] or [median[1]]
    ok = verdict(NAME, median[1] / max(others), 1.0, higher_is_better=True)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
