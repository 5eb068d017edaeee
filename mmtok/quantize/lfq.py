"""Lookup-free quantization (MAGVIT-v2) over vector-quantize-pytorch's `LFQ`.

Each of log2(codebook_size) projected channels is quantized to its sign, and the code is the
binary number of those signs: no codebook lookup, a power-of-two codebook size. Training adds
LFQ's entropy loss (`entropy_weight`) and commitment loss (`commitment_weight`).
"""

from __future__ import annotations

import torch
from vector_quantize_pytorch import LFQ

from mmtok.quantize.base import Quantizer, QuantizerConfig


class LFQQuantizer(Quantizer):
    """`forward(z [B,D,h,w]) -> (z_q [B,D,h,w], ids [B,h,w] long, aux_loss scalar)`."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__(config)
        self.impl = LFQ(
            dim=dim, codebook_size=config.codebook_size, entropy_loss_weight=config.entropy_weight,
            commitment_loss_weight=config.commitment_weight,
        )

    def _forward_seq(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.impl(seq)  # (quantized, indices, aux loss, ...)
        return out[0], out[1], out[2]

    def _embed_seq(self, ids: torch.Tensor) -> torch.Tensor:
        return self.impl.indices_to_codes(ids)
