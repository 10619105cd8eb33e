"""Datasets as tensors in memory: find the original IDX files, parse them, split them.

Fashion-MNIST and MNIST are small enough (60k + 10k images of 28x28) to live in memory as one
float tensor, which is far faster than a DataLoader over PIL images. The test set is loaded only
when asked for; a sweep never touches it.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Where each dataset's four IDX .gz files may already be, in the order they are tried after an
# explicit root and the user's data folder ($HPO_DATA_DIR, read by the CLI). Debian's `dataset-fashion-mnist` installs the first one.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
# torchvision's downloader keeps the raw files under <root>/<ClassName>/raw.
TORCHVISION_CLASS = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}
DEFAULT_DOWNLOAD_ROOT = Path.home() / ".cache" / "hpo" / "data"

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# Per-dataset pixel mean and std over the training images (after scaling to [0, 1]).
STATS = {"fashion_mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}
DATASETS = tuple(STATS)


class DataNotFoundError(FileNotFoundError):
    """The dataset's IDX files are in none of the places we look."""


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion_mnist"  # one of DATASETS
    root: str | None = None  # folder holding the four IDX .gz files; None = search
    data_dir: str | None = None  # with no root: a folder searched before the system's folders
    validation_fraction: float = 0.1  # share of the training set held out, split with `seed`
    seed: int = 0  # fixes the train/validation split, so every trial sees the same split


@dataclass(frozen=True)
class Split:
    """One split as tensors: images float32 [N, 1, 28, 28] normalized, labels int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Datasets:
    train: Split
    validation: Split


def candidate_dirs(name: str, root: str | None = None, data_dir: str | None = None) -> list[Path]:
    """Every folder that may hold `name`'s files, most specific first. An explicit root is the
    only place looked at: a user who names a folder means that folder. `data_dir` is the user's
    own data folder ($HPO_DATA_DIR, read once by the CLI, never here: a trial on another node
    must look where the driver was told to, not where its own environment says)."""

    def under(base: str) -> list[Path]:
        # A user may point at the files themselves or at a folder of datasets.
        p = Path(base).expanduser().absolute()
        return [p, p / name.replace("_", "-"), p / TORCHVISION_CLASS[name] / "raw"]

    if root:
        return under(root)
    dirs = under(data_dir) if data_dir else []
    dirs += list(SYSTEM_DIRS[name])
    dirs.append(DEFAULT_DOWNLOAD_ROOT / TORCHVISION_CLASS[name] / "raw")
    return dirs


def find_data_dir(name: str, root: str | None = None, data_dir: str | None = None) -> Path:
    """The first folder holding all four files, or DataNotFoundError saying where we looked."""
    if name not in STATS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    tried = candidate_dirs(name, root, data_dir)
    for d in tried:
        if all((d / f).is_file() for f in FILES.values()):
            return d
    looked = ", ".join(str(d) for d in tried)
    fetch = (
        "run `make data` (Debian's dataset-fashion-mnist, else torchvision's download)"
        if name == "fashion_mnist"
        else f"run `.venv/bin/python scripts/ensure_data.py {name}` (torchvision's download)"
    )
    raise DataNotFoundError(
        f"{name} IDX files ({FILES['train_images']} and three more) not found; looked in "
        f"{looked}. To fix: {fetch}, or set HPO_DATA_DIR to a folder holding them"
    )


def download(name: str, dest: Path = DEFAULT_DOWNLOAD_ROOT) -> Path:
    """Fetch the original files with torchvision's downloader (needs the internet)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_CLASS[name])
    cls(root=str(dest), train=True, download=True)
    cls(root=str(dest), train=False, download=True)
    return dest / TORCHVISION_CLASS[name] / "raw"


def read_idx(path: Path) -> np.ndarray:
    """Parse one gzipped IDX file (the format of the original MNIST files) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {shape} values, found {data.size} (truncated file?)")
    return data.reshape(shape)


def _to_split(images: np.ndarray, labels: np.ndarray, name: str) -> Split:
    mean, std = STATS[name]
    x = torch.from_numpy(images.copy()).float().div_(255.0).sub_(mean).div_(std)
    return Split(x.unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


@dataclass(frozen=True)
class RawData:
    """A dataset as its IDX files hold it: uint8 images [N, 28, 28] and labels, training set
    and (if asked for) test set. The smallest form to hand to another process or machine: 55 MB
    for Fashion-MNIST's training set, a quarter of the float tensors made from it."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None


def read_raw(cfg: DataConfig, test: bool = False) -> RawData:
    """The dataset's files, parsed; the test set only when asked for (a sweep never is)."""
    d = find_data_dir(cfg.name, cfg.root, cfg.data_dir)

    def read(key: str) -> np.ndarray:
        return read_idx(d / FILES[key])

    if not test:
        return RawData(cfg.name, read("train_images"), read("train_labels"))
    return RawData(
        cfg.name,
        read("train_images"),
        read("train_labels"),
        read("test_images"),
        read("test_labels"),
    )


def load_split(cfg: DataConfig, which: str) -> Split:
    """The whole 'train' or 'test' split of a dataset."""
    d = find_data_dir(cfg.name, cfg.root, cfg.data_dir)
    return _to_split(
        read_idx(d / FILES[f"{which}_images"]), read_idx(d / FILES[f"{which}_labels"]), cfg.name
    )


def split_train_validation(data: Split, fraction: float, seed: int) -> Datasets:
    """A seeded, disjoint split: the same seed always holds out the same images."""
    n_val = round(len(data) * fraction)
    if not 0 < n_val < len(data):
        raise ValueError(f"validation_fraction {fraction} leaves an empty split of {len(data)}")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return Datasets(
        train=Split(data.images[train], data.labels[train]),
        validation=Split(data.images[val], data.labels[val]),
    )


def load_datasets(cfg: DataConfig) -> Datasets:
    """Train and validation splits of the training set; the test set stays on disk."""
    return datasets_from(read_raw(cfg), cfg)


def datasets_from(raw: RawData, cfg: DataConfig) -> Datasets:
    """Train and validation splits of `raw`'s training set, split as `cfg` says."""
    full = _to_split(raw.train_images, raw.train_labels, raw.name)
    return split_train_validation(full, cfg.validation_fraction, cfg.seed)


def test_split_from(raw: RawData) -> Split:
    if raw.test_images is None or raw.test_labels is None:
        raise ValueError(f"{raw.name}: the test set was not read (read_raw(..., test=True))")
    return _to_split(raw.test_images, raw.test_labels, raw.name)
