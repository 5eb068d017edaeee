"""Causal spatiotemporal VQ video tokenizer (MAGVIT-v2 / Cosmos style).

Architecture (`mmtok.nn.conv3d`): per-frame pixel-unshuffle stem (patch p) -> levels of
residual blocks, per-frame kernels at full frame rate and causal 3x3x3 kernels below it,
with strided causal transitions halving space and/or time -> 1x1x1 projection to
`latent_dim` -> quantizer (FSQ, VQ or LFQ from vector-quantize-pytorch, shared with the
image kinds) -> mirrored causal decoder -> pixel-shuffle.

A `1 + 4n`-frame clip becomes `1 + n` latent frames (temporal factor 4 with two "t"
transitions); the first frame is coded alone, so an image is a valid 1-frame video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmtok.configs import register_kind
from mmtok.nn.conv3d import TRANSITIONS, Decoder3d, Encoder3d
from mmtok.quantize import HasQuantizer, QuantizerConfig, build_quantizer
from mmtok.video.base import VideoTokenizer


@dataclass(frozen=True)
class VideoCausalVQConfig:
    patch_size: int = 4                          # pixel-unshuffle stem
    channels: int = 32                           # width of the first level
    channel_mult: tuple[int, ...] = (1, 2, 2)    # one entry per level
    downsample: tuple[str, ...] = ("st", "t")    # transition after each level but the last: "s", "t" or "st"
    frame_levels: int = 1                        # first levels use per-frame (1x3x3) kernels
    num_res_blocks: int = 1                      # per level
    latent_dim: int = 6                          # channels fed to the quantizer (FSQ projects to len(fsq_levels))
    quantizer: QuantizerConfig = field(default_factory=lambda: QuantizerConfig(kind="fsq", fsq_levels=(8, 8, 8, 5, 5, 5)))

    def __post_init__(self) -> None:
        if len(self.downsample) != len(self.channel_mult) - 1:
            raise ValueError("downsample needs one transition per pair of levels: len(channel_mult) - 1 entries")
        if any(d not in TRANSITIONS for d in self.downsample):
            raise ValueError(f"downsample entries must be one of {TRANSITIONS}")

    @property
    def spatial_downsample(self) -> int:
        return self.patch_size * 2 ** sum("s" in d for d in self.downsample)

    @property
    def temporal_downsample(self) -> int:
        return 2 ** sum("t" in d for d in self.downsample)


@register_kind
class VideoCausalVQ(HasQuantizer, VideoTokenizer):
    """Causal video VQ tokenizer; see `VideoTokenizer` for layouts and windowed coding."""

    kind = "video-causal-vq"
    config_class = VideoCausalVQConfig

    def __init__(self, config: VideoCausalVQConfig):
        super().__init__(config)
        c = config
        shape = (c.patch_size, c.channels, c.channel_mult, c.num_res_blocks, c.latent_dim, c.downsample, c.frame_levels)
        self.encoder = Encoder3d(*shape)
        self.quantizer = build_quantizer(c.latent_dim, c.quantizer)
        self.decoder = Decoder3d(*shape)

    @property
    def temporal_downsample(self) -> int:
        return self.config.temporal_downsample

    @property
    def spatial_downsample(self) -> int:
        return self.config.spatial_downsample

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`z [B,D,t,h,w]` -> (z_q like z, ids `[B,t,h,w]`, aux loss). Quantization is per
        position, so time is folded into the height axis of the 2-D quantizer."""
        b, d, t, h, w = z.shape
        zq, ids, aux = self.quantizer(z.reshape(b, d, t * h, w))
        return zq.reshape(b, d, t, h, w), ids.reshape(b, t, h, w), aux

    def forward(self, x: torch.Tensor, progress: float = 0.0) -> dict[str, torch.Tensor]:
        """Training pass. `x: [B,3,T,H,W]` in [-1,1], T = 1 + 4n, H and W multiples of f.

        Returns `recon` (unclamped, like x), `ids [B,t,h,w]` and `aux_loss` (quantizer terms,
        already weighted). `progress` (0..1) is unused.
        """
        zq, ids, aux = self._quantize(self.encoder(x))
        return {"recon": self.decoder(zq), "ids": ids, "aux_loss": aux}

    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        b, d, t, h, w = z.shape
        return self.quantizer.encode(z.reshape(b, d, t * h, w)).reshape(b, t, h, w)

    def _decode_latents(self, codes: torch.Tensor) -> torch.Tensor:
        b, t, h, w = codes.shape
        zq = self.quantizer.embed(codes.reshape(b, t * h, w))
        return self.decoder(zq.reshape(b, zq.shape[1], t, h, w))
