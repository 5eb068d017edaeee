"""X-Codec 2 (`transformers.Xcodec2Model`) behind mmtok's audio contract: kind hf-xcodec2.

The model's `encode` takes the waveform and, for its w2v-BERT semantic encoder, log-mel
filter banks that transformers' `Xcodec2FeatureExtractor` computes with torchaudio's Kaldi
fbank; `mmtok.pretrained.kaldi_fbank` computes the same without torchaudio (see there for how
closely). Codes are exactly the model's own `encode` given these features.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.pretrained.kaldi_fbank import FBANK_RATE, SEMANTIC_HOP, semantic_features


@register_kind
class HFXcodec2(PretrainedAudioCodec):
    """X-Codec 2 (`transformers.Xcodec2Model`), e.g. hf:HKUSTAudio/xcodec2-hf (the codes the
    LLaSA TTS models read): 16 kHz mono, 50 frames/s (hop 320), one FSQ codebook of
    prod(quantization_levels) = 65,536 codes (0.8 kbps).

    Framing: mmtok codes T samples as ceil(T/320) frames (zero-padded to whole frames);
    transformers' feature extractor first appends one sample, so it gives one frame more when
    T is a multiple of 320, and its per-item mel normalisation then covers that extra frame.

    The w2v-BERT encoder attends over the whole signal and the features are normalised over
    it; the decoder's transformer attends over all frames. Chunked coding therefore gives each
    window `context_seconds` (20 s) before and after: exact for files up to that length,
    approximate beyond.
    """

    kind = "hf-xcodec2"
    model_type = "xcodec2"
    hf_model_class = "Xcodec2Model"
    context_seconds: float = 20.0

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.sampling_rate != FBANK_RATE or hf_config.hop_length != SEMANTIC_HOP:
            raise MmtokError(
                f"{source}: this X-Codec 2 config (sampling_rate {hf_config.sampling_rate}, hop {hf_config.hop_length}) does not "
                f"line up with its semantic features ({FBANK_RATE} Hz, one per {SEMANTIC_HOP} samples); mmtok needs both"
            )

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.hop_length, self.num_quantizers = c.sampling_rate, 1, c.hop_length, 1
        self.codebook_size = math.prod(c.quantization_levels)

    @property
    def encode_history(self) -> int:
        return round(self.context_seconds * self.sample_rate)

    @property
    def encode_lookahead(self) -> int:
        return round(self.context_seconds * self.sample_rate)

    @property
    def decode_history(self) -> int:
        return math.ceil(self.context_seconds * self.frame_rate)

    @property
    def decode_lookahead(self) -> int:
        return math.ceil(self.context_seconds * self.frame_rate)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        features = semantic_features(x, pad=self.hop_length // 2).to(x.dtype)
        return self.model.encode(x, features, return_dict=True).audio_codes  # [B,1,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values  # [B,1,t*hop]
