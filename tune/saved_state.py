"""The trials Ray saved in an experiment folder, read as plain JSON: nothing is unpickled.

Ray's `experiment_state-*.json` holds, per trial, two JSON documents. Some of their fields are
pickles (`{"_type": "CLOUDPICKLE_FALLBACK", ...}`, hex strings); Ray's own reader
(ExperimentAnalysis) unpickles them, which runs whatever a crafted file says. `hpo status`,
`hpo report` and `hpo confirm` only need the plain fields: trial id, status, config, folder,
last result, metric summary and error file. They read those here, and never a pickle. (`hpo
resume` goes through Ray's Tuner.restore, which must unpickle: resuming means trusting the folder.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune.errors import Problem, SpecError

STATE_GLOB = "experiment_state-*.json"
PICKLED = "CLOUDPICKLE_FALLBACK"


class NoTrialsError(SpecError):
    """The experiment folder holds no trial state that Ray saved: exit 2, one line."""


@dataclass(frozen=True)
class RunMetadata:
    error_filename: str | None  # error.txt, in the trial's folder, once it has failed
    num_failures: int = 0  # times it failed, retries that recovered included


@dataclass(frozen=True)
class SavedTrial:
    """The fields of a ray.tune Trial that hpo reads, with the same names."""

    trial_id: str
    status: str
    config: dict[str, Any]
    path: str | None  # the trial's folder
    last_result: dict[str, Any]
    metric_analysis: dict[str, dict[str, Any]]
    run_metadata: RunMetadata


def load(folder: Path) -> list[SavedTrial]:
    """Every trial in the newest state file Ray saved in `folder`."""
    states = sorted(folder.glob(STATE_GLOB))
    if not states:
        raise NoTrialsError(
            str(folder),
            [
                Problem(
                    "",
                    "holds no trial state saved by Ray (killed while starting, or not an experiment)",
                    "wait for its first trial, or run `hpo resume` on it",
                )
            ],
        )
    path = states[-1]  # names end in the time they were started; the newest is last
    try:
        data = json.loads(path.read_text())
        return [_trial(folder, json.loads(a), json.loads(b)) for a, b in data["trial_data"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise NoTrialsError(
            str(path), [Problem("", f"cannot be read: {e!r}"[:200], "Ray's experiment state")]
        ) from None


def _trial(folder: Path, state: dict[str, Any], metadata: dict[str, Any]) -> SavedTrial:
    relative = state.get("relative_logdir")
    return SavedTrial(
        trial_id=str(state["trial_id"]),
        status=str(state["status"]),
        config=_plain(state.get("config") or {}),
        path=str(folder / relative) if isinstance(relative, str) and ".." not in relative else None,
        last_result=_plain(metadata.get("last_result") or {}),
        metric_analysis=_plain(metadata.get("metric_analysis") or {}),
        run_metadata=RunMetadata(
            error_filename=metadata.get("error_filename")
            if isinstance(metadata.get("error_filename"), str)
            else None,
            num_failures=_count(metadata.get("num_failures")),
        ),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _plain(value: Any) -> Any:
    """A JSON value with every pickled part left out (never unpickled)."""
    if isinstance(value, dict):
        if value.get("_type") == PICKLED:
            return None
        return {k: _plain(v) for k, v in value.items() if not _is_pickled(v)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_pickled(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_type") == PICKLED
