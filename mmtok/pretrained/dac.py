"""DAC, the Descript Audio Codec (`transformers.DacModel`), behind mmtok's audio contract: kind hf-dac."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmtok.configs import register_kind
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.pretrained.receptive_field import decoder_context, encoder_context, torch_conv_geometry
from mmtok.quantize.nearest import cached_index


def _exact_decode_latents(self: nn.Module, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`DacVectorQuantize.decode_latents` with mmtok's exact search: `[B,D,T]` -> (code vectors
    `[B,D,T]`, ids `[B,T]`); normalised codes, as DAC's factorised codebook (ViT-VQGAN)
    compares them."""
    b, d, t = hidden_states.shape
    encodings = F.normalize(hidden_states.permute(0, 2, 1).reshape(b * t, d))
    codebook = F.normalize(self.codebook.weight)
    ids = cached_index(self, codebook, "dot").search(encodings).reshape(b, t)
    return self.codebook(ids).transpose(1, 2), ids


@register_kind
class HFDac(PretrainedAudioCodec):
    """DAC, the Descript Audio Codec (`transformers.DacModel`), e.g. hf:descript/dac_16khz (16 kHz
    mono, hop 320, 12 levels of 1024 codes) or dac_24khz / dac_44khz. Any number of levels
    1..n_codebooks. Mono only: the model has one input channel.

    The convolutions are not causal: a frame depends on `encode_lookahead` samples after it and
    a decoded sample on `decode_lookahead` frames after it. Both contexts are finite and are
    taken from the receptive field of the convolutions, so chunked coding matches whole-signal
    coding up to float rounding (the streams wait for the lookahead before emitting).
    """

    kind = "hf-dac"
    model_type = "dac"
    hf_model_class = "DacModel"
    exact_search = {"DacVectorQuantize": ("decode_latents", _exact_decode_latents)}

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, 1, c.codebook_size
        self.hop_length, self.num_quantizers = c.hop_length, c.n_codebooks

        self._encode_context = encoder_context(self.model.encoder.modules(), torch_conv_geometry)
        self._decode_context = decoder_context(self.model.decoder.modules(), torch_conv_geometry)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        # in eval mode the quantizer stops after n_quantizers: audio_codes [B,levels,t]
        return self.model.encode(x, n_quantizers=levels, return_dict=True).audio_codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values[:, None]  # [B,T] -> [B,1,T]
