"""What a sweep's confirm run found: per candidate configuration, the metric and the test
scores of every seed that completed, ranked by their mean (analysis.confirm), read back from
the confirm run's folder. No Ray: `hpo report` reads it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tune.analysis import Confirmation, Confirmed, confirm
from tune.core import states
from tune.store import records
from tune.store.records import CANDIDATE_KEY, ExperimentRecord
from tune.store.saved_state import NoTrialsError
from tune.store.trials import Trial, load_trials


def load_confirmation(experiment: Path) -> Confirmation | None:
    """What the confirm run found so far, or None without a confirm run."""
    record = records.confirm_record(experiment)
    if record is None:
        return None
    try:
        _, trials = load_trials(records.confirm_dir(experiment))
    except NoTrialsError:
        trials = []  # started, but Ray saved nothing yet
    return confirmation(record, trials)


def confirmation(record: ExperimentRecord, trials: list[Trial]) -> Confirmation:
    """Per candidate, the metric at the last epoch and the test metrics of every seed that
    completed, ranked by their mean."""
    results = []
    for c in record.candidates:
        done = [
            t
            for t in trials
            if int(t.config.get(CANDIDATE_KEY, -1)) == c.rank
            and t.state == states.COMPLETED
            and t.last("test_accuracy") is not None
        ]
        results.append(
            Confirmed(
                **vars(c),
                metric=[t.last(record.metric) or 0.0 for t in done],
                test_accuracy=[t.last("test_accuracy") or 0.0 for t in done],
                test_loss=[t.last("test_loss") or 0.0 for t in done],
            )
        )
    return replace(confirm(results, record.mode), run_id=record.parent_run_id)
