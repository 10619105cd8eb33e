"""Ray's upload of the driver's files into a local experiment folder, killed mid-copy, leaves
every file whole: the old one or the new one (the CI failure of stop 28: a finished trial's
result.json cut to nothing by a SIGKILL during Ray's periodic copy)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs
import pytest

from tune.run import uploads

SIZE = 16 << 20  # large enough that a copy takes a while to watch
UPLOADER = """\
import sys
from pathlib import Path
import pyarrow.fs
from ray.train._internal import storage
if sys.argv[3] == "hpo":
    from tune.run import uploads
    uploads.install()
source, target = Path(sys.argv[1]), sys.argv[2]
result = source / "trial" / "result.json"
for turn in range(1_000_000):  # each turn new content of the same size, as Ray's syncs copy
    result.write_bytes((b"ab"[turn % 2 : turn % 2 + 1] * 63 + b"\\n") * (SIZE // 64))
    storage._upload_to_fs_path(local_path=str(source), fs=pyarrow.fs.LocalFileSystem(),
                               fs_path=target)
""".replace("SIZE", str(SIZE))


def killed_mid_copy(tmp_path: Path, which: str) -> bytes:
    """Run the upload in a loop in a process of its own, SIGKILL it the moment the target's
    result.json is being written (cut short in place, or a temporary file beside it), and
    return what the target holds then."""
    source, target = tmp_path / "staging", tmp_path / "experiment"
    (source / "trial").mkdir(parents=True)
    (target / "trial").mkdir(parents=True)
    result = target / "trial" / "result.json"
    result.write_bytes((b"o" * 63 + b"\n") * (SIZE // 64))
    proc = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, str(source), str(target), which],
        cwd=Path(__file__).parents[3],
    )
    try:
        deadline = time.monotonic() + 180  # only turns a hang into a failure
        while not (result.stat().st_size != SIZE or len(os.listdir(result.parent)) > 1):
            assert proc.poll() is None, f"the uploader ended: {proc.returncode}"
            assert time.monotonic() < deadline, "never saw result.json being written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return result.read_bytes()


def whole(data: bytes) -> bool:
    return len(data) == SIZE and len(set(data.replace(b"\n", b""))) == 1


def test_rays_own_upload_killed_mid_copy_cuts_the_file(tmp_path: Path) -> None:
    """What hpo guards against, shown with Ray's own copy (pyarrow's, in place). The copy may
    end between the test seeing it cut and the SIGKILL landing (on a busy machine), so the
    kill is tried a few times: one cut file shows it."""
    cut = (not whole(killed_mid_copy(tmp_path / str(n), "ray")) for n in range(5))
    assert any(cut)  # stops at the first cut file


def test_hpos_upload_killed_mid_copy_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    assert whole(killed_mid_copy(tmp_path, "hpo"))


def test_upload_copies_a_folder_and_skips_files_that_are_the_same(tmp_path: Path) -> None:
    source, target = tmp_path / "staging", tmp_path / "experiment"
    (source / "trial").mkdir(parents=True)
    (source / "state.json").write_text("{}")
    (source / "trial" / "result.json").write_text('{"epoch": 1}\n')
    uploads.upload_whole(source, target)
    assert (target / "state.json").read_text() == "{}"
    assert (target / "trial" / "result.json").read_text() == '{"epoch": 1}\n'
    inode = (target / "state.json").stat().st_ino
    (source / "trial" / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    uploads.upload_whole(source, target)
    assert (target / "trial" / "result.json").read_text().count("epoch") == 2
    assert (target / "state.json").stat().st_ino == inode  # the same bytes: not written again


def test_upload_of_one_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("[1]")
    uploads.upload_whole(tmp_path / "a.json", tmp_path / "out" / "b.json")
    assert (tmp_path / "out" / "b.json").read_text() == "[1]"


def test_upload_never_writes_through_a_linked_folder(tmp_path: Path) -> None:
    """A folder someone sent may hold a trial folder that is a link out of it."""
    source, target, outside = tmp_path / "staging", tmp_path / "experiment", tmp_path / "else"
    (source / "trial").mkdir(parents=True)
    (source / "trial" / "result.json").write_text("{}\n")
    target.mkdir()
    outside.mkdir()
    (target / "trial").symlink_to(outside)
    with pytest.raises(OSError, match="link"):
        uploads.upload_whole(source, target)
    assert list(outside.iterdir()) == []


def test_install_leaves_uploads_to_a_bucket_and_excluding_ones_to_ray(tmp_path: Path) -> None:
    from ray.train._internal import storage

    uploads.install()
    uploads.install()  # twice: still one layer
    patched = storage._upload_to_fs_path
    assert getattr(patched, "__wrapped__", None) is not None
    assert getattr(patched.__wrapped__, "__wrapped__", None) is None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / "y.png").write_text("y")
    patched(
        local_path=str(tmp_path / "a"),
        fs=pyarrow.fs.LocalFileSystem(),
        fs_path=str(tmp_path / "b"),
        exclude=["*.png"],
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["x.txt"]


def test_a_file_that_grew_gets_its_new_bytes_appended(tmp_path: Path) -> None:
    """result.json and progress.csv only grow: the file stays (a kill cuts at most the line
    being added), and only the new line is written."""
    source, target = tmp_path / "staging", tmp_path / "experiment"
    source.mkdir()
    (source / "result.json").write_text('{"epoch": 1}\n')
    uploads.upload_whole(source, target)
    inode = (target / "result.json").stat().st_ino
    (source / "result.json").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    uploads.upload_whole(source, target)
    assert (target / "result.json").read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    assert (target / "result.json").stat().st_ino == inode


def test_a_failed_upload_is_remembered_until_the_next_one(tmp_path: Path) -> None:
    """Ray's last copy failing (a full disk) tells the run path the folder's state is older."""
    from ray.train._internal import storage

    uploads.install()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.json").write_text("{}")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.json").mkdir()  # a folder where the file goes: the copy fails
    local = pyarrow.fs.LocalFileSystem()
    with pytest.raises(OSError):
        storage._upload_to_fs_path(
            local_path=str(tmp_path / "a"), fs=local, fs_path=str(tmp_path / "b")
        )
    assert uploads.last_failure() is not None
    storage._upload_to_fs_path(
        local_path=str(tmp_path / "a"), fs=local, fs_path=str(tmp_path / "c")
    )
    assert uploads.last_failure() is None


def test_the_trials_files_are_copied_before_rays_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between the two leaves a state that names no epoch result.json lacks."""
    source = tmp_path / "staging"
    (source / "trial_b").mkdir(parents=True)
    (source / "trial_a").mkdir()
    for name in ("experiment_state-1.json", "trial_b/result.json", "trial_a/result.json"):
        (source / name).write_text("{}")
    copied: list[str] = []
    monkeypatch.setattr(
        uploads, "_copy", lambda path, dest, root: copied.append(str(path.relative_to(source)))
    )
    uploads.upload_whole(source, tmp_path / "experiment")
    assert copied == ["trial_a/result.json", "trial_b/result.json", "experiment_state-1.json"]
