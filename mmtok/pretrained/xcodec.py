"""X-Codec (`transformers.XcodecModel`) behind mmtok's audio contract: kind hf-xcodec.

Also the registry entry that refuses HiggsAudioV2TokenizerModel, transformers' X-Codec
derivative, which cannot run here (see `HFXcodec.refused`).
"""

from __future__ import annotations

from typing import Any

import torch

from mmtok.configs import register_kind
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.pretrained.exact_search import euclidean_quantize
from mmtok.pretrained.receptive_field import decoder_context, encoder_context, torch_conv_geometry

HIGGS_MODEL_TYPE = "higgs_audio_v2_tokenizer"


@register_kind
class HFXcodec(PretrainedAudioCodec):
    """X-Codec (`transformers.XcodecModel`), e.g. hf:Manel/X-Codec: 16 kHz mono, 50 frames/s
    (hop 320), residual levels of 1024 codes. Only the bitrates of `config.target_bandwidths`
    exist (0.5 / 1 / 1.5 / 2 / 4 kbps = 1 / 2 / 3 / 4 / 8 levels), as with EnCodec; the
    adapter passes the bandwidth explicitly (the model's `bandwidth=None` means the highest).

    Each frame joins a DAC encoder (convolutions) with a HuBERT semantic model, whose
    self-attention and feature-extractor GroupNorm see the whole signal, so codes depend on
    all of it: chunked encoding (`mmtok encode`, `pretokenize`) gives each window
    `context_seconds` (20 s) of real audio before and after it. A file of up to that length
    is one window, so its codes are exactly `encode`'s; longer files are coded in bounded
    memory with codes that mostly agree (measured with a 3 s context: 50-76%,
    benchmarks/results/pretrained_guarantees.md). For the same reason a batch of files of
    different lengths, zero-padded, does not code like one file at a time: encode files one
    by one (as mmtok's file paths do). Decoding is a DAC decoder, convolutions only: chunked
    decoding matches whole decoding up to float rounding.
    """

    kind = "hf-xcodec"
    model_type = "xcodec"
    hf_model_class = "XcodecModel"
    exact_search = {"XcodecEuclideanCodebook": ("quantize", euclidean_quantize)}
    refused = {
        HIGGS_MODEL_TYPE: (
            "is a HiggsAudioV2TokenizerModel, whose transformers code imports torchaudio (it resamples inside the "
            "model), and torchaudio has no build for the torch mmtok runs on; it cannot be loaded here"
        )
    }
    context_seconds: float = 20.0

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.codebook_size = c.sample_rate, 1, c.codebook_size
        self.hop_length, self.num_quantizers = c.hop_length, c.num_quantizers
        # levels -> the bandwidth that gives them, as the model itself counts them
        self._bandwidths = {}
        for bandwidth in c.target_bandwidths:
            self._bandwidths.setdefault(self.model.quantizer.get_num_quantizers_for_bandwidth(bandwidth), bandwidth)
        self._conv_context = encoder_context(self.model.acoustic_encoder.modules(), torch_conv_geometry)
        self._decode_context = decoder_context(self.model.acoustic_decoder.modules(), torch_conv_geometry)

    @property
    def encode_history(self) -> int:
        return self._conv_context[0] + round(self.context_seconds * self.sample_rate)

    @property
    def encode_lookahead(self) -> int:
        return self._conv_context[1] + round(self.context_seconds * self.sample_rate)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        return self.model.encode(x, bandwidth=self._bandwidth(levels), return_dict=True).audio_codes  # [B,levels,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values  # [B,1,t*hop]
