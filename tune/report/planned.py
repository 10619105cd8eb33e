"""The plan a sweep recorded at its start (`hpo plan`'s figures), beside what happened."""

from __future__ import annotations

from tune.core.text import duration


def rows(plan: dict[str, float]) -> list[list[str]]:
    """Rows for the report's Compute table; none for a sweep started without a plan."""
    if not plan:
        return []
    try:
        te = [plan[f"trial_epochs_{p}"] for p in ("p10", "median", "p90")]
        wall = [plan[f"wall_s_{p}"] for p in ("p10", "median", "p90")]
    except KeyError:
        return []  # a plan of another version: not shown rather than misread
    return [
        [
            "planned at the start (`hpo plan`): trial-epochs, 10th / 50th / 90th percentile",
            " / ".join(f"{v:.0f}" for v in te),
        ],
        [
            "planned wall time of the whole command (imports and Ray's start included)",
            " / ".join(duration(v) for v in wall),
        ],
    ]
