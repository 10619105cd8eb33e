"""hpo's module paths before tune/ was grouped by layer (December 2026), for Ray's pickles.

Ray pickles hpo's callbacks (tracking, progress, the snapshot backup), ASHA's saved rungs
(scheduling) and, in a confirm run, the functions of its search space into an experiment
folder's tuner.pkl and state files, each under the module path it had when the folder was made.
Resuming a folder made before the move looks those paths up: `install` makes each old path name
today's module, so such a folder resumes as it would have (tests/tune/test_saved_folders.py).
Only resuming unpickles; `status` and `report` never do (docs/architecture.md, "A received
folder").
"""

from __future__ import annotations

import importlib
import sys

# A class pickled under a module that it has since left must stay importable from that module:
# TrackingConfig, in tune/store/runs.py now, is imported by tune/run/tracking.py (the old
# folders' `tune.tracking`). tests/tune/test_saved_folders.py resumes such folders.
#
# Old path -> today's. `tune.cluster` and `tune.report` are packages now, and nothing of theirs
# was ever pickled, so they are not listed.
OLD_PATHS = {
    "tune.errors": "tune.core.errors",
    "tune.states": "tune.core.states",
    "tune.metrics": "tune.core.metrics",
    "tune.files": "tune.core.files",
    "tune.deadline": "tune.core.deadline",
    "tune.signals": "tune.core.signals",
    "tune.trust": "tune.core.trust",
    "tune.yaml_source": "tune.space.yaml_source",
    "tune.distributions": "tune.space.distributions",
    "tune.hyperparams": "tune.space.hyperparams",
    "tune.spec": "tune.space.spec",
    "tune.storage": "tune.store.storage",
    "tune.tracking_uri": "tune.store.tracking_uri",
    "tune.record": "tune.store.records",
    "tune.saved_state": "tune.store.saved_state",
    "tune.checkpoints": "tune.store.checkpoints",
    "tune.snapshots": "tune.store.snapshots",
    "tune.history": "tune.store.trials",
    "tune.status": "tune.store.rows",
    "tune.jobs": "tune.cluster.jobs",
    "tune.trainable": "tune.run.trainable",
    "tune.scheduling": "tune.run.scheduling",
    "tune.tracking": "tune.run.tracking",
    "tune.progress": "tune.run.progress",
    "tune.experiment": "tune.run.experiment",
    "tune.sweep": "tune.run.sweep",
    "tune.confirm": "tune.run.confirm",
    "tune.plots": "tune.report.plots",
    "tune.document": "tune.report.document",
}


def install() -> None:
    """Make every old module path name today's module, before Ray unpickles a folder's state."""
    for old, new in OLD_PATHS.items():
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(new)
