"""A trained model behind its normalization scores on raw inputs exactly what the trainer
measured on its normalized test set, and keeps doing so through torch.export."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from models import data
from models.cnn import build
from models.config import DataConfig, TrainConfig
from models.data import RawData, datasets_from, trials_normalization
from models.export import Normalized, exported, save_exported, trained
from models.trainer import Trainer


def raw_images(n_train: int = 400, n_test: int = 300) -> RawData:
    """uint8 images of 3 channels, 8x8, whose class is which channel is brightest."""
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 150, (n, 3, 8, 8))
        x[np.arange(n), y] += 100
        return x.astype(np.uint8), y.astype(np.int64)

    (tx, ty), (sx, sy) = part(n_train), part(n_test)
    return RawData("t", tx, ty, sx, sy)


@pytest.mark.parametrize("normalization", [False, True])
def test_the_module_scores_on_raw_inputs_what_the_trainer_measured(
    tmp_path: Path, normalization: bool
) -> None:
    raw = raw_images()
    cfg = DataConfig(npz="unused.npz", validation_fraction=0.2, seed=3)
    net = functools.partial(build, raw.input_shape, raw.num_classes, conv_layers=1, filters=4,
                            units=8, normalization=normalization)  # fmt: skip
    trainer = Trainer(net, TrainConfig(epochs=2, threads=1), datasets_from(raw, cfg))
    list(trainer.fit())
    _, measured = trainer.test(data.test_split_from(raw, cfg))
    trainer.save(str(tmp_path / "trainer.pt"))

    module = trained(net, tmp_path / "trainer.pt", *trials_normalization(raw, cfg))
    assert isinstance(module, Normalized) and not module.training
    assert raw.test_images is not None and raw.test_labels is not None
    images = torch.from_numpy(raw.test_images).float() / 255
    labels = torch.from_numpy(raw.test_labels)
    with torch.no_grad():
        accuracy = (module(images).argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(measured, abs=1e-6)

    save_exported(module, raw.input_shape, tmp_path / "model.pt2")
    loaded = torch.export.load(str(tmp_path / "model.pt2")).module()
    for batch in (1, 7, len(images)):  # any batch size
        with torch.no_grad():
            assert torch.equal(loaded(images[:batch]), module(images[:batch]))


def test_export_keeps_the_batch_free_for_rows_of_features() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(5, 3))
    module = Normalized(net, torch.zeros(1, 5), torch.ones(1, 5)).eval()
    program = exported(module, (5,)).module()
    x = torch.rand(11, 5)
    with torch.no_grad():
        assert torch.equal(program(x), module(x))
