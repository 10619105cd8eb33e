"""What a sweep costs beyond the training itself: a 12-trial ASHA sweep of the real trainer,
epochs of about 2 s, on 2 CPUs, run through hpo's own command line in this process.

    overhead = wall time / (sum of the trials' training + evaluation seconds / parallel slots)

1.00 would be every CPU training from the first instant to the last. The rest is broken down in
CPU-slot seconds, divided by the slots so that the rows add up to the wall time:
before the first trial (imports, Ray, MLflow store, data), each fresh worker's start (process,
data from the object store), each trial's set-up on a reused worker, checkpoint writes and
reports after every epoch, slots waiting between trials, slots idle at the end because fewer
trials are left than slots (ASHA's tail), and what follows the last trial (MLflow flush,
summary). MLflow writes run on a driver thread beside all of that; their time is shown apart.
Run alone on the machine:

    .venv/bin/python bench/sweep_overhead.py [--repeats 3] [--quick] [--compare-copy]

--compare-copy runs each repeat a second time with Ray's own copy of the driver's files into
the folder (tune/run/uploads.py not installed: every file of the staging folder rewritten in
place after every checkpoint), side by side, and prints the ratio of the wall times.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import header, spread, table, verdict

NAME = "sweep_overhead"
TARGET = 1.05
SLOTS = 2

SPACE = """\
name: overhead
dataset: {{train_steps: {steps}, eval_steps: null}}
search:
  dropout: {{grid: {dropouts}}}
  normalization: {{grid: [false, true]}}
  conv_layers: 2
  epochs: {epochs}
search_algorithm: grid
scheduler:
  asha: {{grace_period: 1, reduction_factor: 3}}
resources: {{cpu: 1, gpu: 0}}
"""


@dataclass
class Clock:
    """Seconds spent in some of hpo's own functions, on the driver."""

    spent: dict[str, float] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)  # unix time of the first call

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.entered.setdefault(label, time.time())
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed)


@dataclass(frozen=True)
class Trial:
    start: float  # unix time the trial began (its first epoch minus that epoch's seconds)
    end: float
    compute: float  # training + evaluation seconds
    first_extra: float  # first epoch's seconds beyond training and evaluation (set-up)
    later_extra: float  # the same for every later epoch (checkpoint write, report)


def read_trials(folder: Path) -> list[Trial]:
    trials = []
    for path in sorted(folder.glob("*/result.json")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        extra = [r["time_this_iter_s"] - r["train_seconds"] - r["eval_seconds"] for r in rows]
        trials.append(
            Trial(
                start=rows[0]["reported_at"] - rows[0]["time_this_iter_s"],
                end=rows[-1]["reported_at"],
                compute=sum(r["train_seconds"] + r["eval_seconds"] for r in rows),
                first_extra=extra[0],
                later_extra=sum(extra[1:]),
            )
        )
    return trials


def idle_slots(trials: list[Trial], since: float, until: float) -> float:
    """Slot-seconds no trial used between `since` and `until`."""
    edges = sorted([(t.start, 1) for t in trials] + [(t.end, -1) for t in trials])
    idle, running, last = 0.0, 0, since
    for when, step in edges:
        when = min(max(when, since), until)
        idle += max(SLOTS - running, 0) * (when - last)
        running, last = running + step, when
    return idle + max(SLOTS - running, 0) * (until - last)


def one_sweep(work: Path, steps: int, epochs: int, started: float) -> dict[str, float]:
    """Run the sweep through `hpo sweep` and account for every slot-second of it."""
    from tune import cli
    from tune.core.retry_queue import RetryQueue
    from tune.run import experiment, process, sweep
    from tune.store import runs

    clock = Clock()
    clock.spent["imports"] = time.time() - started  # 0 once imported by an earlier sweep
    clock.wrap(process, "start_ray", "Ray start")
    clock.wrap(runs, "ensure_store", "MLflow store")
    clock.wrap(experiment, "start_parent_run", "MLflow parent run")
    clock.wrap(sweep, "read_raw", "data read")
    clock.wrap(RetryQueue, "_run", "MLflow writes")
    clock.wrap(experiment, "_fit", "Tuner")
    space = work / "overhead.yaml"
    # --quick: 4 trials instead of 12 (only the script is checked, not the figure).
    dropouts = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] if steps >= 100 else [0.0, 0.1]
    space.write_text(SPACE.format(steps=steps, epochs=epochs, dropouts=dropouts))
    args = ["sweep", str(space), "--storage", str(work / "runs")]
    args += ["--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(args)
    ended = time.time()
    if code != 0:
        raise SystemExit(f"hpo sweep exited {code}")
    trials = read_trials(work / "runs" / "overhead")
    first, last = min(t.start for t in trials), max(t.end for t in trials)
    fresh = sorted(trials, key=lambda t: t.start)[:SLOTS]  # each slot's first trial: new worker
    last_start = max(t.start for t in trials)
    wall = ended - started
    parts = {
        "training + evaluation": sum(t.compute for t in trials),
        "before the first trial": SLOTS * (first - started),
        "  of which imports (torch, Ray, MLflow)": SLOTS * clock.spent["imports"],
        "  of which Ray start": SLOTS * clock.spent["Ray start"],
        "  of which the MLflow parent run": SLOTS * clock.spent["MLflow parent run"],
        "    of which a new SQLite store": SLOTS * clock.spent.get("MLflow store", 0.0),
        "  of which data read": SLOTS * clock.spent["data read"],
        "  of which Tuner start to first trial": SLOTS * (first - clock.entered["Tuner"]),
        "fresh worker start + data": sum(t.first_extra for t in fresh),
        "trial set-up on a reused worker": sum(t.first_extra for t in trials if t not in fresh),
        "checkpoint + report per epoch": sum(t.later_extra for t in trials),
        "slots waiting between trials": idle_slots(trials, first, last_start),
        "slots idle at the end (ASHA's tail)": idle_slots(trials, last_start, last),
        "after the last trial": SLOTS * (ended - last),
        "MLflow writes (driver thread, beside)": clock.spent.get("MLflow writes", 0.0) * SLOTS,
    }
    parts["wall"] = wall
    parts["overhead"] = wall / (parts["training + evaluation"] / SLOTS)
    return parts


def floor() -> float:
    """What any Ray Tune sweep pays here before its first trial can start: a new Python process
    imports torch, Ray and MLflow, starts Ray, and runs one task in a worker."""
    code = (
        "import time, logging, torch, mlflow, ray\n"
        "ray.init(address='local', include_dashboard=False, logging_level=logging.ERROR)\n"
        "ray.get(ray.remote(lambda: 1).remote())\n"
        "print(time.time())\n"  # Ray's shutdown at exit does not count
    )
    start = time.time()
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1]) - start


def child(args: argparse.Namespace) -> int:
    """One sweep in this fresh process, as `hpo sweep` would run it; prints its accounting.
    --rays-copy: with Ray's own copy of the driver's files, as before uploads.py."""
    if args.rays_copy:
        from tune.run import uploads

        uploads.install = lambda: None  # type: ignore[assignment]
    parts = one_sweep(Path(args.one), args.steps, args.epochs, args.started)
    print(json.dumps(parts))
    return 0


def sweep_process(steps: int, epochs: int, rays_copy: bool) -> dict[str, float]:
    """One sweep in a new process, as a user runs it: its imports count."""
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as work:
        command = [sys.executable, __file__, "--one", work, "--steps", str(steps)]
        command += ["--epochs", str(epochs), "--started", repr(time.time())]
        command += ["--rays-copy"] if rays_copy else []
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        parts: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 trials of tiny epochs: a check")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child: run one sweep in this folder
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=9, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--rays-copy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--compare-copy", action="store_true", help="each repeat again with Ray's own file copy"
    )
    args = parser.parse_args()
    if args.one:
        return child(args)
    steps, epochs, repeats = (5, 2, 1) if args.quick else (100, 9, args.repeats)
    trials = 4 if args.quick else 12
    header(
        NAME, f"{trials} trials, ASHA (grace 1, factor 3), up to {epochs} epochs of {steps} batches"
    )
    runs, floors, rays = [], [], []
    for i in range(repeats):
        # Each repeat alternates which copy goes first, so a drift of the machine is shared.
        variants = [False, True] if args.compare_copy else [False]
        for rays_copy in variants if i % 2 == 0 else variants[::-1]:
            parts = sweep_process(steps, epochs, rays_copy)
            (rays if rays_copy else runs).append(parts)
        floors.append(floor())
    last = runs[-1]
    rows = []
    for key in last:
        if key in ("wall", "overhead"):
            continue
        seconds = [run[key] / SLOTS for run in runs]
        rows.append((key, spread(seconds), f"{statistics.median(seconds) / last['wall']:.1%}"))
    rows.append(("wall time", spread([run["wall"] for run in runs]), "100%"))
    print()
    table(rows, ("where the wall time goes (slot-seconds / 2)", "seconds", "of the wall"))
    overheads = [run["overhead"] for run in runs]
    compute = statistics.median(run["training + evaluation"] for run in runs) / SLOTS
    least = statistics.median(floors)
    print(
        f"\nfloor: any Ray Tune sweep here first spends {least:.1f} s (new process: import torch,"
        f" Ray, MLflow; start Ray; one task); with nothing else, {1 + least / compute:.2f}"
        f" for this sweep's {compute:.0f} s of training per slot"
    )
    print(f"overhead per sweep: {spread(overheads)} (median, range of {repeats})")
    if rays:
        ratios = [h["wall"] / r["wall"] for h, r in zip(runs, rays, strict=True)]
        print(
            f"hpo's copy of the driver's files (uploads.py) vs Ray's own: wall "
            f"{spread([h['wall'] for h in runs])} s vs {spread([r['wall'] for r in rays])} s, "
            f"ratio {spread(ratios)} (median, range of {repeats} pairs); overhead "
            f"{spread([r['overhead'] for r in rays])} with Ray's"
        )
    ok = verdict(NAME, statistics.median(overheads), TARGET, higher_is_better=False)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
