"""The adapter's own logic that runs without Ray: tensors made once per worker from the data
the driver read, the one test-set evaluation of a confirm trial. (Its reports and checkpoints
run in the integration tests.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from models.cnn import CNN
from models.config import ModelConfig, TrainConfig
from models.data import DataConfig, Datasets, read_raw
from models.trainer import Trainer
from tune.run import trial
from tune.run.trainable import _test
from tune.run.trial import TrialSettings, datasets, held_out_test_set


def settings(root: Path, **changes: object) -> TrialSettings:
    data = DataConfig(root=str(root), validation_fraction=0.2)
    return replace(TrialSettings(data, 2, 1, seed=0, threads=1, device="cpu"), **changes)


def test_data_is_made_once_per_worker_and_one_set_at_a_time(idx_folder: Path) -> None:
    cfg = DataConfig(root=str(idx_folder), validation_fraction=0.2)
    raw = read_raw(cfg)
    assert raw.test_images is None  # a sweep's driver never reads the test set
    cpu = torch.device("cpu")
    first = datasets(cfg, raw, cpu)
    assert datasets(cfg, raw, cpu) is first and len(first.validation) == 20
    other = datasets(replace(cfg, validation_fraction=0.5), raw, cpu)
    assert len(other.validation) == 50 and list(trial._DATA) == [
        (replace(cfg, validation_fraction=0.5), "cpu")
    ]


def test_only_a_confirm_trial_tests_and_only_after_its_last_epoch(
    idx_folder: Path, tiny_data: Datasets
) -> None:
    trainer = Trainer(
        lambda: CNN(ModelConfig(filters=4, units=8)), TrainConfig(epochs=2, threads=1), tiny_data
    )
    sweep = settings(idx_folder)
    assert _test(trainer, sweep, read_raw(sweep.data)) == {}  # a sweep's trial never tests
    confirm = settings(idx_folder, test_at_end=True)
    raw = read_raw(confirm.data, test=True)
    assert _test(trainer, confirm, raw) == {}  # not yet at its last epoch
    trainer.epoch = 2
    result = _test(trainer, confirm, raw)
    assert set(result) == {"test_loss", "test_accuracy"} and 0 <= result["test_accuracy"] <= 1
    assert len(held_out_test_set(confirm.data, raw)) == 20  # the fake set's 20 test images
