"""Vector quantization over vector-quantize-pytorch's `VectorQuantize`.

A learned codebook of `codebook_size` codes with EMA updates (`ema_decay`), k-means init,
dead-code restart (`dead_code_threshold`), optionally l2-normalised (cosine) and
low-dimensional codes (`codebook_dim`, ViT-VQGAN's factorised codes, projected in and out).
Training runs `VectorQuantize` itself; encoding (and the eval-mode forward) uses the exact
chunked search of `mmtok.quantize.vq_search`.
"""

from __future__ import annotations

import torch
from vector_quantize_pytorch import VectorQuantize

from mmtok.quantize.base import Quantizer, QuantizerConfig
from mmtok.quantize.vq_search import vq_ids


class VQQuantizer(Quantizer):
    """`forward(z [B,D,h,w]) -> (z_q [B,D,h,w], ids [B,h,w] long, aux_loss scalar)`."""

    def __init__(self, dim: int, config: QuantizerConfig):
        super().__init__(config)
        self.impl = VectorQuantize(
            dim=dim, codebook_size=config.codebook_size, codebook_dim=config.codebook_dim,
            decay=config.ema_decay, kmeans_init=config.kmeans_init,
            threshold_ema_dead_code=config.dead_code_threshold, use_cosine_sim=config.cosine,
            commitment_weight=config.commitment_weight,
        )

    def _forward_seq(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.training:
            # Eval: the exact chunked search, not VectorQuantize's full distance matrix (which
            # would also run its k-means init on an untrained model's first batch).
            ids = self._encode_seq(seq)
            return self._embed_seq(ids), ids, seq.new_zeros(())
        out = self.impl(seq)  # (quantized, indices, commitment loss, ...)
        return out[0], out[1], out[2]

    def _encode_seq(self, seq: torch.Tensor) -> torch.Tensor:
        return vq_ids(self.impl, seq)  # same codes as `impl` in eval mode, without touching its state

    def _embed_seq(self, ids: torch.Tensor) -> torch.Tensor:
        return self.impl.get_output_from_indices(ids)
