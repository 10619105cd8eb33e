"""The note of where confirm put the model: read back as written, and nothing else (a folder
someone sent may hold any registered.json)."""

from __future__ import annotations

from pathlib import Path

from tune.store.registered import REGISTERED_FILE, Registered, load, save


def test_the_note_reads_back_as_written(tmp_path: Path) -> None:
    written = Registered("study", "run-1", "models:/m-1", "3")
    save(tmp_path, written)
    assert load(tmp_path) == written
    assert load(tmp_path).alias_uri == "models:/study@best"  # type: ignore[union-attr]
    assert load(tmp_path / "none") is None


def test_a_note_that_is_not_hpos_is_ignored(tmp_path: Path) -> None:
    for text in ('{"name": 1, "run_id": "r", "model_uri": "u", "version": null}', "[1]", "{"):
        (tmp_path / REGISTERED_FILE).write_text(text)
        assert load(tmp_path) is None
    (tmp_path / REGISTERED_FILE).unlink()
    outside = tmp_path / "outside.json"
    outside.write_text('{"name": "n", "run_id": "r", "model_uri": "u", "version": null}')
    (tmp_path / REGISTERED_FILE).symlink_to(outside)
    assert load(tmp_path) is None
