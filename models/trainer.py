"""The shared trainer: plain PyTorch, one epoch at a time, knows nothing of the tuner.

Every trial of every sweep runs this code, and so can a script or a notebook:

    raw = read_raw(DataConfig())  # Fashion-MNIST; or DataConfig(npz=...), folder=, factory=
    model = functools.partial(build, raw.input_shape, raw.num_classes)  # models.cnn.build
    trainer = Trainer(model, TrainConfig(epochs=3), datasets_from(raw, DataConfig()))
    for metrics in trainer.fit():
        print(metrics)

Read it top to bottom: config, set-up (seed, threads, device, the model from the function it is
given, optimizer, learning-rate schedule), one training epoch (with optional augmentation), one evaluation, the epoch loop, and
a complete checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.augment import crop_and_flip
from models.config import LR_SCHEDULES, OPTIMIZERS, PRECISIONS, EpochMetrics, TrainConfig
from models.data import Datasets, Split
from models.device import pick_device

# Validation images that go through the model at once: a speed choice only (the metrics are sums
# over the same images). With channels_last, 128 measured fastest on this CPU of 64, 128, 256
# and 512: from 256 up a chunk's activations outgrow the cache (bench/trainer_throughput.py).
EVAL_CHUNK = 128


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def make_schedule(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule over a trial's `total_steps` batches; None for constant."""
    if name == "constant":
        return None
    if name == "onecycle":
        lr = optimizer.param_groups[0]["lr"]
        # One step more than the batches: the schedule steps after every batch, the last too,
        # and OneCycleLR's curve is only defined up to its total.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps + 1
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ValueError(f"lr_schedule {name!r} is not one of {', '.join(LR_SCHEDULES)}")


def _channels_last(split: Split) -> Split:
    """The split with its images in NHWC memory (the same tensor when they are already)."""
    return Split(split.images.contiguous(memory_format=torch.channels_last), split.labels)


class Trainer:
    def __init__(self, model: Callable[[], nn.Module], cfg: TrainConfig, data: Datasets) -> None:
        self.cfg = cfg
        if cfg.threads is not None:
            # One trial owns `threads` CPUs; more threads than that fight the other trials.
            torch.set_num_threads(max(1, cfg.threads))
        torch.manual_seed(cfg.seed)
        if cfg.precision not in PRECISIONS:
            raise ValueError(f"precision {cfg.precision!r} is not one of {', '.join(PRECISIONS)}")
        self.device = pick_device(cfg.device)
        self.bf16 = cfg.precision == "bf16"
        # The whole dataset moves once (a no-op when it is there already: tune/run/trainable.py
        # keeps one copy per worker); on a GPU every batch is then a slice, never a copy.
        self.train_data = data.train.to(self.device)
        self.val_data = data.validation.to(self.device)
        images = self.train_data.images.ndim == 4
        if cfg.augment and not images:
            raise ValueError("augment crops and flips images; this data is rows of features")
        # Built here, after the seed: the same seed gives the same initial weights.
        self.model = model().to(self.device)
        if cfg.channels_last and images:
            # Images of one channel are channels_last in memory already; others are made so,
            # once. Every activation after the first conv follows the weights' layout.
            self.model = self.model.to(memory_format=torch.channels_last)
            self.train_data = _channels_last(self.train_data)
            self.val_data = _channels_last(self.val_data)
        self.optimizer = make_optimizer(
            cfg.optimizer, self.model.parameters(), cfg.lr, cfg.weight_decay
        )
        self.schedule = make_schedule(
            cfg.lr_schedule, self.optimizer, cfg.epochs * self.steps_per_epoch()
        )
        # Batch order (and augmentation) have their own generator, so that resuming from a
        # checkpoint replays them.
        self.batch_order = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.last_metrics: EpochMetrics | None = None  # of the epoch that ended last
        # Every epoch's metrics so far, saved in the checkpoint: a caller that lost what it
        # recorded of some epochs (a killed process) can report them again from it.
        self.history: list[EpochMetrics] = []

    def autocast(self) -> torch.autocast:
        """bfloat16 forward passes when precision is bf16; float32 otherwise (disabled)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    # -- one epoch -------------------------------------------------------------------------

    def steps_per_epoch(self) -> int:
        n = len(self.train_data)
        steps = math.ceil(n / self.cfg.batch_size)
        if n % self.cfg.batch_size == 1:
            steps -= 1  # a last batch of one sample: BatchNorm cannot train on it, so skip it
        if self.cfg.train_steps is not None:
            steps = min(steps, self.cfg.train_steps)
        return steps

    def train_epoch(self, steps: int | None = None) -> tuple[float, int, float]:
        """One pass (or `train_steps` batches) of SGD; returns mean loss, samples, seconds.
        `steps`: only that many of the epoch's batches (a cost estimate times a few)."""
        self.model.train()
        start = time.perf_counter()
        order = torch.randperm(len(self.train_data), generator=self.batch_order).to(self.device)
        total_loss, seen = torch.zeros((), device=self.device), 0
        count = self.steps_per_epoch() if steps is None else min(steps, self.steps_per_epoch())
        for step in range(count):
            idx = order[step * self.cfg.batch_size : (step + 1) * self.cfg.batch_size]
            x, y = self.train_data.images[idx], self.train_data.labels[idx]
            if self.cfg.augment:
                x = crop_and_flip(x, self.batch_order)
            with self.autocast():
                loss = F.cross_entropy(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.schedule is not None:
                self.schedule.step()
            # Summing on the device avoids a GPU->CPU sync on every step.
            total_loss += loss.detach() * len(y)
            seen += len(y)
        mean_loss = total_loss.item() / max(seen, 1)
        return mean_loss, seen, time.perf_counter() - start

    @torch.no_grad()
    def evaluate(self, split: Split, max_batches: int | None = None) -> tuple[float, float, float]:
        """Mean loss and accuracy over a split (or its first `max_batches` of
        `eval_batch_size` images); plus seconds."""
        self.model.eval()
        start = time.perf_counter()
        n = len(split)
        if max_batches is not None:
            n = min(n, max_batches * self.cfg.eval_batch_size)
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for b in range(0, n, EVAL_CHUNK):
            end = min(b + EVAL_CHUNK, n)
            x, y = split.images[b:end], split.labels[b:end]
            with self.autocast():
                logits = self.model(x)
            total_loss += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        return total_loss.item() / n, correct.item() / n, time.perf_counter() - start

    def test(self, split: Split) -> tuple[float, float]:
        """Loss and accuracy on a split the trainer never saw (the held-out test set)."""
        loss, accuracy, _ = self.evaluate(split.to(self.device))
        return loss, accuracy

    def run_epoch(self) -> EpochMetrics:
        train_loss, samples, train_s = self.train_epoch()
        val_loss, val_acc, eval_s = self.evaluate(self.val_data, self.cfg.eval_steps)
        self.epoch += 1
        self.last_metrics = EpochMetrics(
            epoch=self.epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_acc,
            loss_gap=val_loss - train_loss,
            samples_per_s=samples / train_s if train_s > 0 else 0.0,
            train_seconds=train_s,
            eval_seconds=eval_s,
        )
        self.history.append(self.last_metrics)
        return self.last_metrics

    def fit(self) -> Iterator[EpochMetrics]:
        """Epochs from where the trainer stands (0, or a restored checkpoint) to cfg.epochs.
        A generator, so the caller decides after each epoch whether to go on."""
        while self.epoch < self.cfg.epochs:
            yield self.run_epoch()

    # -- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this epoch ended."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "epoch": self.epoch,
            "last_metrics": self.last_metrics.as_dict() if self.last_metrics else None,
            "history": [m.as_dict() for m in self.history],
            "batch_order": self.batch_order.get_state(),
            "torch_rng": torch.get_rng_state(),
            # Dropout on a GPU draws from the CUDA generator: replayed too after a restore.
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "train_config": asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None and state.get("lr_schedule"):
            self.schedule.load_state_dict(state["lr_schedule"])
        self.epoch = int(state["epoch"])
        last = state.get("last_metrics")
        self.last_metrics = EpochMetrics(**last) if last else None
        # A checkpoint saved before the history was kept has only its last epoch's metrics.
        saved = state.get("history") or ([last] if last else [])
        self.history = [EpochMetrics(**m) for m in saved]
        self.batch_order.set_state(state["batch_order"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save(self, path: str) -> None:
        torch.save(self.state_dict(), path)

    def load(self, path: str) -> None:
        # weights_only: a checkpoint is data, never code to run. Loaded to the CPU because the
        # RNG state must stay there; load_state_dict moves the rest to the model's device.
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
