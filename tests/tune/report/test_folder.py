"""The report folder and what hpo may replace or delete there, without a sweep: the folders and
listings are made by hand (tests/tune/test_received.py covers the same through `hpo report`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune.core.errors import InputError
from tune.report.folder import MARKER, claim, report_folder


def test_the_default_folder_is_the_experiments_report(tmp_path: Path) -> None:
    assert report_folder(tmp_path, None) == tmp_path / "report"
    assert report_folder(tmp_path, Path("elsewhere")) == Path("elsewhere").absolute()


@pytest.mark.parametrize("linked", ["report", "report/plots"])
def test_a_linked_folder_or_plots_is_refused(tmp_path: Path, linked: str) -> None:
    experiment, theirs = tmp_path / "exp", tmp_path / "theirs"
    experiment.mkdir()
    theirs.mkdir()
    if linked == "report/plots":
        (experiment / "report").mkdir()
    (experiment / linked).symlink_to(theirs)
    with pytest.raises(InputError, match="is a link"):
        report_folder(experiment, None)


def test_plots_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "plots").write_text("")
    with pytest.raises(InputError, match="is not a folder"):
        report_folder(tmp_path, tmp_path / "out")


def test_claim_returns_the_listed_names_hpo_writes(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text(json.dumps(["report.md", "plots/effect_lr.png"]))
    assert claim(tmp_path, default=False) == [
        tmp_path / "report.md",
        tmp_path / "plots/effect_lr.png",
    ]


@pytest.mark.parametrize(
    "names",
    [["/etc/passwd"], ["../victim.txt"], ["plots/../../victim.txt"], ["notes.txt"], [3], {"a": 1}],
)
def test_claim_refuses_a_listing_of_anything_else(tmp_path: Path, names: object) -> None:
    (tmp_path / MARKER).write_text(json.dumps(names))
    with pytest.raises(InputError) as e:
        claim(tmp_path, default=True)
    assert e.value.source == str(tmp_path / MARKER)


def test_claim_refuses_a_listed_link_and_a_linked_listing(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").symlink_to(victim)
    (folder / MARKER).write_text(json.dumps(["report.md"]))
    with pytest.raises(InputError, match="not a file hpo writes"):
        claim(folder, default=True)
    (tmp_path / "listing.json").write_text(json.dumps([]))
    (folder / MARKER).unlink()
    (folder / MARKER).symlink_to(tmp_path / "listing.json")
    with pytest.raises(InputError, match="a link"):
        claim(folder, default=True)
    assert victim.read_text() == "keep me"


def test_without_a_listing(tmp_path: Path) -> None:
    # The default folder of hpo before the listing: its plots, not links.
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "old.png").write_bytes(b"")
    (tmp_path / "plots" / "link.png").symlink_to(tmp_path / "plots" / "old.png")
    assert claim(tmp_path, default=True) == [tmp_path / "plots" / "old.png"]
    # --out: a new or empty folder is hpo's; one with the user's files is refused.
    assert claim(tmp_path / "new", default=False) == []
    with pytest.raises(InputError, match="holds files hpo did not write"):
        claim(tmp_path, default=False)
