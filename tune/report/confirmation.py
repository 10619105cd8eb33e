"""What a sweep's confirm run found: per candidate configuration, the metric and the test
scores of every seed that completed, ranked by their mean (analysis.confirm), read back from
the confirm run's folder. No Ray: `hpo report` reads it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tune.analysis import Confirmation, Confirmed, Summary, confirm, summarize
from tune.core import states
from tune.core.text import fmt_config
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


def recommendation(c: Confirmation, metric: str) -> list[str]:
    """The confirm run's answer, for the console: the winner, its mean metric and test
    accuracy with 95% confidence intervals, and whether it is distinguishable."""
    w = c.winner
    if w is None:
        return ["hpo confirm: no configuration has a completed seed yet; nothing to recommend."]
    runner_up = f"#{c.candidates[1].rank}" if len(c.candidates) > 1 else ""
    if c.distinguishable:
        verdict = f"distinguishable from {runner_up} (Welch's t-test p = {c.p_value:.3g})"
    elif c.distinguishable is False:
        verdict = (
            f"NOT distinguishable from {runner_up} (Welch's t-test p = {c.p_value:.3g}): "
            "the difference is within seed noise"
        )
    else:
        verdict = "no runner-up to test against (one configuration, or one seed)"
    return [
        f"Confirmed recommendation: configuration #{w.rank} (sweep trial {w.trial_id})",
        f"  {metric}: {_mean(summarize(w.metric))}",
        f"  test accuracy: {_mean(summarize(w.test_accuracy))} (held-out test set, used only "
        "to report)",
        f"  {verdict}",
        f"  config: {fmt_config(w.config)}",
    ]


def _mean(s: Summary) -> str:
    """'0.9012 (95% CI 0.8990-0.9034) over 3 seeds'."""
    ci = "" if s.ci_low is None else f" (95% CI {s.ci_low:.4f}-{s.ci_high:.4f})"
    return f"mean {s.mean:.4f}{ci} over {s.n} seed{'s' if s.n != 1 else ''}"


def confirmed_results(c: Confirmation, metric: str) -> dict[str, float]:
    """The confirm run's MLflow metrics: the winner's means, its test accuracy's interval
    and the p-value against the runner-up (those that exist)."""
    w = c.winner
    if w is None:
        return {}
    test = summarize(w.test_accuracy)
    results = {
        f"mean_{metric}": summarize(w.metric).mean,
        "mean_test_accuracy": test.mean,
        "recommended_rank": float(w.rank),
    }
    if test.ci_low is not None and test.ci_high is not None:
        results |= {"test_accuracy_ci_low": test.ci_low, "test_accuracy_ci_high": test.ci_high}
    if c.p_value is not None:
        results["p_value"] = c.p_value
    return results
