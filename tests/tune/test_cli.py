"""The CLI contract: exit codes, one line per problem, nothing written on bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOWHERE, SEARCH_SPACES
from tests.tune.conftest import Runner, hpo
from tune.cli import absolute_tracking_uri, build_parser, main

SMOKE = str(SEARCH_SPACES / "smoke.yaml")


@pytest.fixture
def run_hpo(fake_data_dir: Path) -> Any:
    """`hpo` in its own process, finding the fake dataset where a user's $HPO_DATA_DIR points."""

    def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return hpo(args, cwd, timeout=120, HPO_DATA_DIR=str(fake_data_dir), **env)

    return run


@pytest.fixture
def hpo_here(hpo_here: Runner, fake_data_dir: Path) -> Runner:
    """tests/tune/conftest.py's in-process `hpo`, finding the fake dataset through
    $HPO_DATA_DIR, for refusals that come before Ray starts."""

    def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return hpo_here(args, cwd, **{"HPO_DATA_DIR": str(fake_data_dir), **env})

    return run


def test_validate_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(SEARCH_SPACES.glob("*.yaml"))]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert out.count(": valid: ") == len(files)
    assert "24 trials of up to 12 epochs" in out


@pytest.mark.parametrize("lines", [1, 300], ids=["flushed_at_exit", "flushed_midway"])
def test_a_reader_that_goes_away_is_no_failure(lines: int) -> None:
    """`hpo status | head`: the pipe's reader is gone before hpo's output is written. Exit 141
    (the shell's code for SIGPIPE) with nothing on stderr, not a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first write: EPIPE, deterministically
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tune.cli", "validate", *[SMOKE] * lines],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


def test_the_command_exits_as_main_does_and_still_runs_atexit_handlers(tmp_path: Path) -> None:
    """The `hpo` entry point (run) leaves the objects of a finished command out of the exit's
    last collection; Ray's and MLflow's atexit handlers must still run, and the status is
    main's."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 0\n")
    script = (
        "import atexit, sys; from tune.cli import run; "
        "atexit.register(lambda: print('atexit ran', flush=True)); "
        f"sys.exit(run(['validate', {str(SMOKE)!r}, {str(bad)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert ": valid: " in done.stdout and done.stdout.endswith("atexit ran\n")
    assert f"{bad}: " in done.stderr


def test_validate_bad_file_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  dropout: 1.5\n  epochs: 0\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{bad}: search.dropout: 1.5 is not allowed (a number in [0, 1))",
        f"{bad}: search.epochs: 0 is not allowed (an integer in [1, 10000])",
    ]


def test_validate_for_a_cluster_skips_this_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CPU laptop validates a GPU sweep meant for a cluster: --for-cluster, --address or
    $RAY_ADDRESS check the file without this machine's GPUs (or data files)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text("search: {epochs: 2}\nresources: {gpu: 1000}\n")
    assert main(["validate", str(gpu)]) == 2
    assert "--for-cluster" in capsys.readouterr().err
    assert main(["validate", "--for-cluster", str(gpu)]) == 0
    assert main(["validate", "--address", "10.0.0.1:6379", str(gpu)]) == 0
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert main(["validate", str(gpu)]) == 0
    assert capsys.readouterr().out.count(": valid: ") == 3


def test_validate_warns_when_optunas_start_up_trials_fill_the_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "tpe.yaml"
    space.write_text("search: {lr: {loguniform: [1.0e-4, 1.0e-2]}}\nsearch_algorithm: optuna\n")
    assert main(["validate", str(space)]) == 0  # valid: a warning is not an error
    captured = capsys.readouterr()
    assert "valid: sweep 'tpe': 10 trials" in captured.out
    assert captured.err.startswith(f"{space}: warning: optuna.startup_trials: its 10 random")


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: {dropout: 2}\n")
    assert main(["validate", str(SEARCH_SPACES / "smoke.yaml"), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "smoke.yaml: valid" in captured.out and "search.dropout" in captured.err


def test_bad_sweep_exits_2_and_leaves_no_trace(tmp_path: Path, hpo_here: Any) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("search:\n  dropout: {uniform: [0.5, 0.1]}\n")
    work = tmp_path / "work"
    work.mkdir()
    result = hpo_here(["sweep", str(bad)], cwd=work)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip()
        == f"{bad}: search.dropout.uniform: low 0.5 >= high 0.1 (low < high; for one value write a constant)"
    )
    assert "Traceback" not in result.stderr
    assert list(work.iterdir()) == []  # no runs/, no mlflow.db


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--num-samples", "0"], "--num-samples"),
        (
            ["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--max-concurrent", "two"],
            "--max-concurrent",
        ),
        (["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--name", "a b"], "--name"),
        (["sweep", "missing.yaml"], "missing.yaml: no such file"),
        (
            ["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--tracking-uri", "mlflow.db"],
            "not an MLflow tracking URI",
        ),
        (
            [
                "sweep",
                str(SEARCH_SPACES / "smoke.yaml"),
                "--tracking-uri",
                "sqlite:///no/such/dir/m.db",
            ],
            "does not exist",
        ),
        (["sweep", SMOKE, "--tracking-uri", "sqlite://"], "in-memory store"),
        (["sweep", SMOKE, "--tracking-uri", "sqlite://mlflow.db"], "names a host, not a file"),
        (["sweep", SMOKE, "--tracking-uri", "sqlite:///"], "names a folder"),
        (["sweep", SMOKE, "--tracking-uri", "sqlite:///."], "names a folder"),
        (["sweep", SMOKE, "--tracking-uri", "sqlite:////proc/m.db"], "/proc is not writable"),
        (["sweep", SMOKE, "--tracking-uri", "http://127.0.0.1:9"], "cannot be reached within 5 s"),
        (["status", "nothing-here"], "no experiment 'nothing-here'"),
        (["report", "nothing-here"], "no experiment 'nothing-here'"),
        (["confirm", "nothing-here"], "no experiment 'nothing-here'"),
        (["confirm", "x", "--top", "0"], "--top: 0 is too small"),
        (["confirm", "x", "--seeds", "two"], "is not an integer"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2(tmp_path: Path, hpo_here: Any, args: list[str], fragment: str) -> None:
    result = hpo_here(args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_existing_experiment_is_not_overwritten(tmp_path: Path, hpo_here: Any) -> None:
    (tmp_path / "runs" / "smoke").mkdir(parents=True)
    result = hpo_here(["sweep", str(SEARCH_SPACES / "smoke.yaml")], cwd=tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr and "--name" in result.stderr


def test_a_relative_sqlite_store_is_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_tracking_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert absolute_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert absolute_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_an_unreadable_record_stops_overwrite_before_anything_is_deleted(
    tmp_path: Path, hpo_here: Any
) -> None:
    """A record that cannot be read would leave its MLflow runs active if the folder went
    anyway; --overwrite refuses it, naming the file, and deletes nothing."""
    folder = tmp_path / "runs" / "smoke"
    folder.mkdir(parents=True)
    (folder / "hpo_sweep.json").write_text('{"spec": ')
    (folder / "keep.txt").write_text("mine")
    result = hpo_here(["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--overwrite"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{folder / 'hpo_sweep.json'}: cannot be read")
    assert (folder / "keep.txt").read_text() == "mine"


def test_storage_defaults_to_hpo_storage(tmp_path: Path, hpo_here: Any) -> None:
    result = hpo_here(["status", "nothing"], cwd=tmp_path, HPO_STORAGE=str(tmp_path / "elsewhere"))
    assert result.returncode == 2
    where = tmp_path / "elsewhere"
    assert (
        f"no experiment 'nothing' (neither a folder nor a name in {where}, which holds none)"
        in (result.stderr)
    )


def test_a_bad_hpo_reuse_actors_exits_2_before_anything_starts(
    tmp_path: Path, hpo_here: Any
) -> None:
    result = hpo_here(["sweep", SMOKE], cwd=tmp_path, HPO_REUSE_ACTORS="no")
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr == "hpo sweep: HPO_REUSE_ACTORS: 'no' is not allowed; use 1 (default) or 0\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_every_storage_help_names_hpo_storage() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    for name, sub in subparsers.items():
        for action in sub._actions:
            if "--storage" in action.option_strings:
                # A submitted sweep has no default: ./runs would be a folder on the head node.
                default = "$HPO_STORAGE)" if name == "submit" else "$HPO_STORAGE or ./runs"
                assert default in (action.help or ""), name


def test_validate_goes_on_after_a_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("search: " + "[" * 3000 + "]" * 3000 + "\n")
    assert main(["validate", str(deep), str(SEARCH_SPACES / "smoke.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "nested more than 32 levels" in captured.err
    assert "smoke.yaml: valid" in captured.out


def test_overwrite_never_deletes_a_folder_hpo_did_not_make(tmp_path: Path, hpo_here: Any) -> None:
    thesis = tmp_path / "runs" / "smoke"
    thesis.mkdir(parents=True)
    (thesis / "thesis.tex").write_text("three years of work")
    result = hpo_here(["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--overwrite"], cwd=tmp_path)
    assert result.returncode == 2
    assert f"{thesis}: exists but holds no hpo experiment" in result.stderr
    assert (thesis / "thesis.tex").read_text() == "three years of work"
    assert not (tmp_path / "runs" / ".trash").exists()


def test_one_writer_per_experiment(tmp_path: Path, run_hpo: Any) -> None:
    """While this process holds the lock of runs/smoke, `hpo sweep`, `resume` and `confirm`
    of it exit 2, naming the holder; `status` needs no lock."""
    import os
    import socket

    from tune.space.spec import load_spec
    from tune.store import records

    folder = tmp_path / "runs" / "smoke"
    records.save(folder, records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), NOWHERE))
    holder = f"experiment smoke is in use by process {os.getpid()} on {socket.gethostname()}"
    with records.lock(folder):
        for args in (
            ["sweep", str(SEARCH_SPACES / "smoke.yaml"), "--overwrite"],
            ["resume", "smoke"],
            ["confirm", "smoke"],
            ["resume", str(folder / "confirm")],
        ):
            if args[1].endswith("confirm"):
                records.save(
                    folder / "confirm",
                    records.new_record(
                        load_spec(SEARCH_SPACES / "smoke.yaml"), NOWHERE, kind="confirm"
                    ),
                )
            result = run_hpo(args, cwd=tmp_path)
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr.strip() == f"hpo {args[0]}: {holder}", args
        assert "in use" not in run_hpo(["status", "smoke"], cwd=tmp_path).stderr
    assert records.exists(folder)


def test_resume_refuses_a_tracking_server_that_is_gone(tmp_path: Path, hpo_here: Any) -> None:
    from tune.space.spec import load_spec
    from tune.store import records

    folder = tmp_path / "runs" / "smoke"
    record = records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), "http://127.0.0.1:9")
    records.save(folder, record)
    result = hpo_here(["resume", "smoke"], cwd=tmp_path)
    assert result.returncode == 2
    assert "hpo resume: the recorded tracking URI http://127.0.0.1:9 cannot be reached" in (
        result.stderr
    )


def test_damaged_experiment_folders_are_one_line_each(tmp_path: Path, hpo_here: Any) -> None:
    """A record with no Ray state, and records that are empty, cut short or not an object:
    exit 2, one line naming the folder or file, no traceback."""
    from tune.space.spec import load_spec
    from tune.store import records

    folder = tmp_path / "runs" / "smoke"
    records.save(folder, records.new_record(load_spec(SEARCH_SPACES / "smoke.yaml"), NOWHERE))
    for command in ("status", "report"):
        result = hpo_here([command, "smoke"], cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"{folder}: holds no trial state saved by Ray")
        assert result.stderr.count("\n") == 1
    path = folder / records.RECORD_FILE
    for text, what in (
        ("", "cannot be read"),
        ('{"spec": {"na', "cannot be read"),
        ("[]", "is not a mapping"),
    ):
        path.write_text(text)
        result = hpo_here(["status", "smoke"], cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(f"{path}: "), result.stderr
        assert what in result.stderr and result.stderr.count("\n") == 1


def test_version_and_help_name_the_overwrite_as_a_move(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("hpo 0.")
    helps = {
        a.dest: a.help
        for p in build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        for a in p._actions
    }
    assert ".trash/" in str(helps["overwrite"]) and "delete an" not in str(helps["overwrite"])


def test_list_names_the_experiments_and_status_of_a_wrong_name_points_there(
    tmp_path: Path, hpo_here: Any
) -> None:
    saved = Path(__file__).parent.parent / "saved" / "interrupted_sweep"
    runs = tmp_path / "runs"
    for name in ("alpha", "beta", ".trash/alpha-old"):
        shutil.copytree(saved, runs / name, symlinks=True)
    (runs / "notes").mkdir()  # not an experiment
    (runs / "gamma").mkdir()
    (runs / "gamma" / "hpo_sweep.json").write_text("{broken")

    listed = hpo_here(["list", "--storage", str(runs)], tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["alpha", "beta", "gamma"]
    assert "4/4 trials" in lines[0] and "best val_accuracy" in lines[0]
    assert "cannot be read" in lines[2] or "hpo_sweep.json" in lines[2], lines[2]

    wrong = hpo_here(["status", "alpah", "--storage", str(runs)], tmp_path)
    assert wrong.returncode == 2
    assert "; there: alpha, beta, gamma (`hpo list`))" in wrong.stderr
    empty = hpo_here(["list", "--storage", str(tmp_path / "none")], tmp_path)
    assert empty.returncode == 0 and "no experiments in" in empty.stdout


def test_the_summary_is_flushed_when_the_run_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read through a pipe, "Finished in" came only at exit, after a confirm run's report:
    a SIGTERM sent on seeing it came too late to stop anything (CI: exit 0, not 143)."""
    import io

    from tests.tune.run.test_summary import result
    from tune.cli.common import finish

    class Pipe(io.StringIO):
        flushed = ""

        def flush(self) -> None:
            self.flushed = self.getvalue()

    pipe = Pipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert finish(result(tmp_path), "val_accuracy", "sqlite:///x.db") == 0
    assert "Finished in" in pipe.flushed


@pytest.mark.parametrize(
    ("argv", "env", "skips"),
    [
        (["sweep", "x.yaml"], "", False),
        (["sweep", "x.yaml", "--no-plan"], "", True),
        (["sweep", "x.yaml"], "1", True),
        (["sweep", "x.yaml"], "0", False),
        (["submit", "x.yaml", "--no-plan"], "", True),  # the job's `hpo sweep` gets --no-plan
        (["submit", "x.yaml"], "1", True),
    ],
)
def test_no_plan_by_flag_or_environment(
    argv: list[str], env: str, skips: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tune.cli.common import no_plan

    monkeypatch.setenv("HPO_NO_PLAN", env)
    assert no_plan(build_parser().parse_args(argv)) is skips
