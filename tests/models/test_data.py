from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.data import DataConfig, load_datasets, load_split, read_idx, split_train_validation
from models.dataset_files import DataNotFoundError, find_data_dir
from tests.conftest import separable


def test_read_idx_round_trip(idx_folder: Path) -> None:
    images = read_idx(idx_folder / "train-images-idx3-ubyte.gz")
    labels = read_idx(idx_folder / "train-labels-idx1-ubyte.gz")
    assert images.shape == (100, 28, 28) and labels.shape == (100,)


def test_load_split_normalizes_into_float_tensors(idx_folder: Path) -> None:
    split = load_split(DataConfig(root=str(idx_folder)), "test")
    assert split.images.shape == (20, 1, 28, 28) and split.images.dtype == torch.float32
    assert split.labels.dtype == torch.int64 and len(split) == 20


def test_validation_split_is_disjoint_and_seeded() -> None:
    data = separable(200)
    # Tag every image with its index so the split can be checked for overlap.
    data.images[:, 0, 0, 0] = torch.arange(200, dtype=torch.float32)
    a = split_train_validation(data, 0.1, seed=7)
    b = split_train_validation(data, 0.1, seed=7)
    c = split_train_validation(data, 0.1, seed=8)
    train_ids = set(a.train.images[:, 0, 0, 0].tolist())
    val_ids = set(a.validation.images[:, 0, 0, 0].tolist())
    assert len(val_ids) == 20 and len(train_ids) == 180
    assert not train_ids & val_ids
    assert train_ids | val_ids == set(range(200))
    assert torch.equal(a.validation.images, b.validation.images)
    assert not torch.equal(a.validation.images, c.validation.images)


def test_load_datasets_from_a_named_root(idx_folder: Path) -> None:
    data = load_datasets(DataConfig(root=str(idx_folder), validation_fraction=0.2))
    assert len(data.train) == 80 and len(data.validation) == 20


def test_the_users_data_dir_is_searched_first(idx_folder: Path) -> None:
    assert find_data_dir("fashion_mnist", data_dir=str(idx_folder)) == idx_folder
    # Trials get it through their DataConfig, never from their own environment.
    data = load_datasets(DataConfig(data_dir=str(idx_folder), validation_fraction=0.2))
    assert len(data.validation) == 20


def test_the_environment_is_not_read(idx_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.dataset_files.SYSTEM_DIRS", {"mnist": ()})
    monkeypatch.setenv("HPO_DATA_DIR", str(idx_folder))
    with pytest.raises(DataNotFoundError):
        find_data_dir("mnist")


def test_missing_data_names_hpo_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.dataset_files.SYSTEM_DIRS", {"mnist": (tmp_path / "none",)})
    monkeypatch.setattr("models.dataset_files.DEFAULT_DOWNLOAD_ROOT", tmp_path / "cache")
    monkeypatch.delenv("HPO_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError, match="HPO_DATA_DIR"):
        find_data_dir("mnist", str(tmp_path))


def test_an_explicit_root_is_the_only_place_looked_at(tmp_path: Path) -> None:
    # Even where Debian's copy exists, a named folder without the files is an error.
    with pytest.raises(DataNotFoundError, match=str(tmp_path)):
        find_data_dir("fashion_mnist", str(tmp_path))


def test_a_relative_root_is_made_absolute(
    idx_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(idx_folder.parent)
    found = find_data_dir("fashion_mnist", idx_folder.name)
    assert found.is_absolute() and found == idx_folder


def test_empty_split_is_refused() -> None:
    with pytest.raises(ValueError, match="empty split"):
        split_train_validation(separable(10), 0.01, seed=0)
