"""Discrete VAE image tokenizer in the DALL-E / BEiT style.

The encoder emits logits over `codebook_size` codes per position; training relaxes the
choice with Gumbel-softmax (temperature annealed from `tau_start` to `tau_end`) and adds
`kl_weight * KL(q || uniform)` warmed up linearly from 0; encode is the argmax; the decoder
reads code embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mmtok.image.base import ConvImageConfig, ImageTokenizer
from mmtok.nn.conv2d import Decoder2d, Encoder2d
from mmtok.quantize import HasQuantizer
from mmtok.quantize.gumbel import GumbelQuantizer
from mmtok.configs import register_kind


@dataclass(frozen=True)
class ImageDVAEConfig(ConvImageConfig):
    codebook_size: int = 8192
    embed_dim: int = 64
    tau_start: float = 1.0
    tau_end: float = 1.0 / 16
    tau_anneal: float = 0.8       # fraction of training over which tau decays (exponentially)
    kl_weight: float = 6.6 / 1024  # DALL-E's 6.6 on a per-position mean instead of a sum
    kl_warmup: float = 0.1        # fraction of training over which the KL weight ramps from 0


@register_kind
class ImageDVAE(HasQuantizer, ImageTokenizer):
    kind = "image-dvae"
    config_class = ImageDVAEConfig

    def __init__(self, config: ImageDVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = Encoder2d(c.patch_size, c.channels, c.channel_mult, c.num_res_blocks, c.codebook_size)
        self.quantizer = GumbelQuantizer(c.codebook_size, c.embed_dim)
        self.decoder = Decoder2d(c.patch_size, c.channels, c.channel_mult, c.num_res_blocks, c.embed_dim)

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.config.codebook_size]

    def schedule(self, progress: float) -> tuple[float, float]:
        """(Gumbel temperature, KL weight) at `progress` in [0,1] of training."""
        c = self.config
        t = min(max(progress / c.tau_anneal, 0.0), 1.0) if c.tau_anneal > 0 else 1.0
        tau = c.tau_start * math.exp(t * math.log(c.tau_end / c.tau_start))
        warm = min(progress / c.kl_warmup, 1.0) if c.kl_warmup > 0 else 1.0
        return tau, c.kl_weight * warm

    def forward(self, x: torch.Tensor, progress: float = 0.0) -> dict[str, torch.Tensor]:
        """Training pass; `x: [B,3,H,W]` in [-1,1]. Returns recon, ids, aux_loss, tau."""
        tau, kl_weight = self.schedule(progress)
        z, ids, kl = self.quantizer(self.encoder(x), tau=tau)
        return {"recon": self.decoder(z), "ids": ids, "aux_loss": kl_weight * kl, "tau": torch.tensor(tau)}

    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).argmax(dim=1)
