"""The configurable CNN of the study: conv blocks, then a dense head with dropout.

Each block is Conv2d(3x3, same padding) -> BatchNorm2d (when normalization) -> ReLU ->
MaxPool2d(2), so every block halves the image side: 28 -> 14 -> 7 -> 3 -> 1. That is why a
28x28 input allows at most 4 blocks (`max_conv_layers`).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from models.config import ModelConfig, max_conv_layers


def _side_after(blocks: int, image_size: int) -> int:
    for _ in range(blocks):
        image_size //= 2
    return image_size


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, normalization: bool) -> None:
        super().__init__()
        # A conv followed by BatchNorm needs no bias: BatchNorm's shift replaces it.
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not normalization)
        self.norm: nn.Module = nn.BatchNorm2d(out_channels) if normalization else nn.Identity()
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pool(self.act(self.norm(self.conv(x))))
        return out


class CNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not 1 <= cfg.conv_layers <= max_conv_layers(cfg.image_size):
            raise ValueError(
                f"conv_layers={cfg.conv_layers}: a {cfg.image_size}x{cfg.image_size} input "
                f"allows 1..{max_conv_layers(cfg.image_size)} conv+pool blocks"
            )
        if not 0.0 <= cfg.dropout < 1.0:
            raise ValueError(f"dropout={cfg.dropout}: must be in [0, 1)")
        self.cfg = cfg
        channels = [cfg.in_channels] + [cfg.filters] * cfg.conv_layers
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, cfg.normalization)
            for c_in, c_out in itertools.pairwise(channels)
        )
        flat = cfg.filters * _side_after(cfg.conv_layers, cfg.image_size) ** 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, cfg.units, bias=not cfg.normalization),
            nn.BatchNorm1d(cfg.units) if cfg.normalization else nn.Identity(),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.units, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.head(x)
        return out


def build(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    conv_layers: int = ModelConfig.conv_layers,
    filters: int = ModelConfig.filters,
    units: int = ModelConfig.units,
    dropout: float = ModelConfig.dropout,
    normalization: bool = ModelConfig.normalization,
) -> CNN:
    """The built-in model factory (models.factory.BUILTIN_MODEL): square images [C, H, H]."""
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(
            f"the built-in CNN takes square images [C, H, H], not rows of {list(input_shape)}"
        )
    cfg = ModelConfig(
        conv_layers=conv_layers,
        filters=filters,
        units=units,
        dropout=dropout,
        normalization=normalization,
        in_channels=input_shape[0],
        image_size=input_shape[1],
        num_classes=num_classes,
    )
    return CNN(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def summary(model: nn.Module) -> str:
    """One line for a tag: the blocks and the parameter count (any model: its class)."""
    if not isinstance(model, CNN):
        return f"{type(model).__name__}; {count_parameters(model):,} parameters"
    c = model.cfg
    norm = "+BN" if c.normalization else ""
    return (
        f"CNN {c.conv_layers}x[conv3x3({c.filters}){norm}-relu-pool2] -> "
        f"dense({c.units}){norm}-relu-dropout({c.dropout:g}) -> {c.num_classes}; "
        f"{count_parameters(model):,} parameters"
    )
