"""What every benchmark shares: the machine's description, a table printer, and the verdict line.

Each benchmark in bench/ compares hpo with a baseline run side by side in the same script, and
ends with one line that `make bench` and BENCHMARKS.md read:

    NAME: ratio=1.31 target=>=1.20 PASS
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """CPU model and core count, for the header of every table."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def header(name: str, what: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{name}: {what}")
    print(f"machine: {machine()}; {stamp}")


def spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """Median and the range over repeats: '1.31 (1.27-1.35)'."""
    if len(values) == 1:
        return f"{values[0]:{fmt}}"
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def table(rows: Sequence[Sequence[object]], head: Sequence[str]) -> None:
    cells = [[str(c) for c in head]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def verdict(
    name: str, ratio: float, target: float, higher_is_better: bool, also: bool = True
) -> bool:
    """Print the last line and say whether the target was met (and `also`, a second condition
    the benchmark states above this line)."""
    ok = (ratio >= target if higher_is_better else ratio <= target) and also
    sign = ">=" if higher_is_better else "<="
    print(f"{name}: ratio={ratio:.4g} target={sign}{target:.4g} {'PASS' if ok else 'FAIL'}")
    return ok


def experiment_in(storage: Path) -> Path:
    """The one experiment folder a sweep made in `storage` (with --smoke its name ends in
    _smoke; hpo's lock files beside it start with a dot)."""
    (found,) = [p for p in storage.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return found


HPO = str(ROOT / ".venv" / "bin" / "hpo")


def hpo(*args: str, here: bool = False) -> float:
    """Run an hpo command as a user would; its wall seconds. Exits with its stderr if it fails.

    here=True (the --quick modes, whose figures mean nothing): through the CLI's `main` in this
    process instead, so the imports are paid once and the Ray the first command starts serves
    the next ones; a quick run then checks the script in less time."""
    start = time.time()
    code, err = _here(args) if here else _in_a_process(args)
    if code != 0:
        raise SystemExit(f"hpo {' '.join(args)} exited {code}:\n{err[-2000:]}")
    return time.time() - start


def _in_a_process(args: Sequence[str]) -> tuple[int, str]:
    done = subprocess.run([HPO, *args], capture_output=True, text=True)
    return done.returncode, done.stderr


def _here(args: Sequence[str]) -> tuple[int, str]:
    from tune.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


def outcome(experiment: Path) -> tuple[int, int, float]:
    """Trials, trial-epochs and the best validation accuracy of any epoch, from the result
    files Ray wrote in an experiment folder (hpo's or a plain Ray Tune script's)."""
    trials, epochs, best = 0, 0, 0.0
    for path in experiment.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        trials, epochs = trials + 1, epochs + len(rows)
        best = max([best, *(r["val_accuracy"] for r in rows)])
    return trials, epochs, best


@dataclass(frozen=True)
class Confirmed:
    """A sweep and its `hpo confirm`, as two benchmarks run them."""

    experiment: Path
    sweep_s: float
    confirm_s: float
    confirmation: Any  # tune.analysis.Confirmation, with a winner


def sweep_and_confirm(
    space: Path, name: str, work: Path, top: int, seeds: int, *flags: str, here: bool = False
) -> Confirmed:
    """`hpo sweep` of `space` into a storage folder of its own under `work` (MLflow in
    work/mlflow.db), then `hpo confirm --top --seeds` on it; extra sweep `flags` (--smoke);
    `here`: as `hpo` has it."""
    from tune.report.confirmation import load_confirmation

    storage = work / name
    tracking = f"sqlite:///{work}/mlflow.db"
    sweep_s = hpo("sweep", str(space), "--name", name, "--storage", str(storage),
                  "--tracking-uri", tracking, *flags, here=here)  # fmt: skip
    experiment = experiment_in(storage)
    confirm_s = hpo("confirm", str(experiment), "--top", str(top), "--seeds", str(seeds), here=here)
    confirmation = load_confirmation(experiment)
    if confirmation is None or confirmation.winner is None:
        raise SystemExit(f"hpo confirm {experiment}: no configuration was confirmed")
    return Confirmed(experiment, sweep_s, confirm_s, confirmation)
