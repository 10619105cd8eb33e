"""Where `hpo confirm` put the winning model in MLflow, noted in the confirm folder so that
the report and the model card name it without asking MLflow (tune/deploy/registry.py writes
it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tune.core.files import UnreadableFile, load_json, write_atomic
from tune.store import storage

ALIAS = "best"
REGISTERED_FILE = "registered.json"  # in the confirm folder: what the report links to
REGISTERED_LIMIT = 100_000  # bytes


@dataclass(frozen=True)
class Registered:
    """Where the model went: the run it is logged in, and its registry version (None where
    the store has no registry)."""

    name: str
    run_id: str
    model_uri: str  # runs:/... or models:/...
    version: str | None

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.name}@{ALIAS}"


def save(folder: Path, registered: Registered) -> None:
    """Note where the model went, for the report (no MLflow call needed to read it); a
    bucket's mirror sends it on to the bucket, where another machine's report reads it."""
    write_atomic(folder / REGISTERED_FILE, json.dumps(vars(registered), indent=1) + "\n")
    storage.push(folder, REGISTERED_FILE)


def load(folder: Path) -> Registered | None:
    """What `save` noted in a confirm folder, or None (none, or not hpo's: a folder someone
    sent may hold anything)."""
    path = folder / REGISTERED_FILE
    if not path.is_file() or path.is_symlink():
        return None
    try:
        data = load_json(path, REGISTERED_LIMIT, 2)
        found = Registered(**{k: data[k] for k in ("name", "run_id", "model_uri", "version")})
    except (UnreadableFile, KeyError, TypeError):
        return None
    texts = (found.name, found.run_id, found.model_uri, found.version or "")
    return found if all(isinstance(t, str) for t in texts) else None
