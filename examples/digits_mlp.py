"""Your own model and data, tuned by hpo: a small MLP on scikit-learn's 8x8 digits.

hpo reads two functions from this file (see digits.yaml):

- `build(input_shape, num_classes, *, ...)`: the model factory. Its keyword-only parameters are
  the hyperparameters a search space may set, with their types and defaults.
- `load()`: the dataset loader: (train_x, train_y, test_x, test_y) as numpy arrays.

The digits ship with scikit-learn (1,797 images of 8x8 pixels): nothing is downloaded.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from torch import nn


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    hidden: int = 64,
    depth: int = 2,
    dropout: float = 0.0,
    activation: Literal["relu", "tanh"] = "relu",
) -> nn.Module:
    """`depth` hidden layers of `hidden` units, each followed by the activation and dropout."""
    act = nn.ReLU if activation == "relu" else nn.Tanh
    layers: list[nn.Module] = [nn.Flatten()]
    width = int(np.prod(input_shape))
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), act(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits as rows of 64 features (pixel values 0-16), the last 297 held out as the test
    set. hpo splits a validation part off the training rows and standardizes every feature with
    the training part's mean and std."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target.astype(np.int64)
    return x[:1500], y[:1500], x[1500:], y[1500:]
