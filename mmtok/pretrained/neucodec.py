"""NeuCodec (`transformers.NeuCodecModel`) behind mmtok's audio contract: kind hf-neucodec.

NeuCodec is X-Codec 2 with a decoder that writes 24 kHz: the same w2v-BERT semantic encoder
(fed the Kaldi filter banks of `mmtok.pretrained.kaldi_fbank`), acoustic encoder and FSQ
codebook, so the adapter is `HFXcodec2` with NeuCodec's config names, its feature padding,
and `output_sample_rate` set to the decoder's rate (`mmtok.audio.base`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.kaldi_fbank import FBANK_RATE, SEMANTIC_HOP, semantic_features
from mmtok.pretrained.xcodec2 import HFXcodec2


@register_kind
class HFNeuCodec(HFXcodec2):
    """NeuCodec (`transformers.NeuCodecModel`), e.g. hf:neuphonic/neucodec (the codes the NeuTTS
    models read): reads 16 kHz mono, decodes 24 kHz, 50 frames/s (hop 320 in, 480 out), one FSQ
    codebook of prod(quantization_levels) = 65,536 codes (0.8 kbps).

    Framing: mmtok codes T samples as n = ceil(T/320) frames. transformers' feature extractor
    appends one sample and pads to a multiple of 320, so for T = n*320 it codes n*320 + 320
    samples, whose filter bank (no padding around it, unlike X-Codec 2's) has exactly n
    semantic frames (the acoustic encoder's extra frame is trimmed by the model). The adapter
    codes the same n*320 + 320 samples, so its codes are the extractor's for T a multiple of
    320. For other T the extractor rounds down (floor(T/320) codes, dropping the partial last
    frame); mmtok keeps it, zero-padded.

    Chunked coding as for X-Codec 2: `context_seconds` (20 s) around each window, exact for
    files up to that length, approximate beyond.
    """

    kind = "hf-neucodec"
    model_type = "neucodec"
    hf_model_class = "NeuCodecModel"

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        rate, hop = hf_config.input_sampling_rate, hf_config.encoder_hop_length
        if rate != FBANK_RATE or hop != SEMANTIC_HOP:
            raise MmtokError(
                f"{source}: this NeuCodec config (input_sampling_rate {rate}, hop {hop}) does not line up with its "
                f"semantic features ({FBANK_RATE} Hz, one per {SEMANTIC_HOP} samples); mmtok needs both"
            )
        if hop * hf_config.output_sampling_rate % rate:
            raise MmtokError(
                f"{source}: output_sampling_rate {hf_config.output_sampling_rate} gives no whole number of decoded samples "
                f"per frame of {hop} samples at {rate} Hz; mmtok needs one"
            )

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.hop_length, self.num_quantizers = c.input_sampling_rate, 1, c.encoder_hop_length, 1
        self.codebook_size = math.prod(c.quantization_levels)
        self._output_sample_rate = c.output_sampling_rate

    @property
    def output_sample_rate(self) -> int:
        return self._output_sample_rate

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        # one hop of silence after the frames, as the feature extractor pads (see the class)
        x = torch.nn.functional.pad(x, (0, self.hop_length))
        features = semantic_features(x, pad=0).to(x.dtype)
        return self.model.encode(x, features, return_dict=True).audio_codes  # [B,1,t]
