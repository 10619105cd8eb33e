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

from models.dataset_files import FILES, STATS, find_data_dir


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
