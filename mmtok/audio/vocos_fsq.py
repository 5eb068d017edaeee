"""A low-token-rate codec whose heavy layers run at the frame rate (WavTokenizer / Vocos style).

    audio [B,C,T] -> causal framed STFT stem (n_fft samples ending at each frame's end)
      -> 1x1 projection -> causal ConvNeXt blocks at the frame rate -> z [B,D,t]
      -> FSQ: ONE codebook of prod(fsq_levels) codes -> ids [B,1,t]
      -> causal ConvNeXt blocks -> inverse-STFT head (overlap-add) -> audio [B,C,t*hop]

With the defaults (24 kHz, hop 320) that is 75 frames = 75 tokens per second; FSQ levels
(8,8,8,5,5,5) give 64,000 codes (~16 bits), i.e. ~1.2 kbps. Nothing runs at 24 kHz except
the FFTs, which is why a training step is cheap compared with a SEANet decoder.

Latency: the encoder is causal (a frame is coded once its last sample has arrived). The
decoder is causal in its ConvNeXt blocks, but the iSTFT head's windows reach `head_lookahead`
frames back from each frame (a frame's window starts `head_lookahead` hops before it), so an
output sample is final once `head_lookahead` later frames have been decoded: 2 frames =
26.7 ms at 75 Hz by default, on top of one hop. `StreamingDecoder` waits for exactly that,
so chunked / streaming decoding still equals whole-signal decoding. At a signal's two
ends the overlap-add is incomplete (one window short in the first frame, up to two in the
last two, 27 ms at 75 Hz), whole or chunked alike; training segments have the same edges.

Receptive fields with the defaults: an encoded frame sees 0.52 s of past audio (stem window
53 ms + 6 blocks x 6 frames); a decoded sample depends on 49 past and 2 future frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.configs import register_kind
from mmtok.nn.convnext1d import CausalConvNeXt
from mmtok.nn.stft import CausalSTFTStem, ISTFTHead
from mmtok.quantize import FSQQuantizer, HasQuantizer, QuantizerConfig


@dataclass(frozen=True)
class VocosFSQConfig:
    sample_rate: int = 24000
    channels: int = 1                          # 1: inputs are mixed down to mono; 2: stereo
    hop_length: int = 320                      # samples per frame = per token (75 Hz at 24 kHz)
    stem_n_fft: int = 1280                     # analysis window of the causal STFT stem
    head_n_fft: int = 1280                     # synthesis window of the iSTFT head (multiple of hop)
    head_lookahead: int = 2                    # frames; 0 = causal head (must extrapolate ahead)
    dim: int = 384                             # ConvNeXt width
    intermediate: int = 1152                   # ConvNeXt MLP width
    encoder_depth: int = 6
    decoder_depth: int = 8
    kernel: int = 7                            # depthwise kernel, in frames
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)   # codebook = product = 64,000

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise ValueError("channels must be 1 (mono) or 2 (stereo)")
        if self.head_n_fft % self.hop_length or not 0 <= self.head_lookahead < self.head_n_fft // self.hop_length:
            raise ValueError("head_n_fft must be a multiple of hop_length and 0 <= head_lookahead < head_n_fft/hop_length")
        if self.stem_n_fft < self.hop_length:
            raise ValueError("stem_n_fft must be at least hop_length")


@register_kind
class VocosFSQCodec(HasQuantizer, AudioTokenizer):
    """Frame-rate ConvNeXt codec with one FSQ codebook; see `AudioTokenizer` for the layout."""

    kind = "audio-vocos-fsq"
    config_class = VocosFSQConfig
    # Multi-period (HiFi-GAN) + multi-resolution STFT: at ~1 kbps the waveform is mostly
    # generated, and the periodic discriminator is what makes voiced speech sound voiced.
    discriminators = ("mpd", "ms-stft")

    def __init__(self, config: VocosFSQConfig):
        super().__init__(config)
        c = config
        self.stem = CausalSTFTStem(c.channels, c.hop_length, c.stem_n_fft)
        self.embed = torch.nn.Conv1d(self.stem.out_channels, c.dim, 1)
        self.encoder = CausalConvNeXt(c.dim, c.intermediate, c.encoder_depth, c.kernel)
        self.quantizer = FSQQuantizer(c.dim, QuantizerConfig(kind="fsq", fsq_levels=c.fsq_levels))
        self.decoder = CausalConvNeXt(c.dim, c.intermediate, c.decoder_depth, c.kernel)
        self.head = ISTFTHead(c.dim, c.channels, c.hop_length, c.head_n_fft, c.head_lookahead)
        self.sample_rate, self.channels, self.hop_length = c.sample_rate, c.channels, c.hop_length
        self.num_quantizers, self.codebook_size = 1, math.prod(c.fsq_levels)

    @property
    def encode_history(self) -> int:
        return self.stem.history + self.encoder.history * self.hop_length

    @property
    def decode_history(self) -> int:
        return self.decoder.history + self.head.history

    @property
    def decode_lookahead(self) -> int:
        return self.head.lookahead

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,C,T]` -> `[B,D,1,t]` (the quantizer's `[B,D,h,w]` layout with h = 1)."""
        return self.encoder(self.embed(self.stem(x)))[:, :, None]

    def forward(self, x: torch.Tensor, progress: float = 0.0) -> dict[str, torch.Tensor]:
        """Training pass. `x: [B,C,T]` in [-1,1], T a multiple of `hop_length`.

        Returns `recon [B,C,T]` (unclamped), `ids [B,1,t]` and `aux_loss` (0: FSQ has none).
        """
        zq, ids, aux = self.quantizer(self._latents(x))
        return {"recon": self.head(self.decoder(zq[:, :, 0])), "ids": ids, "aux_loss": aux}

    def _encode_frames(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        return self.quantizer.encode(self._latents(x))        # [B,1,t]

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.quantizer.embed(codes)[:, :, 0]))
