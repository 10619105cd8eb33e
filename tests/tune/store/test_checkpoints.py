"""Checkpoints sealed with their SHA-256 and checked before loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tune.store import checkpoints
from tune.store.checkpoints import (
    CHECKPOINT_FILE,
    DIGEST_FILE,
    DIGEST_KEY,
    REPLAY_MARKER,
    CheckpointError,
)


def test_a_sealed_checkpoint_is_checked(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weights")
    value = checkpoints.seal(tmp_path)
    assert (tmp_path / DIGEST_FILE).read_text().strip() == value and len(value) == 64
    assert checkpoints.problem(tmp_path) is None
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weightz")
    problem = checkpoints.problem(tmp_path)
    assert problem is not None and "SHA-256 differs" in problem.message
    with pytest.raises(CheckpointError, match=rf"{CHECKPOINT_FILE}: is not the file that was"):
        checkpoints.check(tmp_path)
    (tmp_path / CHECKPOINT_FILE).unlink()
    problem = checkpoints.problem(tmp_path)
    assert problem is not None and problem.message == "missing"


def test_an_unsealed_checkpoint_is_refused(tmp_path: Path) -> None:
    """A missing seal file is no way around the check (hpo before the seal is not resumed)."""
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"weights")
    problem = checkpoints.problem(tmp_path)
    assert problem is not None and problem.message == f"is not sealed ({DIGEST_FILE} is missing)"


def reported(trial: Path, *lines: dict[str, object]) -> None:
    (trial / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_the_digest_result_json_recorded_wins_over_the_seal_file(tmp_path: Path) -> None:
    """A checkpoint and its seal file replaced together still differ from the digest the
    trial reported in result.json; without that line (a SIGKILL can cost it) the seal file
    is what is left, and the message says which was used."""
    folder = tmp_path / "checkpoint_000001"
    folder.mkdir()
    (folder / CHECKPOINT_FILE).write_bytes(b"weights")
    written = checkpoints.seal(folder)
    other = {"epoch": 1, "checkpoint_dir_name": "checkpoint_000000", DIGEST_KEY: "0" * 64}
    reported(tmp_path, other, {"epoch": 2, "checkpoint_dir_name": folder.name, DIGEST_KEY: written})
    assert checkpoints.recorded(folder) == (written, "result.json (epoch 2)")
    assert checkpoints.problem(folder) is None
    (folder / CHECKPOINT_FILE).write_bytes(b"crafted")
    checkpoints.seal(folder)  # the seal file made to match
    problem = checkpoints.problem(folder)
    assert problem is not None
    assert (
        problem.message
        == "is not the file that was written (its SHA-256 differs from result.json (epoch 2))"
    )
    (tmp_path / "result.json").write_text(
        json.dumps(other) + '\n{"epoch": 2, "checkp'
    )  # cut by a kill
    assert checkpoints.problem(folder) is None  # only the seal file is left to compare with
    (folder / DIGEST_FILE).write_text(written)
    problem = checkpoints.problem(folder)
    assert problem is not None and problem.message.endswith(
        f"differs from {DIGEST_FILE} (result.json has no line for it))"
    )


def test_a_replayed_checkpoint_is_checked_against_its_seal(tmp_path: Path) -> None:
    """Resume copies the newest checkpoint into the place of one Ray lost: result.json's line
    for that place is an older epoch's, so the copy's own seal is what it is checked with."""
    folder = tmp_path / "checkpoint_000001"
    folder.mkdir()
    (folder / CHECKPOINT_FILE).write_bytes(b"weights of epoch 3")
    checkpoints.seal(folder)
    (folder / REPLAY_MARKER).touch()
    reported(tmp_path, {"epoch": 2, "checkpoint_dir_name": folder.name, DIGEST_KEY: "0" * 64})
    assert checkpoints.problem(folder) is None


def checkpoint(trial: Path, name: str, weights: bytes) -> Path:
    folder = trial / name
    folder.mkdir()
    (folder / CHECKPOINT_FILE).write_bytes(weights)
    checkpoints.seal(folder)
    return folder


def test_a_lost_checkpoint_gets_a_copy_of_the_newest_marked_for_replay(tmp_path: Path) -> None:
    """Ray deletes the older checkpoint when it registers a newer one and saves its state a
    moment later: a kill in between leaves the state naming a folder that is gone, or half
    deleted (CI saw `checkpoint_000000/trainer.pt: missing` on a resume after SIGKILL)."""
    newest = checkpoint(tmp_path, "checkpoint_000002", b"weights of epoch 3")
    gone = tmp_path / "checkpoint_000000"
    assert checkpoints.put_back_lost(gone)
    assert (gone / CHECKPOINT_FILE).read_bytes() == b"weights of epoch 3"
    assert (gone / REPLAY_MARKER).is_file() and not (newest / REPLAY_MARKER).exists()
    assert checkpoints.problem(gone) is None

    half = tmp_path / "checkpoint_000001"
    half.mkdir()
    (half / DIGEST_FILE).write_text("0" * 64)  # the deletion stopped after trainer.pt
    assert checkpoints.put_back_lost(half)
    assert checkpoints.problem(half) is None and (half / REPLAY_MARKER).is_file()
    assert not checkpoints.put_back_lost(newest)  # whole: nothing to do


def test_a_newer_checkpoint_a_full_disk_cut_short_is_passed_over(tmp_path: Path) -> None:
    """Seen in the full-disk test with the machine busy: Ray's previous snapshot (put back
    after a full disk) named a deleted checkpoint, and the newest on disk was the one whose
    copy the full disk had cut: the whole one before it takes the lost one's place."""
    whole = checkpoint(tmp_path, "checkpoint_000001", b"weights of epoch 2")
    cut = checkpoint(tmp_path, "checkpoint_000002", b"weights of epoch 3")
    (cut / CHECKPOINT_FILE).write_bytes(b"weights of")
    gone = tmp_path / "checkpoint_000000"
    assert checkpoints.put_back_lost(gone)
    assert (gone / CHECKPOINT_FILE).read_bytes() == (whole / CHECKPOINT_FILE).read_bytes()
    assert checkpoints.problem(gone) is None


def test_a_lost_checkpoint_is_put_back_only_from_and_into_plain_folders(tmp_path: Path) -> None:
    """A received folder whose checkpoints are links reads and writes nothing through them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / CHECKPOINT_FILE).write_bytes(b"secret")
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "checkpoint_000009").symlink_to(outside)
    gone = trial / "checkpoint_000000"
    assert not checkpoints.put_back_lost(gone) and not gone.exists()  # no plain one to copy

    checkpoint(trial, "checkpoint_000005", b"weights")
    half = trial / "checkpoint_000001"
    half.mkdir()
    (half / CHECKPOINT_FILE).symlink_to(outside / "written_through_a_link")
    assert not checkpoints.put_back_lost(half)
    assert not (outside / "written_through_a_link").exists()
    assert not checkpoints.put_back_lost(trial / "checkpoint_000009")


def test_a_checkpoint_whose_epoch_never_reached_result_json_is_marked(tmp_path: Path) -> None:
    """A kill after Ray registered a checkpoint but before its result reached result.json:
    resumed as it is, the trial's history would skip that epoch (CI saw epochs 1, 2, 4, 5, 6)."""
    first = checkpoint(tmp_path, "checkpoint_000000", b"epoch 1")
    second = checkpoint(tmp_path, "checkpoint_000001", b"epoch 2")
    line = {"epoch": 1, "checkpoint_dir_name": first.name}
    (tmp_path / "result.json").write_text(json.dumps(line) + '\n{"epoch": 2, "che')  # cut
    assert not checkpoints.mark_unreported(first)
    assert checkpoints.mark_unreported(second) and (second / REPLAY_MARKER).is_file()
    assert not checkpoints.mark_unreported(second)  # once
    assert checkpoints.replay_after(second) == 1  # the last epoch result.json held
    assert checkpoints.replay_after(first) is None  # not marked


def test_a_cut_last_line_is_ended_so_the_next_one_starts_whole(tmp_path: Path) -> None:
    """Ray appends the next epoch's line to a result.json (and a progress.csv) whose last line
    a full disk cut short: ended first, that line is not glued to the cut one and lost."""
    (tmp_path / "result.json").write_text('{"epoch": 1}\n{"epoch": 2, "che')
    (tmp_path / "progress.csv").write_text("epoch,val_accuracy\n1,0.5\n")
    outside = tmp_path / "outside.csv"
    outside.write_text("1,0.")
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "result.json").write_text('{"epoch": 1}\n{"epoch": 2, "che')
    (trial / "progress.csv").symlink_to(outside)
    checkpoints.end_cut_lines(trial)
    checkpoints.end_cut_lines(trial)  # once
    assert (trial / "result.json").read_text() == '{"epoch": 1}\n{"epoch": 2, "che\n'
    assert outside.read_text() == "1,0."  # never through a link
    checkpoints.end_cut_lines(tmp_path)
    assert (tmp_path / "progress.csv").read_text() == "epoch,val_accuracy\n1,0.5\n"
    checkpoints.end_cut_lines(tmp_path / "nothing_here")


def test_a_replay_starts_after_the_last_epoch_result_json_holds(tmp_path: Path) -> None:
    """CI, after a SIGKILL: Ray's state and result.json stopped at epoch 1 while the trial
    trained epochs 2 and 3; the newest checkpoint (epoch 3) took the deleted one's place and
    only epoch 3 was reported again: the history went 1, 3, 4. The marker says from where."""
    checkpoint(tmp_path, "checkpoint_000002", b"weights of epoch 3")
    (tmp_path / "result.json").write_text('{"epoch": 1}\n{"epoch": "x"}\n[2]\n{"epo')
    gone = tmp_path / "checkpoint_000000"
    assert checkpoints.put_back_lost(gone)
    assert checkpoints.replay_after(gone) == 1
    (gone / REPLAY_MARKER).write_text("")  # an older hpo's marker: all the checkpoint holds
    assert checkpoints.replay_after(gone) == -1
    (tmp_path / "result.json").unlink()
    assert checkpoints.last_reported_epoch(tmp_path) == 0


def test_a_newer_checkpoint_whose_name_an_older_line_reported_can_take_the_place(
    tmp_path: Path,
) -> None:
    """CI, confirm run after SIGTERM then SIGKILL: the first run's state was older than its
    result.json; the second went on from it, replayed epoch 2 into a checkpoint of the same
    name as the first run's (`checkpoint_000001`) and was killed before its line was written.
    That checkpoint matches its seal, not the first run's line: it is still whole, and takes
    the deleted one's place (before: no candidate, `checkpoint_000000/trainer.pt: missing`)."""
    newer = checkpoint(tmp_path, "checkpoint_000001", b"epoch 2, replayed")
    old_line = {"epoch": 2, "checkpoint_dir_name": newer.name, DIGEST_KEY: "0" * 64}
    reported(tmp_path, {"epoch": 1, "checkpoint_dir_name": "checkpoint_000000"}, old_line)
    gone = tmp_path / "checkpoint_000000"
    assert checkpoints.put_back_lost(gone)
    assert (gone / CHECKPOINT_FILE).read_bytes() == b"epoch 2, replayed"
    assert checkpoints.problem(gone) is None
