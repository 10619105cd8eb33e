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

from tune.core.errors import InputError, Problem
from tune.core.files import OUTSIDE, UnreadableFile, inside, nesting, read_bounded
from tune.space.distributions import as_number

STATE_GLOB = "experiment_state-*.json"
PICKLED = "CLOUDPICKLE_FALLBACK"
# Ray's state holds a few KB a trial; a folder of 100,000 trials stays under this.
STATE_LIMIT = 256_000_000
STATE_DEPTH = 64  # Ray's own nesting is a handful of levels; configs add a few


class NoTrialsError(InputError):
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
        if inside(folder, path.name) is None:
            raise UnreadableFile(OUTSIDE)
        data = _json(read_bounded(path, STATE_LIMIT))
        return [_trial(folder, _json(a), _json(b)) for a, b in data["trial_data"]]
    except UnreadableFile as e:
        raise NoTrialsError(
            str(path), [Problem("", f"cannot be read: {e}", "Ray's experiment state")]
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise NoTrialsError(
            str(path), [Problem("", f"cannot be read: {e!r}"[:200], "Ray's experiment state")]
        ) from None


def _json(text: Any) -> Any:
    """A JSON document of Ray's state, nested at most STATE_DEPTH levels."""
    if not isinstance(text, str | bytes):
        raise TypeError(f"expected a JSON text, got {type(text).__name__}")
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnreadableFile(f"nested more than {STATE_DEPTH} levels deep") from None
    if nesting(value) > STATE_DEPTH:
        raise UnreadableFile(f"nested more than {STATE_DEPTH} levels deep")
    return value


def _trial(folder: Path, state: dict[str, Any], metadata: dict[str, Any]) -> SavedTrial:
    """One trial's plain fields. Its folder must lie inside the experiment folder, and its
    error file inside its folder: a crafted state naming /etc/... or ../.. is left unread."""
    trial_dir = inside(folder, state.get("relative_logdir"))
    error = metadata.get("error_filename")
    error_file = inside(trial_dir, error) if trial_dir is not None else None
    return SavedTrial(
        trial_id=_text(state["trial_id"]),
        status=_text(state["status"]),
        config=_config(_mapping(_plain(state.get("config") or {}))),
        path=str(trial_dir) if trial_dir is not None else None,
        last_result=_mapping(_plain(metadata.get("last_result") or {})),
        metric_analysis={
            k: v
            for k, v in _mapping(_plain(metadata.get("metric_analysis") or {})).items()
            if isinstance(v, dict)
        },
        run_metadata=RunMetadata(
            error_filename=str(error) if error_file is not None else None,
            num_failures=_count(metadata.get("num_failures")),
        ),
    )


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's hyperparameters. Their names become file names in a report (plots/effect_NAME
    .png): only plain identifiers are kept, as every hyperparameter's name is."""
    return {
        k: v for k, v in config.items() if isinstance(k, str) and k.isidentifier() and len(k) <= 64
    }


def _text(value: Any) -> str:
    """An id or a status: a short string, as Ray writes them."""
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise TypeError(f"expected a short string, got {str(value)[:50]!r}")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _plain(value: Any) -> Any:
    """A JSON value with every pickled part left out (never unpickled), and integers too large
    for a float (which no trial reports) as None."""
    if isinstance(value, int) and not isinstance(value, bool) and as_number(value) is None:
        return None
    if isinstance(value, dict):
        if value.get("_type") == PICKLED:
            return None
        return {k: _plain(v) for k, v in value.items() if not _is_pickled(v)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_pickled(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_type") == PICKLED
