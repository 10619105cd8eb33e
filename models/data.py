"""Datasets as tensors in memory: find the original IDX files, parse them, split them.

Fashion-MNIST and MNIST are small enough (60k + 10k images of 28x28) to live in memory as one
float tensor, which is far faster than a DataLoader over PIL images; so is a user's own data
(models/sources.py: a loader, an .npz file, a folder of images), which hpo tunes on the same
terms. The test set is loaded only when asked for; a sweep never touches it.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models import sources
from models.config import DataConfig as DataConfig  # defined there (no torch); used with these
from models.dataset_files import CLASSES, FILES, STATS, find_data_dir


@dataclass(frozen=True)
class Split:
    """One split as tensors: x float32 [N, C, H, W] or [N, features], normalized; labels
    int64 [N]."""

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


@dataclass(frozen=True)
class RawData:
    """A dataset as it was read: x [N, C, H, W] or [N, features], uint8 or float, and integer
    labels, training set and (if asked for) test set. The smallest form to hand to another
    process or machine: 55 MB for Fashion-MNIST's training set as uint8, a quarter of the float
    tensors made from it."""

    name: str  # DataConfig.label
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    # Per-channel mean and std of x scaled to [0, 1] (uint8 / 255): the built-in datasets'
    # published constants; None = computed on the training part (`normalization`).
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    classes: tuple[str, ...] = ()  # class names where the source has them

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.train_labels.max()) + 1

    @property
    def is_images(self) -> bool:
        return self.train_images.ndim == 4


def read_raw(cfg: DataConfig, test: bool = False) -> RawData:
    """The dataset, read; its test set only when asked for (a sweep never is). A user's source
    that breaks the contract raises sources.DataError."""
    if cfg.factory is None and cfg.npz is None and cfg.folder is None:
        return _read_builtin(cfg, test)
    if cfg.factory is not None:
        arrays = sources.from_loader(cfg.factory, cfg.search_dir, cfg.root)
    elif cfg.npz is not None:
        arrays = sources.from_npz(cfg.npz)
    else:
        arrays = sources.from_folder(str(cfg.folder))
    if found := sources.problems(arrays):
        raise sources.DataError(found[0])
    return RawData(
        cfg.label,
        arrays.train_x,
        arrays.train_y.astype(np.int64),
        arrays.test_x if test else None,
        arrays.test_y.astype(np.int64) if test else None,
        classes=arrays.classes,
    )


def _read_builtin(cfg: DataConfig, test: bool) -> RawData:
    d = find_data_dir(cfg.name, cfg.root, cfg.data_dir)

    def read(key: str) -> np.ndarray:
        # Images [N, 28, 28] get their one channel: [N, 1, 28, 28] (a view, no copy).
        data = read_idx(d / FILES[key])
        return data[:, None] if key.endswith("images") else data

    mean, std = STATS[cfg.name]
    return RawData(
        cfg.name,
        read("train_images"),
        read("train_labels"),
        read("test_images") if test else None,
        read("test_labels") if test else None,
        stats=((mean,), (std,)),
        classes=CLASSES.get(cfg.name, ()),
    )


def _floats(x: np.ndarray) -> torch.Tensor:
    """float32, uint8 scaled to [0, 1]; float data as it is."""
    # A copy where x is read-only (IDX files are parsed from a buffer): torch wants to own it.
    t = torch.from_numpy(np.ascontiguousarray(x) if x.flags.writeable else x.copy())
    return t.float().div_(255.0) if x.dtype == np.uint8 else t.float()


def normalization(raw: RawData, train_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (per-feature for rows) mean and std, shaped to broadcast over x: the
    dataset's constants, or those of `train_x`, the training part. A channel that never varies
    keeps std 1 (nothing to scale)."""
    shape = (1, -1, 1, 1) if train_x.ndim == 4 else (1, -1)
    if raw.stats is not None:
        mean, std = (torch.tensor(v, dtype=torch.float32) for v in raw.stats)
    else:
        dims = (0, 2, 3) if train_x.ndim == 4 else (0,)
        mean, std = train_x.mean(dim=dims), train_x.std(dim=dims)
        std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.reshape(shape), std.reshape(shape)


def _normalized(split: Split, mean: torch.Tensor, std: torch.Tensor) -> Split:
    return Split(split.images.sub_(mean).div_(std), split.labels)


def load_split(cfg: DataConfig, which: str) -> Split:
    """The whole 'train' or 'test' split of a dataset, normalized as the trials see it."""
    raw = read_raw(cfg, test=which == "test")
    if which == "test":
        return test_split_from(raw, cfg)
    x = _floats(raw.train_images)
    mean, std = normalization(raw, x)
    return _normalized(Split(x, torch.from_numpy(raw.train_labels.astype(np.int64))), mean, std)


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


def _split(raw: RawData, cfg: DataConfig) -> Datasets:
    """Train and validation parts of `raw`'s training set as floats, not yet normalized."""
    full = Split(_floats(raw.train_images), torch.from_numpy(raw.train_labels.astype(np.int64)))
    return split_train_validation(full, cfg.validation_fraction, cfg.seed)


def datasets_from(raw: RawData, cfg: DataConfig) -> Datasets:
    """Train and validation splits of `raw`'s training set, split as `cfg` says, normalized
    with the training part's statistics (or the dataset's constants)."""
    parts = _split(raw, cfg)
    mean, std = normalization(raw, parts.train.images)
    return Datasets(_normalized(parts.train, mean, std), _normalized(parts.validation, mean, std))


def test_split_from(raw: RawData, cfg: DataConfig) -> Split:
    """The test set, normalized as the trials' training part was."""
    if raw.test_images is None or raw.test_labels is None:
        raise ValueError(f"{raw.name}: the test set was not read (read_raw(..., test=True))")
    test = Split(_floats(raw.test_images), torch.from_numpy(raw.test_labels.astype(np.int64)))
    return _normalized(test, *trials_normalization(raw, cfg))


def trials_normalization(raw: RawData, cfg: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std the trials' data was normalized with: the training part's (split as
    `cfg` says), or the dataset's constants."""
    if raw.stats is not None:  # x gives only the shape to broadcast to
        return normalization(raw, torch.empty((1, *raw.input_shape)))
    return normalization(raw, _split(raw, cfg).train.images)
