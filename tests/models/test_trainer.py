from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models.augment import crop_and_flip
from models.cnn import CNN
from models.config import OPTIMIZERS, EpochMetrics, ModelConfig, TrainConfig
from models.data import Datasets, Split
from models.trainer import EVAL_CHUNK, Trainer


def cnn(cfg: ModelConfig) -> Callable[[], CNN]:
    """What the trainer takes: a function that builds the model (after it seeded torch)."""
    return functools.partial(CNN, cfg)


SMALL = cnn(ModelConfig(conv_layers=2, filters=8, units=16))


def test_learns_a_separable_problem_in_a_few_epochs(tiny_data: Datasets) -> None:
    trainer = Trainer(SMALL, TrainConfig(epochs=3, batch_size=32, lr=3e-3, threads=1), tiny_data)
    history = list(trainer.fit())
    assert [m.epoch for m in history] == [1, 2, 3]
    assert history[-1].val_accuracy > 0.95
    assert history[-1].train_loss < history[0].train_loss


def test_reports_the_design_metrics(tiny_data: Datasets) -> None:
    (m,) = Trainer(SMALL, TrainConfig(epochs=1, threads=1), tiny_data).fit()
    assert isinstance(m, EpochMetrics)
    d = m.as_dict()
    for key in ("epoch", "train_loss", "val_loss", "val_accuracy", "loss_gap", "samples_per_s"):
        assert key in d
    assert d["loss_gap"] == pytest.approx(d["val_loss"] - d["train_loss"])
    assert d["samples_per_s"] > 0 and d["train_seconds"] > 0 and d["eval_seconds"] > 0


def test_train_and_eval_steps_limit_the_work(tiny_data: Datasets) -> None:
    trainer = Trainer(
        SMALL,
        TrainConfig(epochs=1, batch_size=16, train_steps=3, eval_steps=1, eval_batch_size=10),
        tiny_data,
    )
    _, seen, _ = trainer.train_epoch()
    assert seen == 48
    loss, acc, _ = trainer.evaluate(trainer.val_data, max_batches=1)
    assert 0.0 <= acc <= 1.0 and loss > 0


def test_channels_last_is_the_default_and_changes_no_result(tiny_data: Datasets) -> None:
    """The layout is a speed choice. The same weights give the same outputs in either layout
    up to float rounding. Trained from the same seed, that rounding (sums taken in another
    order) drifts over the steps: after 2 epochs of this tiny set the validation loss differs
    by up to 4e-3 relative (measured on an AMD EPYC; 1e-4 on an Intel Xeon), a tenth or less of
    what a second seed changes. The accuracy is not compared: on 128 images at 55-85%, that
    drift flips a handful of near-tied predictions."""
    norm = cnn(ModelConfig(conv_layers=2, filters=8, units=16, normalization=True, dropout=0.2))
    images = tiny_data.validation.images[:64]

    def train(layout: bool, seed: int = 0) -> tuple[torch.Tensor, list[EpochMetrics]]:
        cfg = TrainConfig(epochs=2, batch_size=32, threads=1, channels_last=layout, seed=seed)
        trainer = Trainer(norm, cfg, tiny_data)
        # The second conv: the first has one input channel, which is both layouts at once.
        conv = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)][1]
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == layout
        with torch.no_grad():
            before = trainer.model.eval()(images)
        return before, list(trainer.fit())

    (out_fast, fast), (out_plain, plain) = train(True), train(False)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    for f, p in zip(fast, plain, strict=True):
        assert f.train_loss == pytest.approx(p.train_loss, rel=1e-3)
        assert f.val_loss == pytest.approx(p.val_loss, rel=1e-2)
    _, other_seed = train(True, seed=1)
    layout_drift = abs(fast[-1].val_loss - plain[-1].val_loss)
    assert layout_drift < abs(fast[-1].val_loss - other_seed[-1].val_loss) / 10


def test_evaluation_in_chunks_equals_one_pass(tiny_data: Datasets) -> None:
    """Chunks of EVAL_CHUNK images are a speed choice: the metrics are those of one big batch,
    and eval_steps still counts batches of eval_batch_size."""
    trainer = Trainer(SMALL, TrainConfig(epochs=1, threads=1, eval_batch_size=100), tiny_data)
    split = Split(tiny_data.train.images[:300], tiny_data.train.labels[:300])
    loss, acc, _ = trainer.evaluate(split)
    with torch.no_grad():
        logits = trainer.model.eval()(split.images)
    assert loss == pytest.approx(F.cross_entropy(logits, split.labels).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == split.labels).float().mean().item())
    loss2, _, _ = trainer.evaluate(split, max_batches=2)  # 200 images: two chunks, one partial
    with torch.no_grad():
        first = F.cross_entropy(trainer.model(split.images[:200]), split.labels[:200])
    assert EVAL_CHUNK < 200 and loss2 == pytest.approx(first.item(), rel=1e-5)


def test_a_last_batch_of_one_sample_is_skipped(tiny_data: Datasets) -> None:
    model = cnn(ModelConfig(conv_layers=2, filters=8, units=16, normalization=True))
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=511), tiny_data)  # 512 = 511 + 1
    _, seen, _ = trainer.train_epoch()  # BatchNorm would raise on the batch of one
    assert seen == 511


def test_threads_follow_the_trial_cpus(tiny_data: Datasets) -> None:
    before = torch.get_num_threads()
    try:
        Trainer(SMALL, TrainConfig(threads=1), tiny_data)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_runs(tiny_data: Datasets, optimizer: str) -> None:
    (m,) = Trainer(
        SMALL, TrainConfig(epochs=1, optimizer=optimizer, train_steps=2), tiny_data
    ).fit()
    assert m.epoch == 1


def test_same_seed_same_run(tiny_data: Datasets) -> None:
    cfg = TrainConfig(epochs=2, train_steps=4, seed=3, threads=1)
    a = [m.val_loss for m in Trainer(SMALL, cfg, tiny_data).fit()]
    b = [m.val_loss for m in Trainer(SMALL, cfg, tiny_data).fit()]
    assert a == b


@pytest.mark.parametrize(
    ("schedule", "augment"), [("constant", False), ("onecycle", True), ("cosine", False)]
)
def test_checkpoint_resumes_exactly(
    tiny_data: Datasets, tmp_path: Path, schedule: str, augment: bool
) -> None:
    """Stopping after epoch 1 and loading the checkpoint gives the same epoch 2 as going on:
    the learning-rate schedule and the augmentation's draws go on where they were."""
    model = cnn(ModelConfig(conv_layers=2, filters=8, units=16, dropout=0.5, normalization=True))
    cfg = TrainConfig(
        epochs=2, train_steps=4, seed=5, threads=1, lr_schedule=schedule, augment=augment
    )
    straight = list(Trainer(model, cfg, tiny_data).fit())

    first = Trainer(model, cfg, tiny_data)
    next(first.fit())
    path = str(tmp_path / "ckpt.pt")
    first.save(path)
    resumed = Trainer(model, cfg, tiny_data)
    resumed.load(path)
    assert resumed.epoch == 1
    assert resumed.history == first.history == [first.last_metrics]  # every epoch's, saved
    (second,) = resumed.fit()
    assert second.epoch == 2
    assert [m.epoch for m in resumed.history] == [1, 2]
    assert second.val_loss == pytest.approx(straight[1].val_loss, rel=1e-5)
    assert second.train_loss == pytest.approx(straight[1].train_loss, rel=1e-5)


def test_learning_rate_schedules(tiny_data: Datasets) -> None:
    """onecycle starts at lr/25, peaks at lr near 30% of the trial's steps, ends far below;
    cosine falls from lr to 0; constant stays. Over all `epochs`, also if a trial stops early."""

    def lrs(schedule: str) -> list[float]:
        cfg = TrainConfig(epochs=10, train_steps=1, lr=1e-2, threads=1, lr_schedule=schedule)
        trainer = Trainer(SMALL, cfg, tiny_data)
        seen = [trainer.optimizer.param_groups[0]["lr"]]
        for _ in trainer.fit():
            seen.append(trainer.optimizer.param_groups[0]["lr"])
        return seen

    one = lrs("onecycle")
    assert one[0] == pytest.approx(1e-2 / 25)
    assert max(one) == pytest.approx(1e-2, rel=0.05) and one.index(max(one)) in (2, 3, 4)
    assert one[-1] < 1e-5  # annealed far below where it started
    cos = lrs("cosine")
    assert cos[0] == pytest.approx(1e-2) and cos[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in itertools.pairwise(cos))
    assert set(lrs("constant")) == {1e-2}
    with pytest.raises(ValueError, match="lr_schedule 'step' is not one of constant, onecycle"):
        Trainer(SMALL, TrainConfig(lr_schedule="step"), tiny_data)


def test_augmentation_shifts_and_flips_each_image_on_its_own() -> None:
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    out = crop_and_flip(x, torch.Generator().manual_seed(0), pad=0)
    for image, original in zip(out, x, strict=True):  # no padding: only flips
        assert torch.equal(image, original) or torch.equal(image, original.flip(2))
    shifted = crop_and_flip(x, torch.Generator().manual_seed(1), pad=2)
    assert shifted.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for image, source in zip(shifted, padded, strict=True):  # each a window of its padded image
        windows = [
            source[:, r : r + 6, c : c + 6].flip(2) if flip else source[:, r : r + 6, c : c + 6]
            for r in range(5)
            for c in range(5)
            for flip in (False, True)
        ]
        assert any(torch.equal(image, w) for w in windows)
    draws = {
        tuple(crop_and_flip(x, torch.Generator().manual_seed(s)).flatten().tolist())
        for s in range(8)
    }
    assert len(draws) > 1  # the draws differ between seeds...
    again = crop_and_flip(x, torch.Generator().manual_seed(3))
    assert torch.equal(again, crop_and_flip(x, torch.Generator().manual_seed(3)))  # ...not within


def test_bf16_precision_autocasts(tiny_data: Datasets) -> None:
    """The GPU switch, on the CPU here (autocast runs there too): forward passes in bfloat16,
    metrics as float32 numbers; fp32 is the default."""
    assert TrainConfig().precision == "fp32"
    trainer = Trainer(SMALL, TrainConfig(epochs=1, train_steps=3, precision="bf16"), tiny_data)
    with trainer.autocast():
        out = trainer.model(tiny_data.train.images[:4])
    assert out.dtype == torch.bfloat16
    (m,) = trainer.fit()
    assert all(isinstance(v, float) and v == v for v in (m.train_loss, m.val_loss))
    with pytest.raises(ValueError, match="precision 'fp16' is not one of fp32, bf16"):
        Trainer(SMALL, TrainConfig(precision="fp16"), tiny_data)


def test_a_gpu_share_limits_memory_only_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: the CUDA call is recorded instead of made (bench/gpu_check.sh runs it)."""
    from models.device import limit_memory

    calls: list[tuple[float, torch.device]] = []
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction", lambda f, d: calls.append((f, d))
    )
    gpu = torch.device("cuda", 0)
    limit_memory(torch.device("cpu"), 0.25)  # a CPU: nothing to limit
    limit_memory(gpu, 1.0)  # a whole GPU: nothing to share
    limit_memory(gpu, 0.0)  # no GPU asked for
    limit_memory(gpu, 0.25)
    assert calls == [(0.25, gpu)]
