"""Gumbel-softmax quantizer for the dVAE (DALL-E / BEiT style).

Training: the encoder emits logits over K codes at every position; a Gumbel-softmax sample
(temperature `tau`, annealed by the trainer) mixes the code embeddings, and a KL term pulls
the per-position code distribution toward the uniform prior (weight warmed up from 0 by the
trainer). Inference: the code is the argmax of the logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class GumbelQuantizer(nn.Module):
    """`forward(logits [B,K,h,w], tau) -> (z [B,D,h,w], ids [B,h,w], kl scalar)`."""

    def __init__(self, codebook_size: int, embed_dim: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.embedding = nn.Embedding(codebook_size, embed_dim)

    def forward(self, logits: torch.Tensor, tau: float = 1.0, hard: bool = False):
        ids = logits.argmax(dim=1)
        if self.training:
            soft = F.gumbel_softmax(logits, tau=tau, hard=hard, dim=1)
        else:
            soft = F.one_hot(ids, self.codebook_size).permute(0, 3, 1, 2).to(logits.dtype)
        z = torch.einsum("bkhw,kd->bdhw", soft, self.embedding.weight)
        log_q = F.log_softmax(logits, dim=1)
        # KL(q || uniform) = sum q log q + log K, averaged over positions.
        kl = (log_q.exp() * log_q).sum(dim=1).mean() + math.log(self.codebook_size)
        return z, ids, kl

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids: [B,h,w]` -> `[B,D,h,w]`."""
        return self.embedding(ids).permute(0, 3, 1, 2)

    def code_vectors(self) -> torch.Tensor:
        """`[codebook_size, D]`: the embedding of each code."""
        return self.embedding.weight.detach()

    def usage_counts(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.bincount(ids.reshape(-1), minlength=self.codebook_size)
