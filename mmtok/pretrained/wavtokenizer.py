"""WavTokenizer (`transformers.WavTokenizerModel`) behind mmtok's audio contract: kind hf-wavtokenizer."""

from __future__ import annotations

import math
from typing import Any

import torch

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.pretrained.encodec import encodec_geometry
from mmtok.pretrained.exact_search import euclidean_quantize
from mmtok.pretrained.receptive_field import encoder_context


@register_kind
class HFWavTokenizer(PretrainedAudioCodec):
    """WavTokenizer (`transformers.WavTokenizerModel`), e.g.
    hf:swiss-ai/wavtokenizer-large-unify-40token: 24 kHz mono, one level of 4096 codes, 40
    frames/s (hop 600) or 75 (hop 320, the "75token" releases). One level, so one bitrate
    (12 bits x frames/s: 0.48 / 0.9 kbps).

    The encoder is EnCodec's (non-causal convolutions, then an LSTM); the decoder is a Vocos
    backbone whose self-attention and GroupNorms see the whole signal, then an ISTFT. Neither
    has a finite context, so chunked coding (`mmtok encode` / `decode`, `pretokenize`) gives
    each window `context_seconds` (20 s) of real audio (codes) before and after it, on top of
    the encoder convolutions' receptive field: up to that length a file is one window and
    codes and audio are exactly whole-file coding's; beyond it they are approximate, in
    bounded memory (measured: benchmarks/results/pretrained_guarantees.md).
    """

    kind = "hf-wavtokenizer"
    model_type = "wavtokenizer"
    hf_model_class = "WavTokenizerModel"
    exact_search = {"WavTokenizerEuclideanCodebook": ("quantize", euclidean_quantize)}
    context_seconds: float = 20.0

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.audio_channels != 1:
            raise MmtokError(f"{source}: WavTokenizer codes mono audio only, but this config has audio_channels={hf_config.audio_channels}")

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, 1, c.codebook_size
        self.hop_length, self.num_quantizers = c.hop_length, 1
        self._conv_context = encoder_context(self.model.encoder_model.encoder.modules(), encodec_geometry)

    @property
    def encode_history(self) -> int:
        return self._conv_context[0] + round(self.context_seconds * self.sample_rate)  # the LSTM's past

    @property
    def encode_lookahead(self) -> int:
        return self._conv_context[1]

    @property
    def decode_history(self) -> int:
        return math.ceil(self.context_seconds * self.frame_rate)

    @property
    def decode_lookahead(self) -> int:
        return math.ceil(self.context_seconds * self.frame_rate)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        return self.model.encode(x, return_dict=True).audio_codes  # [B,1,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        # bandwidth_id 0: the only condition used at inference (the others are training-time)
        return self.model.decode(codes, return_dict=True).audio_values  # [B,1,t*hop]
