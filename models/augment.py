"""Light augmentation on a batch already in memory: a random crop of the image padded with
zeros (a shift of up to `pad` pixels each way) and a horizontal flip with probability 1/2.

Done on the tensors, per batch, with the trainer's own generator, so a resumed trial draws the
same shifts and flips it would have drawn without the interruption.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PAD = 2  # pixels: a 28x28 image moves by up to 2 each way (Fashion-MNIST items are centred)


def crop_and_flip(x: torch.Tensor, generator: torch.Generator, pad: int = PAD) -> torch.Tensor:
    """x: [N, C, H, W]. Each image is shifted by its own random offset and flipped left-right
    with probability 1/2; the shape stays [N, C, H, W]."""
    n, c, h, w = x.shape
    # Random numbers come from the CPU generator, then move to x's device (one small copy).
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=x.device)  # [N, H]
    cols = dx[:, None] + torch.arange(w, device=x.device)  # [N, W]
    # A flipped image reads its columns right to left.
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    index_n = torch.arange(n, device=x.device)[:, None, None, None]
    index_c = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]
    return out.contiguous(memory_format=torch.channels_last) if c > 1 else out.contiguous()
