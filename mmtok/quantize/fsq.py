"""Finite scalar quantization (Mentzer et al. 2023) over vector-quantize-pytorch's `FSQ`.

Each of `len(fsq_levels)` projected channels is rounded to one of its `fsq_levels[i]` values;
the code is the mixed-radix number of those choices, so the codebook size is the product of
`fsq_levels`. There is no codebook to learn or collapse, and no aux loss.
"""

from __future__ import annotations

import torch
from vector_quantize_pytorch import FSQ

from mmtok.quantize.base import Quantizer, QuantizerConfig


class FSQQuantizer(Quantizer):
    """`forward(z [B,D,h,w]) -> (z_q [B,D,h,w], ids [B,h,w] long, zero aux_loss)`."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__(config)
        self.impl = FSQ(levels=list(config.fsq_levels), dim=dim)

    def _forward_seq(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zq, ids = self.impl(seq)  # FSQ returns no loss
        return zq, ids, seq.new_zeros(())

    def _embed_seq(self, ids: torch.Tensor) -> torch.Tensor:
        return self.impl.indices_to_codes(ids.int())  # int32: the dtype of FSQ's own indices and level basis
