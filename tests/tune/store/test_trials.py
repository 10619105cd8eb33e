"""Per-epoch history from a trial's result.json."""

from __future__ import annotations

import json
from pathlib import Path

from tune.store.trials import read_history


def test_history_keeps_each_epoch_once_in_order(tmp_path: Path) -> None:
    lines = [
        {"epoch": 1, "val_accuracy": 0.5, "config": {"lr": 0.1}, "device": "cpu"},
        {"epoch": 2, "val_accuracy": 0.6},
        {"epoch": 2, "val_accuracy": 0.6},  # Ray's echo of a finished trial after a resume
        {"epoch": 3, "val_accuracy": 0.7, "test_accuracy": 0.69},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"epoch": 4, "val_acc'  # cut by a kill
    (tmp_path / "result.json").write_text(text)
    history = read_history(tmp_path)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[0] == {"epoch": 1, "val_accuracy": 0.5}  # numbers only; config dropped
    assert history[2]["test_accuracy"] == 0.69


def test_no_result_file_is_no_history(tmp_path: Path) -> None:
    assert read_history(tmp_path) == ()
    assert read_history(None) == ()
