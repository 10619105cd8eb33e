"""A trained model as one module that takes raw inputs: the dataset's normalization first, then
the trained network, in eval mode; and that module through torch.export, so that it loads
without this project's code (`torch.export.load(path).module()`).

Plain PyTorch, like the trainer: tune/ finds the trial, reads the data's statistics and hands
the pieces in (docs/architecture.md, "The winning model").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


class Normalized(nn.Module):
    """The trained network behind the normalization the trainer applied to its data: float
    inputs scaled to [0, 1] (uint8 / 255) in, logits out. The arithmetic is the trainer's own
    ((x - mean) / std in float32), so the module scores exactly what the trainer measured."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net((x - self.mean) / self.std)
        return out


def trained(
    build: Callable[[], nn.Module], checkpoint: Path, mean: torch.Tensor, std: torch.Tensor
) -> Normalized:
    """The network `build` makes, with the weights of a trainer's checkpoint file (read with
    weights_only: a checkpoint is data, never code), behind its normalization, in eval mode."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = build()
    net.load_state_dict(state["model"])
    # The trainer may have kept the weights channels_last; the exported module takes plain
    # contiguous tensors, as a user has them.
    net = net.to(memory_format=torch.contiguous_format)
    return Normalized(net, mean, std).eval()


def example_input(input_shape: tuple[int, ...], batch: int = 2) -> torch.Tensor:
    """A batch of inputs in [0, 1] for tracing. Two, not one: torch.export fixes a dimension
    of size 1 to a constant, and the batch must stay free."""
    return torch.rand((batch, *input_shape), generator=torch.Generator().manual_seed(0))


def exported(module: nn.Module, input_shape: tuple[int, ...]) -> torch.export.ExportedProgram:
    """`module` through torch.export, with any batch size."""
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        return torch.export.export(
            module.eval(), (example_input(input_shape),), dynamic_shapes=({0: batch},)
        )


def save_exported(module: nn.Module, input_shape: tuple[int, ...], path: Path) -> None:
    torch.export.save(exported(module, input_shape), str(path))
