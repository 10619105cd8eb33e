"""What a Ray cluster of separate machines needs from the driver: this project's code shipped to
every node, every node able to see the storage, and one node big enough for a trial.

Nothing may reach another node except through Ray (docs/architecture.md, "On a cluster"): the
code, the user's model and data modules too, goes in the job's `runtime_env` (py_modules), the data through the object store
(tune/run/sweep.py adapter), results through storage that every node mounts or an s3:// bucket.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

import models
import tune
from models.factory import digest, module_file, parse_ref
from tune.core.errors import InputError, Problem
from tune.space.spec import SweepSpec, user_code
from tune.store import storage

# What a package folder may hold that a worker does not need.
EXCLUDES = ["__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache"]
# Ray sets this for a job's driver: its runtime_env (our code) is the job's, already shipped.
JOB_CONFIG_VARIABLE = "RAY_JOB_CONFIG_JSON_ENV_VAR"
PROBE_PREFIX = ".hpo-probe-"
# What a job's driver prints once every check passed and trials start (`hpo submit` waits
# for it; tune/cluster/jobs.py).
STARTED = "hpo: every check passed; trials start"


def packages() -> list[str]:
    """The folders of this project's packages: all a worker needs besides the pinned install."""
    return [str(Path(str(p.__file__)).parent) for p in (tune, models)]


def runtime_env(modules: Sequence[str] = ()) -> dict[str, Any]:
    """The runtime_env that ships this project's code, and the user's `modules`
    (user_modules), to every worker of a cluster."""
    return {"py_modules": [*packages(), *modules], "excludes": EXCLUDES}


def user_modules(spec: SweepSpec) -> list[str]:
    """The user's modules a sweep imports (its model factory's, its data loader's), as
    py_modules entries that Ray puts on every worker's path, where `module:function` is then
    found: a package's folder (of a dotted name, its top package), or for a module of one file
    a folder of that name holding it as __init__.py. (Ray takes a .py file itself in ray.init,
    but its job client uploads it as a folder and fails: Ray 2.60, py_modules.py.)"""
    found: list[str] = []
    for _, factory, code in user_code(spec):
        _add_entry(found, Path(code.search_dir), factory)
    return found


def modules_here(spec: SweepSpec, allow_changed: bool) -> list[str]:
    """For `hpo resume` submitted as a Ray Job: the recorded sweep's modules as they are on
    this machine, in the current folder or on the Python path (the sweep's own copies were on
    the head node, for that job only), as user_modules gives them. Each must be the file the
    sweep ran, by its SHA-256, unless `allow_changed`: checked here, since the head may
    still hold the old copy, which its own check would then pass."""
    found: list[str] = []
    problems: list[Problem] = []
    for key, factory, code in user_code(spec):
        ref = parse_ref(factory)
        path = module_file(ref, os.getcwd())
        if path is None:
            problems.append(
                Problem(
                    key,
                    f"the sweep's module {ref.module!r} is neither in this folder nor on "
                    "PYTHONPATH",
                    "run `hpo resume` from the folder that holds it, as `hpo submit` was",
                )
            )
        elif digest(path) != code.digest and not allow_changed:
            problems.append(
                Problem(
                    key,
                    f"{path} changed since the sweep started",
                    "put it back as it was, or hpo resume --allow-changed-code to go on with it",
                )
            )
        else:
            _add_entry(found, _search_root(path, ref.module), factory)
    if problems:
        raise InputError(spec.source, problems)
    return found


def _search_root(path: Path, module: str) -> Path:
    """The folder on the path that `module` (a dotted name) was found in, from its file."""
    levels = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return path.parents[levels]


def _add_entry(found: list[str], search_dir: Path, factory: str) -> None:
    top = search_dir / factory.split(":")[0].split(".")[0]
    entry = str(top if top.is_dir() else _as_package(top.with_suffix(".py")))
    if entry not in found:
        found.append(entry)


def _as_package(module: Path) -> Path:
    """A folder named after `module` with its code as __init__.py, in a folder of this
    process's own that is deleted when it exits."""
    global _staging
    if _staging is None:
        _staging = Path(tempfile.mkdtemp(prefix="hpo-modules-"))
        atexit.register(shutil.rmtree, _staging, True)
    package = _staging / module.stem
    package.mkdir(exist_ok=True)
    shutil.copyfile(module, package / "__init__.py")
    return package


_staging: Path | None = None


def in_job() -> bool:
    """Whether this process is a Ray Job's driver (submitted with `hpo submit`)."""
    return JOB_CONFIG_VARIABLE in os.environ


def alive_nodes() -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def check_fits(cpu: float, gpu: float, source: str) -> None:
    """Refuse, before any trial, a trial that no single node can hold: Ray would wait forever
    for resources that never come (a trial runs on one node, so the cluster's total is not
    what counts)."""
    nodes = alive_nodes()
    problems = []
    for key, ray_key, need in (("cpu", "CPU", cpu), ("gpu", "GPU", gpu)):
        most = max((float(n["Resources"].get(ray_key, 0.0)) for n in nodes), default=0.0)
        if need > most:
            problems.append(
                Problem(
                    f"resources.{key}",
                    f"{need:g} per trial, but the largest of Ray's {len(nodes)} node(s) "
                    f"has {most:g} {ray_key}s",
                    f"at most {most:g}",
                )
            )
    if problems:
        raise InputError(source, problems)


def check_storage(where: str) -> None:
    """Every alive node sees the storage the driver writes to: the driver leaves a probe file
    there and a small task on each node reads it back. A node with its own folder of the same
    name does not pass: it would hold that node's trials where nobody else looks. Ray checks
    this only at a trial's first checkpoint, after minutes of training. Exit 2 names the nodes
    that cannot see it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    if len(nodes) < 2:
        return  # the driver's own node: it just wrote there
    probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    made = _write_probe(where, probe)
    try:
        tasks = {
            n["NodeManagerAddress"]: _sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(where, probe)
            for n in nodes
        }
        blind = {ip: why for ip, task in tasks.items() if (why := ray.get(task)) is not None}
    finally:
        _remove_probe(where, probe, made)
    if blind:
        which = "; ".join(f"{ip}: {why}" for ip, why in sorted(blind.items()))
        raise InputError(
            "--storage",
            [
                Problem(
                    "",
                    f"{where} is not the same storage on every node ({which})",
                    "a folder every node mounts at the same path (NFS), or an S3-compatible "
                    "URI such as s3://bucket/prefix?endpoint_override=http://host:9000",
                )
            ],
        )


def _write_probe(where: str, probe: str) -> bool:
    """Write the probe file; True if the storage folder had to be made for it."""
    fs, root = _filesystem(where)
    from pyarrow import fs as pafs

    made = bool(fs.get_file_info(root).type == pafs.FileType.NotFound)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{probe}") as f:
        f.write(probe.encode())
    return made


def _remove_probe(where: str, probe: str, made: bool) -> None:
    fs, root = _filesystem(where)
    fs.delete_file(f"{root}/{probe}")
    if made:
        fs.delete_dir(root)  # it was made for the probe: leave nothing behind


def _filesystem(where: str) -> tuple[Any, str]:
    """pyarrow's filesystem and path for a folder or a bucket URI."""
    from pyarrow import fs as pafs

    if not storage.is_remote(where):
        return pafs.LocalFileSystem(), str(Path(where).absolute())
    return storage.filesystem(where)


@ray.remote(num_cpus=0)
def _sees(where: str, probe: str) -> str | None:
    """On one node: None if the probe is there, else why not, in a few words."""
    try:
        fs, root = _filesystem(where)
        with fs.open_input_stream(f"{root}/{probe}") as f:
            return None if f.read() == probe.encode() else "another file under the same name"
    except FileNotFoundError:
        return "a different folder, or none, under that path"
    except Exception as e:  # an unreachable endpoint, missing credentials, ...
        return f"{type(e).__name__}: {e}"[:160]
