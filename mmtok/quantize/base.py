"""Spatial quantizers over vector-quantize-pytorch, behind one interface.

Every quantizer maps a feature map `z: [B,D,h,w]` to `(z_q: [B,D,h,w], ids: [B,h,w] int64,
aux_loss: scalar)` and back from ids with `embed(ids) -> [B,D,h,w]`. Which one is chosen is a
config field (`QuantizerConfig.kind`), so a recipe can switch between:

- "fsq": finite scalar quantization (`mmtok.quantize.fsq`).
- "vq": `VectorQuantize` with EMA updates and an exact nearest-code search (`mmtok.quantize.vq`).
- "lfq": lookup-free quantization (`mmtok.quantize.lfq`).

`Quantizer` here holds what the kinds share (the `[B,D,h,w]` <-> `[B,N,D]` reshaping,
`code_vectors`, `usage_counts`); each kind's module only wraps its vector-quantize-pytorch
module, kept in the attribute `impl` (checkpoint keys are `...quantizer.impl.*`).
`mmtok.quantize.build_quantizer` picks the class from `config.kind`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

QUANTIZER_KINDS = ("fsq", "vq", "lfq")
MAX_CODEBOOK_SIZE = 2**24


@dataclass(frozen=True)
class QuantizerConfig:
    """Quantizer choice and its knobs (only the fields of the chosen kind matter)."""

    kind: str = "fsq"
    fsq_levels: tuple[int, ...] = (7, 5, 5, 5, 5)
    codebook_size: int = 4096          # vq / lfq
    codebook_dim: int = 8              # vq: low-dim codes, projected in/out
    cosine: bool = True                # vq: l2-normalised codes
    ema_decay: float = 0.99            # vq
    kmeans_init: bool = True           # vq
    dead_code_threshold: float = 2.0   # vq: restart codes used fewer times than this per batch
    commitment_weight: float = 0.25    # vq / lfq
    entropy_weight: float = 0.1        # lfq

    def __post_init__(self) -> None:
        if self.kind not in QUANTIZER_KINDS:
            raise ValueError(f"quantizer kind {self.kind!r} is not one of {QUANTIZER_KINDS}")
        if self.kind == "lfq" and not math.log2(self.codebook_size).is_integer():
            raise ValueError("lfq needs a power-of-two codebook_size")
        if not 2 <= self.size <= MAX_CODEBOOK_SIZE:  # fsq / lfq tabulate every code: 2**30 codes would be GBs
            raise ValueError(f"the codebook has {self.size:,} codes; mmtok supports 2..{MAX_CODEBOOK_SIZE:,}")

    @property
    def size(self) -> int:
        return math.prod(self.fsq_levels) if self.kind == "fsq" else self.codebook_size


class Quantizer(nn.Module):
    """`forward(z [B,D,h,w]) -> (z_q [B,D,h,w], ids [B,h,w] long, aux_loss scalar)`.

    Base of the kinds: a subclass sets `self.impl` (its vector-quantize-pytorch module, which
    works on channel-last sequences `[B,N,D]`, N = h*w) and implements `_forward_seq` and
    `_embed_seq` on those sequences; the base turns feature maps into sequences and back.
    """

    impl: nn.Module

    def __init__(self, config: QuantizerConfig):
        super().__init__()
        self.config = config
        self.codebook_size = config.size

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = z.shape
        zq, ids, aux = self._forward_seq(rearrange(z, "b d h w -> b (h w) d"))
        zq = rearrange(zq, "b (h w) d -> b d h w", h=h, w=w)
        # vector-quantize-pytorch may return one loss per head / term: the trainer wants a scalar.
        return zq, ids.reshape(b, h, w).long(), aux.sum() if aux.numel() > 1 else aux.reshape(())

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """`z [B,D,h,w]` -> ids `[B,h,w]` int64 (eval-mode codes, whatever the module's mode)."""
        b, _, h, w = z.shape
        return self._encode_seq(rearrange(z, "b d h w -> b (h w) d")).reshape(b, h, w).long()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids: [B,h,w]` integer codes -> `[B,D,h,w]` quantized features."""
        b, h, w = ids.shape
        zq = self._embed_seq(ids.reshape(b, h * w))
        return rearrange(zq, "b (h w) d -> b d h w", h=h, w=w)

    def code_vectors(self) -> torch.Tensor:
        """`[codebook_size, D]`: the feature vector each code stands for."""
        return self.embed(torch.arange(self.codebook_size, device=_device_of(self))[None, None])[0, :, 0].T

    def usage_counts(self, ids: torch.Tensor) -> torch.Tensor:
        """Histogram of `ids` over the codebook, `[codebook_size]` int64."""
        return torch.bincount(ids.reshape(-1), minlength=self.codebook_size)

    # -- per kind, on channel-last sequences ----------------------------------------------
    def _forward_seq(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`seq [B,N,D]` -> `(z_q [B,N,D], ids [B,N], aux_loss)` in the module's current mode."""
        raise NotImplementedError

    def _encode_seq(self, seq: torch.Tensor) -> torch.Tensor:
        """`seq [B,N,D]` -> ids `[B,N]`: `impl`'s eval-mode codes. `impl` is put in eval mode
        for the call only: in training mode it would also run its training-only steps (LFQ's
        entropy loss over the whole codebook, FSQ's noise dropout when enabled)."""
        was_training = self.impl.training
        self.impl.eval()
        try:
            return self.impl(seq)[1]
        finally:
            self.impl.train(was_training)

    def _embed_seq(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids [B,N]` -> `z_q [B,N,D]`."""
        raise NotImplementedError


def _device_of(module: nn.Module) -> torch.device:
    """Where `module` lives (FSQ / LFQ hold buffers only, no parameters)."""
    return next(itertools.chain(module.parameters(), module.buffers()), torch.empty(0)).device
