"""A small CNN of your own, for images of any size and channel count (see fashion_folder.yaml).

Its keyword-only parameters are the hyperparameters hpo may tune: `channels`, `kernel` (one of
two options, a Literal) and `dropout`.
"""

from __future__ import annotations

from typing import Literal

from torch import nn


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    channels: int = 16,
    kernel: Literal[3, 5] = 3,
    dropout: float = 0.2,
) -> nn.Module:
    """Two conv blocks (conv, ReLU, 2x2 max-pool), global average pooling, dropout, a linear
    layer: it takes any image [C, H, W] of at least 4x4 pixels."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, channels, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, kernel, padding=kernel // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * channels, num_classes),
    )
