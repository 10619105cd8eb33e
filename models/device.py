"""Device choice in one place: CUDA when the process was given a GPU, else the CPU."""

from __future__ import annotations

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' takes the first visible GPU if there is one. Ray sets CUDA_VISIBLE_DEVICES to the
    GPUs a trial owns, so a trial without a GPU sees none and lands on the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def limit_memory(device: torch.device, share: float) -> None:
    """Hold this process to `share` of its GPU's memory: Ray gives a trial a fraction of a GPU
    (resources.gpu: 0.25 packs four trials on one) but does not enforce it, so one trial's
    allocator could starve the others. No-op on a CPU or for a whole GPU."""
    if device.type == "cuda" and 0 < share < 1:
        torch.cuda.set_per_process_memory_fraction(share, device)


def describe(device: torch.device) -> str:
    """A human-readable name for tags: 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
