"""Padding media to a tokenizer's grid: shared by the image and video tokenizers and the
k-means baseline, so every method sees the same pixels in its edge tokens."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two dims (H, W) of `[..., H, W]` on the bottom/right up to multiples of
    `multiple`.

    Reflection keeps edge statistics natural (zero padding would add a dark border the codes
    must spend bits on); replication covers inputs too small to reflect.
    """
    ph, pw = (-x.shape[-2]) % multiple, (-x.shape[-1]) % multiple
    if not ph and not pw:
        return x
    *lead, h, w = x.shape
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = x.reshape(-1, 1, h, w) if lead else x[None, None]  # F.pad's reflect wants [N,C,H,W]
    return F.pad(flat, (0, pw, 0, ph), mode=mode).reshape(*lead, h + ph, w + pw)
