"""How long the end of every `hpo` command that started Ray takes: Ray's own `ray.shutdown()`
against hpo's `stop_ray()` (tune/run/process.py), side by side, alternating, each in a fresh
process that starts a local Ray as `hpo sweep` does, runs one task, and stops it.

Ray stops its processes one at a time, each sent SIGTERM and given up to a second; the
autoscaler's monitor always takes the whole second, and at the interpreter's exit Ray first
sleeps 0.5 s. stop_ray kills the monitor first and skips the sleep (hpo shows no worker logs
unless --verbose). The figure is the seconds from the command's last line to the process's end.

Target: stop_ray's median <= 0.5x Ray's. Run alone on the machine:

    .venv/bin/python bench/ray_stop.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from harness import header, spread, table, verdict

NAME = "ray_stop"
TARGET = 0.5

# A local Ray as hpo starts it (tune/run/process.py: start_ray, with its environment), one task,
# then the clock: `ray` leaves it to Ray's exit handler, as hpo did before stop_ray; `hpo`
# uses the handler start_ray registers. The parent times from the printed instant to the exit.
CHILD = """\
import os, sys, time
from tune.run.process import RunOptions, ray_environment, start_ray
os.environ.update(ray_environment(verbose=False))
if sys.argv[1] == "ray":
    import atexit, tune.run.process as p
    start_ray(RunOptions())
    atexit.unregister(p.stop_ray)
else:
    start_ray(RunOptions())
import ray
ray.get(ray.remote(lambda: 1).remote())
print(time.time(), flush=True)
"""


def stop_seconds(which: str) -> float:
    """Seconds from the child's last line to its exit: Ray's stop and the interpreter's end."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, which], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=120)
    ended = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"the {which} child exited {proc.returncode}")
    return ended - float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one of each: a check")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    header(NAME, f"a local Ray's stop at a command's end, {repeats} of each, alternating")
    seconds: dict[str, list[float]] = {"ray": [], "hpo": []}
    for _ in range(repeats):
        for which in seconds:
            seconds[which].append(stop_seconds(which))
    table(
        [
            ["ray.shutdown() at exit (Ray's)", spread(seconds["ray"])],
            ["stop_ray() (hpo's)", spread(seconds["hpo"])],
        ],
        ["end of the command", "seconds"],
    )
    print()
    ratio = statistics.median(seconds["hpo"]) / statistics.median(seconds["ray"])
    ok = verdict(NAME, ratio, TARGET, higher_is_better=False)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
