"""`hpo plan`: a sweep's cost before it runs, and the same figures recorded at a sweep's start.

Nothing is written: no experiment folder, no MLflow run. The trials come from the space
(trials.py), each distinct model shape is timed with a few real steps (measure.py: in this
process, or with --address as a Ray task with a trial's resources on a node of the cluster),
and the scheduler is replayed on simulated curves (simulate.py). docs/architecture.md, "Plan".
"""

from __future__ import annotations

import bisect
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from models.data import read_raw
from models.factory import CodeError
from models.sources import DataError
from tune.core.errors import InputError, Problem
from tune.core.text import duration, fmt_value
from tune.forecast import measure, simulate, trials
from tune.forecast.simulate import Asha, Outlook, Overheads, Percentiles
from tune.run.process import RunOptions
from tune.run.trial import trial_settings
from tune.space.checks import local_gpu_count
from tune.space.spec import SweepSpec

MAX_SHAPES = 12  # shapes measured at most; the others take the nearest measured one's cost
REPLAYS = 400
BUDGET_SHARE = 0.1  # of the sweep's median wall time, the most a plan spends measuring


@dataclass(frozen=True)
class ShapeCost:
    label: str  # the hyperparameters that set it apart from the other shapes
    trials: int  # how many of the sweep's trials have it
    epoch_s: float
    peak_mem_mb: float
    measured: bool  # False: it took the cost of the nearest measured shape


@dataclass(frozen=True)
class SweepPlan:
    name: str
    trials: int
    max_trial_epochs: int  # every trial to its last epoch: what no early stopping runs
    slots: int  # trials at a time
    per_machine: int  # of them on one machine at most (a cluster: its largest node)
    where: str  # "this machine (2 CPUs)" or the cluster's address
    threads: int  # torch threads a trial (its CPUs)
    shapes: tuple[ShapeCost, ...]
    trial_epochs: Percentiles
    wall_s: Percentiles
    peak_mem_mb: float  # the largest trial's
    memory_mb: float  # one machine's (the smallest node's), for the trials beside each other
    replays: int
    measured_s: float  # what measuring took

    def as_json(self) -> dict[str, Any]:
        """The figures `--json` prints and a sweep records (the contract: trial_epochs and
        wall_s each with p10, median and p90; slots; peak_mem_mb)."""
        out = asdict(self)
        out["shapes"] = [asdict(s) for s in self.shapes]
        return out

    def figures(self) -> dict[str, float]:
        """The headline figures a sweep records at its start (ExperimentRecord.plan), for the
        report to set beside what happened."""
        out = {"slots": float(self.slots), "peak_mem_mb": self.peak_mem_mb}
        for name, p in (("trial_epochs", self.trial_epochs), ("wall_s", self.wall_s)):
            out.update({f"{name}_p10": p.p10, f"{name}_median": p.median, f"{name}_p90": p.p90})
        return out

    def fits(self) -> bool:
        """Whether the trials that run at once fit one machine's memory."""
        return self.peak_mem_mb * min(self.per_machine, self.slots) <= self.memory_mb

    def lines(self) -> list[str]:
        """What `hpo plan` prints."""
        te, wall = self.trial_epochs, self.wall_s
        out = [
            f"Plan for '{self.name}': {self.trials} trials, {self.slots} at a time on "
            f"{self.where}, {self.threads} thread{'s' if self.threads > 1 else ''} a trial",
            f"Model shapes ({sum(s.measured for s in self.shapes)} measured with a few real "
            f"training steps each, in {self.measured_s:.1f} s):",
        ]
        for s in self.shapes:
            nearest = "" if s.measured else " (as the nearest measured shape)"
            out.append(
                f"  {s.label or 'every trial'}: {s.trials} trial{'s' if s.trials > 1 else ''}, "
                f"{s.epoch_s:.2f} s an epoch, peak {s.peak_mem_mb:.0f} MB{nearest}"
            )
        out += [
            f"Expected, over {self.replays} replays of the sweep on simulated learning curves "
            "(10th / 50th / 90th percentile):",
            f"  trial-epochs  {te.p10:.0f} / {te.median:.0f} / {te.p90:.0f}"
            f"   (of {self.max_trial_epochs} with every trial to its last epoch)",
            f"  wall time     {duration(wall.p10)} / {duration(wall.median)} / "
            f"{duration(wall.p90)}",
            f"  memory        {self.peak_mem_mb:.0f} MB a trial at most; {self.memory_mb:.0f} MB "
            f"a machine",
        ]
        if not self.fits():
            out.append(
                f"warning: {min(self.per_machine, self.slots)} trials of {self.peak_mem_mb:.0f} MB "
                "at once on one machine do not fit "
                f"in {self.memory_mb:.0f} MB: lower max_concurrent_trials, or the model"
            )
        return out


def make_plan(spec: SweepSpec, options: RunOptions) -> SweepPlan:
    """Measure and replay the sweep `spec` describes (module docstring)."""
    started = time.monotonic()
    configs = trials.configs(spec, random.Random(spec.seed))
    shapes = sorted({trials.shape(c) for c in configs}, key=trials.size)
    chosen = _spread(shapes, MAX_SHAPES)
    example = {trials.shape(c): c for c in reversed(configs)}
    settings = trial_settings(spec, options)
    try:
        data = read_raw(settings.data)
    except (DataError, CodeError) as e:
        raise InputError(settings.data.label, [Problem("dataset", str(e))]) from None
    measured_on = [example[s] for s in chosen]
    if options.address is None:
        slots, memory_mb, where = _local_slots(spec)
        per_machine = slots

        def timed(seconds: float) -> list[measure.Cost]:
            return measure.measure(measured_on, settings, data, seconds)
    else:
        slots, memory_mb, per_machine = _cluster_slots(spec, options)
        where = f"the cluster at {options.address}"

        def timed(seconds: float) -> list[measure.Cost]:
            return _on_cluster(spec, measured_on, settings, data, seconds)

    slots = min(slots, len(configs), spec.max_concurrent_trials or slots)
    costs = _within_budget(timed, spec, configs, chosen, slots, started)
    measured_s = time.monotonic() - started
    cost_of = _nearest(chosen, costs)
    outlook = _outlook(spec, configs, cost_of, slots)
    count = {s: sum(trials.shape(c) == s for c in configs) for s in shapes}
    return SweepPlan(
        name=spec.name,
        trials=len(configs),
        max_trial_epochs=sum(int(c["epochs"]) for c in configs),
        slots=slots,
        per_machine=per_machine,
        where=where,
        threads=settings.threads,
        shapes=tuple(
            ShapeCost(
                _label(s, shapes), count[s], cost_of(s).epoch_s, cost_of(s).peak_mem_mb, s in chosen
            )
            for s in shapes
        ),
        trial_epochs=outlook.trial_epochs,
        wall_s=outlook.wall_s,
        peak_mem_mb=max(c.peak_mem_mb for c in costs),
        memory_mb=memory_mb,
        replays=outlook.replays,
        measured_s=measured_s,
    )


def _within_budget(
    timed: Callable[[float], list[measure.Cost]],
    spec: SweepSpec,
    configs: list[dict[str, Any]],
    chosen: list[trials.Shape],
    slots: int,
    started: float,
) -> list[measure.Cost]:
    """The shapes' costs, measured within a tenth of the sweep they plan where the fixed
    start (imports, the data) leaves room: a first pass with QUICK_S of steps a shape gives a
    rough median wall time; a second, with up to TIMED_S a shape, runs only if it fits."""
    first = time.monotonic()
    rough = timed(measure.QUICK_S)
    pass_s = (time.monotonic() - first) / len(chosen)  # a shape's build, warm-up, eval, save
    wall = _outlook(spec, configs, _nearest(chosen, rough), slots, replays=50).wall_s.median
    spare = (BUDGET_SHARE * wall - (time.monotonic() - started)) / len(chosen) - pass_s
    if spare < 2 * measure.QUICK_S:
        return rough
    return timed(min(measure.TIMED_S, spare))


def _outlook(
    spec: SweepSpec,
    configs: list[dict[str, Any]],
    cost_of: Any,
    slots: int,
    replays: int = REPLAYS,
) -> Outlook:
    continuous, levels = trials.encode(spec, configs)
    planned = [
        simulate.Trial(int(c["epochs"]), cost_of(trials.shape(c)).epoch_s, tuple(row))
        for c, row in zip(configs, levels, strict=True)
    ]
    asha = None
    if spec.scheduler is not None:
        asha = Asha(spec.scheduler.grace_period, spec.scheduler.reduction_factor, spec.max_epochs)
    return simulate.outlook(
        planned,
        continuous,
        slots,
        asha,
        Overheads(),
        startup_trials=spec.startup_trials if spec.search_algorithm == "optuna" else None,
        time_budget_s=spec.time_budget_s,
        replays=replays,
        seed=spec.seed,
    )


def _spread(shapes: list[trials.Shape], most: int) -> list[trials.Shape]:
    """At most `most` of the shapes (ordered by size), spread evenly from smallest to largest."""
    if len(shapes) <= most:
        return shapes
    picks = {round(i * (len(shapes) - 1) / (most - 1)) for i in range(most)}
    return [shapes[i] for i in sorted(picks)]


def _nearest(chosen: list[trials.Shape], costs: list[measure.Cost]) -> Any:
    """Each shape's cost: its own if measured, else that of the measured shape nearest in size
    (on a log scale)."""
    own = dict(zip(chosen, costs, strict=True))
    keys = [math.log(trials.size(s)) for s in chosen]

    def cost_of(s: trials.Shape) -> measure.Cost:
        if s in own:
            return own[s]
        x = math.log(trials.size(s))
        i = bisect.bisect_left(keys, x)
        near = min((j for j in (i - 1, i) if 0 <= j < len(keys)), key=lambda j: abs(keys[j] - x))
        return costs[near]

    return cost_of


def _label(s: trials.Shape, shapes: list[trials.Shape]) -> str:
    """The shape's hyperparameters that differ between shapes, as `key=value` pairs."""
    varying = {k for k, _ in s if len({dict(o).get(k) for o in shapes}) > 1}
    return " ".join(f"{k}={fmt_value(v)}" for k, v in s if k in varying)


def _fit(cpus: float, gpus: float, spec: SweepSpec) -> int:
    """How many of the sweep's trials one machine of `cpus` and `gpus` runs at once."""
    fit = int(cpus // max(spec.resources.cpu, 1e-9))
    if spec.resources.gpu > 0:
        fit = min(fit, int(gpus // spec.resources.gpu))
    return fit


def _local_slots(spec: SweepSpec) -> tuple[int, float, str]:
    """Trials at a time on this machine, its memory, and how to name it."""
    cpus = os.cpu_count() or 1
    gpus = local_gpu_count() if spec.resources.gpu > 0 else 0
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    gpu_part = f", {gpus} GPUs" if spec.resources.gpu > 0 else ""
    return max(1, _fit(cpus, gpus, spec)), memory_mb, f"this machine ({cpus} CPUs{gpu_part})"


def _cluster_slots(spec: SweepSpec, options: RunOptions) -> tuple[int, float, int]:
    """Ray joined (this checkout's code and the user's modules go with the tasks): the trials
    the alive nodes hold at once, the smallest node's memory, and the most trials one node
    holds."""
    from tune.cluster import nodes
    from tune.run.process import start_ray

    start_ray(options, nodes.user_modules(spec))
    slots, memory, most = 0, math.inf, 1
    for node in nodes.alive_nodes():
        have = node.get("Resources", {})
        fit = _fit(have.get("CPU", 0), have.get("GPU", 0), spec)
        slots, most = slots + fit, max(most, fit)
        memory = min(memory, have.get("memory", math.inf) / 2**20)
    return max(1, slots), memory, most


def _on_cluster(
    spec: SweepSpec,
    configs: list[dict[str, Any]],
    settings: Any,
    data: Any,
    timed_s: float,
) -> list[measure.Cost]:
    """Measured as a Ray task with one trial's resources, on a node the cluster picks."""
    import ray

    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(measure.measure)
    costs: list[measure.Cost] = ray.get(task.remote(configs, settings, data, timed_s))
    return costs
