"""Mimi (`transformers.MimiModel`) behind mmtok's audio contract: kind hf-mimi."""

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


@register_kind
class HFMimi(PretrainedAudioCodec):
    """Mimi (`transformers.MimiModel`), e.g. hf:kyutai/mimi: 24 kHz mono, 12.5 frames/s (hop
    1920), 32 levels of 2048 codes. The first `num_semantic_quantizers` levels (1) come from a
    separate semantic quantizer and are always coded, so levels start there.

    Everything is causal, but a transformer with sliding-window attention sits in the encoder
    (before the 2x downsampling) and in the decoder (after the upsampling). Each window of
    chunked coding gets one attention window (`sliding_window` tokens, 10 s for kyutai/mimi) of
    real history on top of the convolutions' receptive field. With several layers the exact
    context is layers x window, so chunked coding is approximate.
    """

    kind = "hf-mimi"
    model_type = "mimi"
    hf_model_class = "MimiModel"
    exact_search = {"MimiEuclideanCodebook": ("quantize", euclidean_quantize)}

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.encoder_config is None or hf_config.decoder_config is None:
            raise MmtokError(
                f"{source}: this Mimi model has no {'encoder' if hf_config.encoder_config is None else 'decoder'}; "
                "mmtok needs both halves, load the full model"
            )

    def _setup(self, c: Any) -> None:
        from transformers.models.mimi.modeling_mimi import MimiConv1d, MimiConvTranspose1d

        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, c.audio_channels, c.codebook_size
        self.num_quantizers, self.min_levels = c.num_quantizers, c.num_semantic_quantizers
        encoder, decoder = self.model.encoder, self.model.decoder
        stride = encoder.downsample.conv.stride[0] if encoder.downsample is not None else 1
        self.hop_length = math.prod(c.upsampling_ratios) * stride
        if not math.isclose(self.sample_rate / self.hop_length, c.frame_rate):
            raise MmtokError(f"{self.kind}: frame_rate {c.frame_rate} does not match {self.sample_rate} Hz / hop {self.hop_length}")

        def geometry(m: nn.Module) -> Geometry | None:
            if isinstance(m, MimiConv1d):
                return int(m.kernel_size), int(m.stride), int(m.padding_total) if m.causal else int(m.padding_left), False
            if isinstance(m, MimiConvTranspose1d):
                return m.conv.kernel_size[0], m.conv.stride[0], m.padding_left, True
            return None

        # The transformers run at `prod(upsampling_ratios)` samples per token; a token sees at
        # most `sliding_window` tokens back (the whole sequence if there is no window).
        window = c.sliding_window or c.max_position_embeddings
        past, future = encoder_context(encoder.modules(), geometry)
        self._encode_context = (past + window * math.prod(c.upsampling_ratios), future)
        past, future = decoder_context(decoder.modules(), geometry)
        self._decode_context = (past + math.ceil(window / stride), future)

    def levels_for(self, kbps: float | None = None, num_quantizers: int | None = None) -> int:
        levels = super().levels_for(kbps, num_quantizers)
        if levels < self.min_levels:
            raise MmtokError(
                f"Mimi always codes its {self.min_levels} semantic levels; ask for at least {self.min_levels} levels "
                f"({self.kbps(self.min_levels):g} kbps)"
            )
        return levels

    def bitrates(self) -> dict[int, float]:
        return {k: kbps for k, kbps in super().bitrates().items() if k >= self.min_levels}

    def _fresh_codebooks(self) -> None:
        # MimiEuclideanCodebook caches embed_sum / cluster_usage on first use and never
        # refreshes it: after a .to(device), a load_state_dict or save_pretrained(dtype=...)
        # the cache would be stale. Recomputing it is one small division per level.
        for module in self.model.quantizer.modules():
            if hasattr(module, "_embed"):
                module._embed = None

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        self._fresh_codebooks()
        # use_streaming=False: a plain whole-window pass, whatever the config says
        return self.model.encode(x, num_quantizers=levels, use_streaming=False, return_dict=True).audio_codes  # [B,levels,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        self._fresh_codebooks()
        return self.model.decode(codes, return_dict=True).audio_values  # [B,C,t*hop]
