"""A moved or copied experiment folder creates its later trials where it is now.

Ray (2.60) restores the trials it had with the folder's new path, but not its search algorithm:
the experiment spec that the algorithm keeps, and creates every later trial from, still names
the storage of the first run. A resumed copy whose searcher had trials left to create would
write them into the original folder (hpo promises to write nothing outside the folder it is
given), or fail each with "Unable to set up cluster storage" where the original is gone.
`install` makes Ray's restore point the algorithm at the storage it restored from.
"""

from __future__ import annotations

from typing import Any

from tune.run.resume_hooks import after_resume


def install() -> None:
    """After TuneController.resume, the search algorithm creates trials in this run's storage."""
    after_resume("moved", lambda controller: point_at(controller._search_alg, controller._storage))


def point_at(search_alg: Any, storage: Any) -> None:
    """Every spec `search_alg` will create a trial from names `storage`: Ray's own generator
    (random and grid search, confirm runs) keeps them in its iterators, those it has expanded
    already included; a Searcher's wrapper (Optuna) keeps the experiment."""
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator

    if isinstance(search_alg, BasicVariantGenerator):
        for iterator in search_alg._iterators:
            iterator.unresolved_spec["storage"] = storage
            expanded = getattr(iterator.variants, "iterable", None)
            if isinstance(expanded, list):  # (resolved values, spec) of each pending trial
                for _, spec in expanded:
                    spec["storage"] = storage
    elif isinstance(search_alg, SearchGenerator) and search_alg._experiment is not None:
        search_alg._experiment.storage = storage
        search_alg._experiment.spec["storage"] = storage  # what next_trial reads
