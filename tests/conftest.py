from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Datasets, Split

# The suite's sweeps start without `hpo plan`'s forecast (seconds each); the tests of the plan
# recorded at a sweep's start clear this (tests/tune/forecast/).
os.environ.setdefault("HPO_NO_PLAN", "1")

REPO = Path(__file__).resolve().parents[1]
SEARCH_SPACES = REPO / "search_spaces"
# A tracking URI of the right form whose store is on no machine: records that tests write by
# hand, for commands that read the folder only (hpo report does not log: nothing is there).
NOWHERE = "sqlite:////nowhere/mlflow.db"
# The marks of the tests that run first (pytest_collection_modifyitems).
SLOW = ("integration", "slow")


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own, which should name the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first, then the quick ones, each part in pytest-randomly's order (it
    shuffles before this hook; the sort is stable): with pytest workers taking tests as they
    free up, the many quick tests fill the last minutes, instead of one worker finishing a long
    test while the others have nothing left."""
    items.sort(key=lambda item: not any(item.get_closest_marker(m) for m in SLOW))
    if getattr(config.option, "loadgroup", False):  # a pytest-xdist worker, --dist loadgroup
        name_groups(items)


def name_groups(items: list[pytest.Item]) -> None:
    """`--dist loadgroup` sends the tests of one `xdist_group` to one worker, which it finds by
    the "@GROUP" that pytest-xdist appends to their node ids. pytest 9.2 builds a node id from a
    structured id that pytest-xdist 3.8 does not change, so no group was ever kept together
    (pytest-dev/pytest-xdist#1386): each worker started its own loopback cluster, its own S3
    server and its own shared report sweep. Until pytest-xdist does it, the suffix is added
    here, the same way; a no-op once it is there (tests/test_workers.py checks it)."""
    from _pytest.nodeid import NodeId

    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = sorted(
            {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        )
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]


def separable(n: int, seed: int = 0) -> Split:
    """A tiny 2-class problem any CNN learns in a few epochs: class 1 lights up the left half
    of the image, class 0 the right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randn(n, 1, 28, 28, generator=g) * 0.3
    images[labels == 1, :, :, :14] += 1.0
    images[labels == 0, :, :, 14:] += 1.0
    return Split(images, labels)


@pytest.fixture
def tiny_data() -> Datasets:
    return Datasets(train=separable(512, seed=1), validation=separable(128, seed=2))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file, gzipped, as the original MNIST files are."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx_folder(folder: Path) -> Path:
    """The four IDX files of a tiny fake dataset (100 train, 20 test images) in `folder`."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (100, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (100,)))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, (20,)))
    return folder


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    return make_idx_folder(tmp_path / "idx")


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny fake dataset that stands in for the real files wherever a unit test's spec
    looks for data: unit tests run on a machine with no data folder at all."""
    return make_idx_folder(tmp_path_factory.mktemp("fake") / "data")


@pytest.fixture(autouse=True)
def no_real_data_in_unit_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, fake_data_dir: Path
) -> None:
    """Unit tests never see the real dataset: the system's data folders and the download
    cache become the fake one, and $HPO_DATA_DIR is unset. Integration tests use the real files."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setattr(
        "models.dataset_files.SYSTEM_DIRS",
        {"fashion_mnist": (fake_data_dir,), "mnist": (fake_data_dir,)},
    )
    monkeypatch.setattr(
        "models.dataset_files.DEFAULT_DOWNLOAD_ROOT", fake_data_dir.parent / "no-cache"
    )
    monkeypatch.delenv("HPO_DATA_DIR", raising=False)
