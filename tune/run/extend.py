"""`hpo extend`: more trials for a finished or interrupted sweep, in the same experiment.

Ray restores a Tuner with the trials it was started for (Tuner.restore cannot change
num_samples). The record holds the sweep's spec with num_samples raised by each extension
(ExperimentRecord.extended lists them), and once Ray has restored its search algorithm,
`install` raises the trials it will create to the record's count: Ray's own generator (random
search) gets an iterator for the missing samples that continues its random
state and its trial ids; a Searcher's wrapper (Optuna's) gets a higher total, its study having
seen every earlier result. ASHA's rungs come back with the experiment (tune/run/scheduling.py),
so the new trials are judged against every earlier rung result. A resume of an extended sweep
goes through the same, so an interrupted extension continues. An extension gets the sweep's
time_budget_s afresh (Ray restores the budget as the sweep left it: spent, or nearly); a resume
continues what is left of it (docs/architecture.md, "Extend").
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from tune.run.resume_hooks import after_resume
from tune.space.spec import MAX_SAMPLES, SweepSpec
from tune.store.records import ExperimentRecord

# The spec whose trial count the next restored search algorithm is set to (set by restore_tuner
# for every sweep, None for a confirm run), and whether its time budget starts afresh.
_expected: list[SweepSpec | None] = [None]
_fresh_budget = [False]


def refusal(record: ExperimentRecord, more: int) -> str | None:
    """Why `hpo extend` cannot add `more` samples to this experiment, or None."""
    spec = record.spec
    if record.is_confirm:
        return "a confirm run is not extended; extend its sweep, then run `hpo confirm` again"
    if spec.search_algorithm == "grid":  # (repeats of a grid are refused: identical runs)
        return "a grid runs each point once; use --warm-start with a new space"
    if spec.num_samples + more > MAX_SAMPLES:
        return f"--num-samples {more}: {spec.num_samples} + {more} is over {MAX_SAMPLES} samples"
    return None


def extended(record: ExperimentRecord, more: int, created: int) -> ExperimentRecord:
    """The record with `more` samples added to those it has. `created`: its trials so far. A
    sweep its time budget ended has only the trials it created (Optuna creates a trial when a
    slot frees): `more` are added to those, and the extension has the budget afresh."""
    spec = record.spec
    have = spec.num_samples
    if record.budget_ended and spec.search_algorithm == "optuna":
        have = created
    spec = replace(spec, num_samples=have + more)
    return replace(record, spec=spec, extended=(*record.extended, more), budget_ended="")


def expect(spec: SweepSpec | None, fresh_budget: bool = False) -> None:
    """The spec the next restore sets its search algorithm's trial count to (None leaves it as
    Ray saved it), and whether the time budget starts afresh (an extension's start)."""
    _expected[0] = spec
    _fresh_budget[0] = fresh_budget


def install() -> None:
    """After TuneController.resume, the search algorithm creates the trials the record counts."""
    after_resume("extend", _to_count)


def _to_count(controller: Any) -> None:
    spec = _expected[0]
    if spec is not None and set_count(controller._search_alg, spec):
        controller.update_max_pending_trials()
    if _fresh_budget[0]:
        _renew_budget(controller._stopper)


def set_count(search_alg: Any, spec: SweepSpec) -> bool:
    """Let `search_alg` create spec.trial_count() trials in all; whether that changed it. Ray's
    generator has created all of its trials already, so it only ever gets more; a Searcher's
    wrapper creates one when a slot frees, and one its time budget ended may get fewer than
    it was started for (extended: its trials, plus those added)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator

    missing = spec.trial_count() - search_alg.total_samples
    if missing == 0:
        return False
    if isinstance(search_alg, BasicVariantGenerator):
        if missing < 0:
            return False
        _more_variants(search_alg, spec, missing)
    elif isinstance(search_alg, SearchGenerator):
        search_alg._total_samples += missing
    else:
        raise RuntimeError(f"cannot extend a {type(search_alg).__name__} (Ray changed?)")
    search_alg._finished = False
    return True


def _more_variants(generator: Any, spec: SweepSpec, missing: int) -> None:
    """Ray's generator (random search): one more iterator over the same experiment spec, for
    the missing samples (each a trial per point of the space's grid entries), numbering trials
    on from the last and drawing from the same random state."""
    from ray.tune.search.basic_variant import _TrialIterator

    last = generator._iterators[-1]
    more = _TrialIterator(
        uuid_prefix=last.uuid_prefix,
        num_samples=missing // spec.grid_size(),
        unresolved_spec=last.unresolved_spec,
        constant_grid_search=last.constant_grid_search,
        lazy_eval=False,
        start=generator.total_samples,
        random_state=generator._random_state,
    )
    generator._iterators.append(more)
    generator._trial_generator = itertools.chain(generator._trial_generator, more)
    generator._total_samples += missing


def _renew_budget(stopper: Any) -> None:
    """The time budget's stopper, given its whole budget again (within Ray's combined one)."""
    from ray.tune.stopper import CombinedStopper, TimeoutStopper

    if isinstance(stopper, TimeoutStopper):
        stopper._budget = stopper._timeout_seconds
    elif isinstance(stopper, CombinedStopper):
        for inner in stopper._stoppers:
            _renew_budget(inner)
