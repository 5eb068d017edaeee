"""The neural audio codec we train: SEANet encoder/decoder + residual VQ (SoundStream / EnCodec).

    audio [B,C,T] -> causal conv encoder (strides = ratios reversed) -> z [B,D,T/hop]
      -> ResidualVQ (K levels of `codebook_size` codes, EMA, k-means init, dead-code restart)
      -> causal conv decoder -> audio [B,C,T]

With the defaults (24 kHz, hop 320 = 75 frames/s, 1024 codes = 10 bits per level) each level
costs 0.75 kbps: 2 / 4 / 8 levels = 1.5 / 3 / 6 kbps, EnCodec's bitrates. Quantizer dropout
trains every prefix of levels, so one model serves all of them. There is no LSTM (EnCodec has
one): convolutions alone keep the history finite, which makes chunked coding exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.nn.conv1d import SEANetDecoder, SEANetEncoder
from mmtok.quantize import HasQuantizer
from mmtok.quantize.residual import ResidualQuantizer
from mmtok.configs import register_kind


@dataclass(frozen=True)
class AudioCodecConfig:
    sample_rate: int = 24000
    channels: int = 1                         # 1: inputs are mixed down to mono; 2: stereo
    ratios: tuple[int, ...] = (8, 5, 4, 2)    # decoder upsampling order; hop = product
    n_filters: int = 32                       # width of the outermost level (doubles per level)
    dilations: tuple[int, ...] = (1, 3)       # residual units per level
    dimension: int = 128                      # latent / codebook vector size
    num_quantizers: int = 8                   # K levels
    codebook_size: int = 1024
    min_quantizers: int = 2                   # quantizer dropout keeps at least this many
    quantizer_dropout: bool = True
    ema_decay: float = 0.99
    kmeans_init: bool = True
    dead_code_threshold: float = 2.0
    commitment_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise ValueError("channels must be 1 (mono) or 2 (stereo)")
        if not 1 <= self.min_quantizers <= self.num_quantizers:
            raise ValueError("need 1 <= min_quantizers <= num_quantizers")

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)


@register_kind
class AudioCodec(HasQuantizer, AudioTokenizer):
    """SEANet + RVQ codec; see `AudioTokenizer` for the encode/decode layout."""

    kind = "audio-codec"
    config_class = AudioCodecConfig

    def __init__(self, config: AudioCodecConfig):
        super().__init__(config)
        c = config
        self.encoder = SEANetEncoder(c.channels, c.dimension, c.n_filters, c.ratios, c.dilations)
        self.quantizer = ResidualQuantizer(
            c.dimension, c.num_quantizers, c.codebook_size, c.ema_decay, c.kmeans_init, c.dead_code_threshold,
            c.commitment_weight, c.quantizer_dropout, c.min_quantizers,
        )
        self.decoder = SEANetDecoder(c.channels, c.dimension, c.n_filters, c.ratios, c.dilations)
        self.sample_rate, self.channels, self.hop_length = c.sample_rate, c.channels, c.hop_length
        self.num_quantizers, self.codebook_size = c.num_quantizers, c.codebook_size

    @property
    def encode_history(self) -> int:
        return self.encoder.history

    @property
    def decode_history(self) -> int:
        return self.decoder.history

    def forward(self, x: torch.Tensor, progress: float = 0.0) -> dict[str, torch.Tensor]:
        """Training pass. `x: [B,C,T]` in [-1,1], T a multiple of `hop_length`.

        Returns `recon [B,C,T]` (unclamped), `ids [B,K,t]` (-1 where quantizer dropout
        removed a level) and `aux_loss` (commitment, already weighted).
        """
        zq, ids, aux = self.quantizer(self.encoder(x))
        return {"recon": self.decoder(zq), "ids": ids, "aux_loss": aux}

    def _encode_frames(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        return self.quantizer.encode(self.encoder(x), levels)

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.embed(codes))
