"""EnCodec (`transformers.EncodecModel`) behind mmtok's audio contract: kind hf-encodec."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.pretrained.exact_search import euclidean_quantize
from mmtok.pretrained.receptive_field import Geometry, decoder_context, encoder_context


def encodec_geometry(m: nn.Module) -> Geometry | None:
    """EnCodec's padded convolutions, and their copies in other models: WavTokenizer's encoder
    is EnCodec's, but transformers' modular converter gives it classes of its own
    (WavTokenizerConv1d is not an EncodecConv1d), so they are recognised by their attributes."""
    if hasattr(m, "padding_total") and hasattr(m, "causal"):  # EncodecConv1d and copies
        total = int(m.padding_total)
        return int(m.kernel_size), int(m.stride), total if m.causal else total - total // 2, False
    if hasattr(m, "trim_right_ratio") and hasattr(m, "causal"):  # EncodecConvTranspose1d and copies
        k, s = m.conv.kernel_size[0], m.conv.stride[0]
        right = math.ceil((k - s) * m.trim_right_ratio) if m.causal else (k - s) // 2
        return k, s, k - s - right, True
    return None


@register_kind
class HFEncodec(PretrainedAudioCodec):
    """EnCodec (`transformers.EncodecModel`), e.g. hf:facebook/encodec_24khz: 24 kHz mono, hop
    320 (75 frames/s), 1024 codes per level. Only the bitrates of `config.target_bandwidths`
    exist (1.5 / 3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 / 32 levels); other requests are an
    error. Encoding always passes the explicit bandwidth: transformers' `bandwidth=None`
    silently means the lowest one.

    Chunked coding is approximate: the convolutions are causal, but an LSTM in the encoder and
    in the decoder carries state from the start of the signal. Each window gets
    `lstm_context_seconds` of real history on top of the convolutions' receptive field,
    instead of all of it.
    """

    kind = "hf-encodec"
    model_type = "encodec"
    hf_model_class = "EncodecModel"
    exact_search = {"EncodecEuclideanCodebook": ("quantize", euclidean_quantize)}
    lstm_context_seconds: float = 3.0

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.normalize or hf_config.chunk_length_s is not None:
            raise MmtokError(
                f"{source}: this EnCodec config (normalize={hf_config.normalize}, chunk_length_s={hf_config.chunk_length_s}) "
                "codes audio in chunks with a loudness scale per chunk, which mmtok codes cannot carry (e.g. "
                "facebook/encodec_48khz); use a config without normalize / chunk_length_s, such as facebook/encodec_24khz"
            )

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, c.audio_channels, c.codebook_size
        self.hop_length = math.prod(c.upsampling_ratios)
        # levels -> the bandwidth (kbps) that gives them, as the model itself counts them
        self._bandwidths: dict[int, float] = {}
        for bandwidth in c.target_bandwidths:
            self._bandwidths.setdefault(self.model.quantizer.get_num_quantizers_for_bandwidth(bandwidth), bandwidth)
        self.num_quantizers = max(self._bandwidths)

        self._encode_context = encoder_context(self.model.encoder.modules(), encodec_geometry)
        self._decode_context = decoder_context(self.model.decoder.modules(), encodec_geometry)
        self._has_lstm = c.num_lstm_layers > 0

    @property
    def encode_history(self) -> int:
        return self._encode_context[0] + (round(self.lstm_context_seconds * self.sample_rate) if self._has_lstm else 0)

    @property
    def decode_history(self) -> int:
        return self._decode_context[0] + (math.ceil(self.lstm_context_seconds * self.frame_rate) if self._has_lstm else 0)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        # audio_codes: [n_chunks, B, K, t]; one chunk, since chunk_length_s is None (checked at load)
        out = self.model.encode(x, bandwidth=self._bandwidth(levels), return_dict=True)
        return out.audio_codes[0]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        # one chunk, no scale (normalize is False): audio_values [B,C,t*hop]
        return self.model.decode(codes[None], [None], return_dict=True).audio_values
