"""The names of what a trial reports after each epoch (docs/architecture.md, "Metrics").

The trainer's EpochMetrics is the source; a confirm trial adds its test-set numbers at its
last epoch. MLflow, TensorBoard, the report and the sweep's metric all take the names from here.
"""

from __future__ import annotations

from dataclasses import fields

from models.config import EpochMetrics

EPOCH = "epoch"  # the step every metric is logged at, from 1
EPOCH_METRICS = tuple(f.name for f in fields(EpochMetrics) if f.name != EPOCH)
TEST_METRICS = ("test_loss", "test_accuracy")  # `hpo confirm` only, once, after the last epoch
REPORTED = (*EPOCH_METRICS, *TEST_METRICS)
# The metrics a sweep may optimize, each with the only direction that makes sense for it.
MODES = {"val_accuracy": "max", "val_loss": "min", "train_loss": "min", "loss_gap": "min"}

# Where Ray writes them: a line a report in the trial's folder (with `checkpoint_dir_name` and
# the trial's own `checkpoint_sha256`). A line is 1-2 KB (Ray adds the config); hpo reads files
# of at most RESULT_LIMIT bytes, tens of thousands of epochs.
RESULT_FILE = "result.json"
RESULT_LIMIT = 64_000_000
