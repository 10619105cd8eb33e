"""`hpo plan` against the sweep it plans: the seed study (search_spaces/fashion_seed.yaml: a
grid under ASHA) and an Optuna space of the same knobs, each planned with `hpo plan --json` and
then run with `hpo sweep`, one after the other, alone on the machine.

Target: each sweep's measured wall time and trial-epochs fall inside the plan's 10-90% range
widened by 15% (p10 / 1.15 to p90 x 1.15); the ratio printed is the worst of them, measured
against the widened bound it is nearest to crossing (<= 1.0 inside). Also printed: what the
plan took against the sweep it predicts (at most 10% of the predicted median wall), and each
sweep's mean epoch time against the plan's measurement alone.

    .venv/bin/python bench/plan_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HPO, ROOT, experiment_in, header, hpo, outcome, table, verdict

NAME = "plan_accuracy"
WIDEN = 1.15
OPTUNA_SPACE = """\
name: plan_optuna
dataset: {name: fashion_mnist, validation_fraction: 0.1, train_steps: 100}
metric: {name: val_accuracy, mode: max}
search:
  dropout: {uniform: [0.0, 0.8]}
  lr: {loguniform: [3.0e-4, 3.0e-3]}
  conv_layers: {randint: [2, 4]}
  normalization: {choice: [false, true]}
  filters: 32
  units: 128
  epochs: 9
search_algorithm: optuna
optuna: {startup_trials: 6}
scheduler:
  asha: {grace_period: 1, reduction_factor: 3}
num_samples: 16
seed: 0
"""
# --quick: one tiny space (a check of the script, not a figure).
QUICK = {
    "grid": "name: q_grid\ndataset: {train_steps: 5, eval_steps: 2}\nsearch_algorithm: grid\n"
    "search: {dropout: {grid: [0.0, 0.5]}, conv_layers: 1, filters: 8, units: 16, epochs: 2}\n",
}


def plan(space: Path) -> tuple[dict, float]:
    """`hpo plan --json`'s figures and its wall seconds."""
    start = time.time()
    done = subprocess.run([HPO, "plan", str(space), "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"hpo plan {space} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), time.time() - start


def epoch_seconds(experiment: Path) -> float:
    """The sweep's mean seconds an epoch took (Ray's time_this_iter_s)."""
    times = [
        json.loads(line)["time_this_iter_s"]
        for path in experiment.glob("*/result.json")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return sum(times) / len(times)


def worst(measured: float, band: dict) -> float:
    """How close `measured` comes to leaving the widened band: measured / (p90 x 1.15) above
    the median, (p10 / 1.15) / measured below it; <= 1.0 inside."""
    if measured >= band["median"]:
        return measured / (band["p90"] * WIDEN)
    return band["p10"] / WIDEN / measured


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one tiny space: a check")
    args = parser.parse_args()
    header(NAME, "hpo plan's 10-90% range against the sweep it plans, two spaces")
    rows, ratios, cheap = [], [], True
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        spaces = {}
        for kind, text in (
            QUICK.items() if args.quick else (("grid", None), ("optuna", OPTUNA_SPACE))
        ):
            path = Path(work) / f"{kind}.yaml"
            path.write_text(
                text
                if text is not None
                else (ROOT / "search_spaces" / "fashion_seed.yaml").read_text()
            )
            spaces[kind] = path
        for kind, space in spaces.items():
            figures, plan_s = plan(space)
            storage = Path(work) / f"runs_{kind}"
            wall = hpo("sweep", str(space), "--storage", str(storage), "--no-plan",
                       "--tracking-uri", f"sqlite:///{work}/mlflow.db")  # fmt: skip
            experiment = experiment_in(storage)
            _, epochs, _ = outcome(experiment)
            te, ws = figures["trial_epochs"], figures["wall_s"]
            ratios += [worst(epochs, te), worst(wall, ws)]
            cheap = cheap and (plan_s <= 60 if kind == "grid" else True)
            plan_share = plan_s / ws["median"]
            measured_epoch = sum(s["epoch_s"] * s["trials"] for s in figures["shapes"]) / sum(
                s["trials"] for s in figures["shapes"]
            )
            rows.append((
                kind, f"{te['p10']:.0f} / {te['median']:.0f} / {te['p90']:.0f}", epochs,
                f"{ws['p10']:.0f} / {ws['median']:.0f} / {ws['p90']:.0f}", f"{wall:.0f}",
                f"{plan_s:.1f} ({plan_share:.0%})",
                f"{epoch_seconds(experiment) / measured_epoch:.2f}",
            ))  # fmt: skip
    print()
    table(rows, ("space", "plan: trial-epochs p10/50/90", "sweep", "plan: wall s p10/50/90",
                 "sweep s", "plan s (of median wall)", "epoch s: sweep / plan"))  # fmt: skip
    print(f"\ntarget: each measured figure inside the plan's 10-90% range widened by {WIDEN:g}x;"
          " the plan of the seed study in at most 60 s")  # fmt: skip
    ok = verdict(NAME, max(ratios), 1.0, higher_is_better=False, also=cheap)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
