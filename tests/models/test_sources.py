"""A user's own data: an .npz file and a folder of images read into the four arrays, and the
contract every source is checked against; normalized per channel on the training part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import data as data_module
from models.config import DataConfig
from models.data import datasets_from, read_raw
from models.sources import Arrays, DataError, from_folder, from_npz, problems


def arrays(n: int = 40, features: int = 5) -> Arrays:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(n, features)).astype(np.float32)
    y = np.arange(n) % 3
    return Arrays(x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :])


def test_an_npz_file(tmp_path: Path) -> None:
    a = arrays()
    np.savez(
        tmp_path / "d.npz", x_train=a.train_x, y_train=a.train_y, x_test=a.test_x, y_test=a.test_y
    )
    raw = read_raw(DataConfig(npz=str(tmp_path / "d.npz")), test=True)
    assert raw.input_shape == (5,) and raw.num_classes == 3 and not raw.is_images
    assert raw.name == f"npz:{tmp_path / 'd.npz'}"


def test_an_npz_file_without_a_key(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"^lacks y_train, x_test, y_test"):
        from_npz(str(tmp_path / "d.npz"))


def test_a_folder_of_images_resized_to_the_first(tmp_path: Path) -> None:
    for part, count in (("train", 3), ("test", 1)):
        for name, shade in (("cat", 10), ("dog", 200)):
            folder = tmp_path / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                size = (8, 8) if i == 0 else (12, 10)
                Image.new("L", size, shade).save(folder / f"{i}.png")
    a = from_folder(str(tmp_path))
    assert a.train_x.shape == (6, 1, 8, 8) and a.train_x.dtype == np.uint8
    assert a.test_x.shape == (2, 1, 8, 8)
    assert list(a.train_y) == [0, 0, 0, 1, 1, 1] and a.classes == ("cat", "dog")
    assert problems(a) == []


def test_a_folder_without_classes(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="holds no class folders"):
        from_folder(str(tmp_path))


def test_rows_are_standardized_with_the_training_parts_statistics(tmp_path: Path) -> None:
    a = arrays(400)
    np.savez(
        tmp_path / "d.npz", x_train=a.train_x, y_train=a.train_y, x_test=a.test_x, y_test=a.test_y
    )
    cfg = DataConfig(npz=str(tmp_path / "d.npz"), validation_fraction=0.25)
    raw = read_raw(cfg, test=True)
    data = datasets_from(raw, cfg)
    train = data.train.images
    assert torch.allclose(train.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(train.std(0), torch.ones(5), atol=1e-5)
    test = data_module.test_split_from(raw, cfg)
    assert abs(float(test.images.mean())) < 0.3  # the same transform, other rows


def test_the_built_in_normalization_is_todays(idx_folder: Path) -> None:
    """Fashion-MNIST's published constants, and the same floats as before the user's data."""
    cfg = DataConfig(root=str(idx_folder))
    raw = read_raw(cfg)
    x = (
        torch.from_numpy(raw.train_images[:, 0].copy())
        .float()
        .div_(255.0)
        .sub_(0.2860)
        .div_(0.3530)
    )
    data = datasets_from(raw, cfg)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_val = round(len(x) * cfg.validation_fraction)
    assert torch.equal(data.train.images[:, 0], x[order[n_val:]])
