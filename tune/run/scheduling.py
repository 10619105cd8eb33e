"""ASHA, and keeping its memory across a resume.

Ray saves trials, the searcher and callback states with the experiment, but not the scheduler:
a restored ASHA would start with empty rungs and judge resumed trials against only the results
that come after the resume. SchedulerState hands ASHA's rungs to Ray as callback state, which
Ray saves with every experiment snapshot and gives back on restore.
"""

from __future__ import annotations

from typing import Any

from ray import tune as ray_tune

from tune.space.spec import SweepSpec


def scheduler(spec: SweepSpec) -> Any:
    """ASHA over epochs (max_t = the most epochs a trial may run), or None for FIFO."""
    if spec.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="epoch",
        max_t=spec.max_epochs,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )


class SchedulerState(ray_tune.Callback):
    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the Tuner before any trial ran; the live scheduler travels separately.
        return {"scheduler": None}

    def get_state(self) -> dict[str, Any] | None:
        if self.scheduler is None:
            return None
        # The rungs (each trial's recorded metric per milestone) and which bracket holds which
        # trial: everything ASHA decides from. Ray pickles this with the experiment state.
        return {"scheduler": dict(self.scheduler.__dict__)}

    def set_state(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.__dict__.update(state["scheduler"])
