"""Spatial quantizers over vector-quantize-pytorch, behind one interface.

Every quantizer maps a feature map `z: [B,D,h,w]` to `(z_q: [B,D,h,w], ids: [B,h,w] int64,
aux_loss: scalar)` and back from ids with `embed(ids) -> [B,D,h,w]`. Which one is chosen is a
config field, so a recipe can switch between:

- "fsq": finite scalar quantization (Mentzer et al. 2023). No codebook to collapse, no aux
  loss; codebook size is the product of `fsq_levels`.
- "vq": `VectorQuantize` with EMA updates, k-means init, dead-code restart, optional
  l2-normalised (cosine) and low-dimensional codes (ViT-VQGAN's factorised codes).
- "lfq": lookup-free quantization (MAGVIT-v2), codebook size a power of two, with its
  entropy loss.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from vector_quantize_pytorch import FSQ, LFQ, VectorQuantize

from mmtok.quantize.vq_search import vq_ids

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
    """`forward(z [B,D,h,w]) -> (z_q [B,D,h,w], ids [B,h,w] long, aux_loss scalar)`."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__()
        self.config = config
        self.codebook_size = config.size
        if config.kind == "fsq":
            self.impl = FSQ(levels=list(config.fsq_levels), dim=dim)
        elif config.kind == "vq":
            self.impl = VectorQuantize(
                dim=dim, codebook_size=config.codebook_size, codebook_dim=config.codebook_dim,
                decay=config.ema_decay, kmeans_init=config.kmeans_init,
                threshold_ema_dead_code=config.dead_code_threshold, use_cosine_sim=config.cosine,
                commitment_weight=config.commitment_weight,
            )
        else:
            self.impl = LFQ(
                dim=dim, codebook_size=config.codebook_size, entropy_loss_weight=config.entropy_weight,
                commitment_loss_weight=config.commitment_weight,
            )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = z.shape
        if self.config.kind == "vq" and not self.training:
            # Eval: the exact chunked search, not VectorQuantize's full distance matrix (which
            # would also run its k-means init on an untrained model's first batch).
            ids = self.encode(z)
            return self.embed(ids), ids, z.new_zeros(())
        out = self.impl(rearrange(z, "b d h w -> b (h w) d"))
        if self.config.kind == "fsq":
            zq, ids = out
            aux = z.new_zeros(())
        else:
            zq, ids, aux = out[0], out[1], out[2]
        zq = rearrange(zq, "b (h w) d -> b d h w", h=h, w=w)
        return zq, ids.reshape(b, h, w).long(), aux.sum() if aux.numel() > 1 else aux.reshape(())

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.Tensor:
        """`z [B,D,h,w]` -> ids `[B,h,w]` int64 (eval-mode codes, whatever the module's mode)."""
        b, _, h, w = z.shape
        seq = rearrange(z, "b d h w -> b (h w) d")
        if self.config.kind == "vq":
            return vq_ids(self.impl, seq).reshape(b, h, w)
        was_training = self.impl.training
        self.impl.eval()
        try:
            ids = self.impl(seq)[1]
        finally:
            self.impl.train(was_training)
        return ids.reshape(b, h, w).long()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids: [B,h,w]` integer codes -> `[B,D,h,w]` quantized features."""
        b, h, w = ids.shape
        flat = ids.reshape(b, h * w)
        if self.config.kind == "fsq":
            zq = self.impl.indices_to_codes(flat.int())
        elif self.config.kind == "vq":
            zq = self.impl.get_output_from_indices(flat)
        else:
            zq = self.impl.indices_to_codes(flat)
        return rearrange(zq, "b (h w) d -> b d h w", h=h, w=w)

    def code_vectors(self) -> torch.Tensor:
        """`[codebook_size, D]`: the feature vector each code stands for."""
        return self.embed(torch.arange(self.codebook_size, device=_device_of(self))[None, None])[0, :, 0].T

    def usage_counts(self, ids: torch.Tensor) -> torch.Tensor:
        """Histogram of `ids` over the codebook, `[codebook_size]` int64."""
        return torch.bincount(ids.reshape(-1), minlength=self.codebook_size)


def build_quantizer(dim: int, config: QuantizerConfig) -> Quantizer:
    return Quantizer(dim, config)


def _device_of(module: nn.Module) -> torch.device:
    """Where `module` lives (FSQ / LFQ hold buffers only, no parameters)."""
    return next(itertools.chain(module.parameters(), module.buffers()), torch.empty(0)).device
