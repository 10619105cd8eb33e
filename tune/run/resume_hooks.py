"""What hpo does right after Ray's TuneController.resume has restored an experiment, before any
trial is created: moved.py points the search algorithm at the folder where the experiment is
now, extend.py sets how many trials it creates. Ray (2.60) has no such hook, so its method is
wrapped, once per process, and calls each hook in the order they were first added.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_MARK = "_hpo_calls_resume_hooks"
_HOOKS: dict[str, Callable[[Any], None]] = {}  # by name; a dict keeps the order added


def after_resume(name: str, hook: Callable[[Any], None]) -> None:
    """Call `hook(controller)` after every TuneController.resume from now on (again: no-op)."""
    from ray.tune.execution.tune_controller import TuneController

    _HOOKS[name] = hook
    resume = TuneController.resume
    if getattr(resume, _MARK, False):
        return

    @functools.wraps(resume)
    def resume_then_hooks(self: Any, resume_config: Any) -> None:
        resume(self, resume_config)
        for then in _HOOKS.values():
            then(self)

    setattr(resume_then_hooks, _MARK, True)
    TuneController.resume = resume_then_hooks  # type: ignore[method-assign]
