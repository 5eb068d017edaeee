"""VQ image tokenizer (VQ-VAE / VQGAN-lite) with a configurable quantizer.

Architecture: pixel-unshuffle stem (patch p) -> conv/res stack with stride-2 downsamples ->
1x1 projection to `latent_dim` -> quantizer (FSQ, VQ or LFQ from vector-quantize-pytorch) ->
mirrored decoder -> pixel-shuffle. Downsampling factor f = p * 2**(len(channel_mult)-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmtok.configs import register_kind
from mmtok.image.base import ConvImageConfig, ImageTokenizer
from mmtok.nn.conv2d import Decoder2d, Encoder2d
from mmtok.quantize import HasQuantizer, QuantizerConfig, build_quantizer


@dataclass(frozen=True)
class ImageVQConfig(ConvImageConfig):
    latent_dim: int = 16                  # channels fed to the quantizer
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)


@register_kind
class ImageVQ(HasQuantizer, ImageTokenizer):
    """Image VQ tokenizer; see `ImageTokenizer` for the encode/decode layout."""

    kind = "image-vq"
    config_class = ImageVQConfig

    def __init__(self, config: ImageVQConfig):
        super().__init__(config)
        c = config
        self.encoder = Encoder2d(c.patch_size, c.channels, c.channel_mult, c.num_res_blocks, c.latent_dim)
        self.quantizer = build_quantizer(c.latent_dim, c.quantizer)
        self.decoder = Decoder2d(c.patch_size, c.channels, c.channel_mult, c.num_res_blocks, c.latent_dim)

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.quantizer.codebook_size]

    def forward(self, x: torch.Tensor, progress: float = 0.0) -> dict[str, torch.Tensor]:
        """Training pass. `x: [B,3,H,W]` in [-1,1], H and W multiples of `downsample`.

        Returns `recon` (unclamped), `ids [B,h,w]` and `aux_loss` (quantizer commitment /
        entropy terms, already weighted). `progress` (0..1) is unused by VQ.
        """
        zq, ids, aux = self.quantizer(self.encoder(x))
        return {"recon": self.decoder(zq), "ids": ids, "aux_loss": aux}

    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x))
