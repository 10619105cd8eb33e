"""The typed configs of the model, the data and the trainer, and what an epoch reports: plain
dataclasses, no torch, so that checking a search space (tune/space/hyperparams.py) does not
load a deep-learning library."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
# How the learning rate moves over a trial's steps (all of its `epochs`, also when ASHA stops it
# earlier). constant: `lr` throughout. onecycle: up to `lr` over the first 30% of the steps,
# then annealed far below it. cosine: from `lr` down to 0 along a half cosine.
LR_SCHEDULES = ("constant", "onecycle", "cosine")
# fp32: plain float32. bf16: forward passes under bfloat16 autocast, which tensor cores want;
# meant for GPUs (it runs on a CPU, seldom faster).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ModelConfig:
    conv_layers: int = 2  # conv blocks; each halves the image side
    filters: int = 32  # output channels of every conv block
    units: int = 128  # width of the hidden dense layer
    dropout: float = 0.0  # dropout probability before the output layer, in [0, 1)
    normalization: bool = False  # BatchNorm2d after each conv, BatchNorm1d in the head
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10


def max_conv_layers(image_size: int = 28) -> int:
    """How many 2x2 poolings a square image survives with at least one pixel left."""
    n = 0
    while image_size // 2 >= 1:
        image_size //= 2
        n += 1
    return n


@dataclass(frozen=True)
class DataConfig:
    name: str = "fashion_mnist"  # one of DATASETS, unless one of the three below is set
    root: str | None = None  # built-in: the folder of the IDX .gz files; a loader: load(root)
    data_dir: str | None = None  # with no root: a folder searched before the system's folders
    validation_fraction: float = 0.1  # share of the training set held out, split with `seed`
    seed: int = 0  # fixes the train/validation split, so every trial sees the same split
    factory: str | None = None  # "module:function": the user's loader (models/sources.py)
    npz: str | None = None  # a file with x_train, y_train, x_test, y_test
    folder: str | None = None  # train/CLASS/*.png and test/CLASS/*.png
    search_dir: str | None = None  # where the loader's module is looked for first

    @property
    def label(self) -> str:
        """The source in one word, for tags and messages: 'fashion_mnist', 'npz:PATH', ..."""
        for kind in ("factory", "npz", "folder"):
            if getattr(self, kind) is not None:
                return f"{kind}:{getattr(self, kind)}"
        return self.name


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3  # learning rate, > 0
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw), >= 0
    batch_size: int = 64  # training batch size
    optimizer: str = "adam"  # one of OPTIMIZERS; sgd uses momentum 0.9
    lr_schedule: str = "constant"  # one of LR_SCHEDULES; `lr` is onecycle's peak
    augment: bool = False  # random crop (padding 2) and horizontal flip of training batches
    epochs: int = 10  # epochs to run when nobody stops the trial earlier
    train_steps: int | None = None  # batches per epoch; None = a full pass over the train split
    eval_steps: int | None = None  # validation batches per epoch; None = the whole split
    eval_batch_size: int = 256  # validation images per eval step (the unit of eval_steps)
    seed: int = 0  # seeds weights, dropout and batch order
    threads: int | None = None  # torch intra-op threads (the CPUs the trial owns); None = as is
    device: str = "auto"  # "auto" = the GPU when one is visible, else the CPU
    precision: str = "fp32"  # one of PRECISIONS
    # The model's weights, hence its activations, in NHWC: oneDNN's fast conv path on a CPU and
    # tensor cores' on a GPU. Measured here 1.5x faster training and 2-3x faster evaluation at
    # equal results (bench/trainer_throughput.py); False only to measure against it.
    channels_last: bool = True


@dataclass(frozen=True)
class EpochMetrics:
    """What one epoch reports, plus its own compute time. tune/core/metrics.py takes the names
    from these fields."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    loss_gap: float  # val_loss - train_loss: large and growing means overfitting
    samples_per_s: float
    train_seconds: float
    eval_seconds: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
