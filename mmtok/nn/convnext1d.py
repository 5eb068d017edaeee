"""Causal 1-D ConvNeXt blocks (Vocos / WavTokenizer backbone) running at the code frame rate.

A block is: depthwise conv over time (left-padded: frame `j` sees frames `j-k+1..j`) ->
LayerNorm over channels (per frame, never over time) -> pointwise MLP -> layer scale ->
residual. Per-frame normalisation and left padding keep each output frame a function of a
bounded stretch of past frames (`history`), which is what makes chunked coding exact
(see `audio/base.py`).

Layout: `[B,D,t]` features, one column per frame.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CausalConvNeXtBlock(nn.Module):
    """`[B,D,t] -> [B,D,t]`; output frame `j` depends on input frames `j-history..j`."""

    def __init__(self, dim: int, intermediate: int, kernel: int = 7, layer_scale: float = 0.1):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate)
        self.pw2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))
        self.history = kernel - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(F.pad(x, (self.history, 0))).transpose(1, 2)     # [B,t,D]
        h = self.gamma * self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + h.transpose(1, 2)


class CausalConvNeXt(nn.Module):
    """`depth` blocks and a final per-frame LayerNorm: `[B,D,t] -> [B,D,t]`.

    `history` = past frames an output frame depends on (sum over blocks).
    """

    def __init__(self, dim: int, intermediate: int, depth: int, kernel: int = 7):
        super().__init__()
        # Layer scale 1/depth as in Vocos: the stack starts close to the identity.
        self.blocks = nn.ModuleList([CausalConvNeXtBlock(dim, intermediate, kernel, 1 / max(depth, 1)) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.history = sum(b.history for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x.transpose(1, 2)).transpose(1, 2)
