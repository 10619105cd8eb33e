"""Ray's snapshot kept whole: a copy of the last good one, put back when a full disk cut the
files short (the whole path, a full tmpfs mid-sweep, is in test_interrupts.py)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tune.store import snapshots


def snapshot(folder: Path, trials: int) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "experiment_state-2026-12-01.json").write_text(json.dumps({"trials": trials}))
    (folder / "basic-variant-state-2026-12-01.json").write_bytes(pickle.dumps({"left": 9 - trials}))


def test_a_cut_snapshot_gets_the_last_whole_one_back(tmp_path: Path) -> None:
    snapshot(tmp_path, 3)
    assert snapshots.backup(tmp_path)
    assert snapshots.repair(tmp_path) == []  # nothing is damaged: nothing to do
    snapshot(tmp_path, 4)
    state = tmp_path / "basic-variant-state-2026-12-01.json"
    state.write_bytes(state.read_bytes()[:10])  # the disk filled up mid-copy
    assert not snapshots.backup(tmp_path)  # a cut snapshot never replaces the good copy
    assert snapshots.repair(tmp_path) == [
        "basic-variant-state-2026-12-01.json", "experiment_state-2026-12-01.json",
    ]  # fmt: skip
    # The whole set comes back, not just the cut file: the two belong together.
    assert json.loads((tmp_path / "experiment_state-2026-12-01.json").read_text()) == {"trials": 3}
    assert pickle.loads(state.read_bytes()) == {"left": 6}


def test_no_copy_or_a_cut_copy_changes_nothing(tmp_path: Path) -> None:
    snapshot(tmp_path, 3)
    (tmp_path / "experiment_state-2026-12-01.json").write_text('{"tri')
    assert snapshots.repair(tmp_path) == []  # no copy: Ray's own error will say what is wrong
    assert not snapshots.backup(tmp_path)
    assert not (tmp_path / snapshots.BACKUP_DIR).exists()
