"""Pretrained audio codecs from transformers (EnCodec, DAC, Mimi, WavTokenizer, X-Codec,
X-Codec 2, NeuCodec) behind mmtok's audio contract.

    tok = mmtok.load("hf:facebook/encodec_24khz")   # a hub id, hf:/local/dir, or a local folder
    codes = tok.encode(x)        # [B,C,T] float in [-1,1] at tok.sample_rate -> [B,K,ceil(T/hop)] int64
    x2 = tok.decode(codes)       # -> [B,C,t*output_hop_length] float in [-1,1] at tok.output_sample_rate

One kind per model (a module each); codes are exactly what the model's own `encode` returns
when called with the matching explicit number of levels:

    kind             transformers       levels                                   frames/s
    hf-encodec       EncodecModel       those of config.target_bandwidths         sampling_rate / prod(upsampling_ratios)
    hf-dac           DacModel           1 .. n_codebooks                          sampling_rate / prod(downsampling_ratios)
    hf-mimi          MimiModel          num_semantic_quantizers .. num_quantizers config.frame_rate
    hf-wavtokenizer  WavTokenizerModel  1 (one codebook of 4096)                  sampling_rate / prod(upsampling_ratios)
    hf-xcodec        XcodecModel        those of config.target_bandwidths         sample_rate / prod(acoustic downsampling_ratios)
    hf-xcodec2       Xcodec2Model       1 (one FSQ codebook of 65,536)            sampling_rate / prod(downsampling_ratios)
    hf-neucodec      NeuCodecModel      1 (one FSQ codebook of 65,536)            input_sampling_rate / prod(downsampling_ratios)

transformers gives these models a common base class (`PreTrainedAudioTokenizerBase`), but it
only declares `encode` / `decode`: their arguments (bandwidth, n_quantizers, num_quantizers,
none) and outputs differ, so each family keeps a small `_encode` / `_decode`, and everything
else (framing, padding, chunking, bitrates by target bandwidth, the model card) lives here.

Chunked coding (`encode_chunked` / `decode_chunked` / the streams) is exact for DAC (and
X-Codec's decoder), whose convolutions have a finite receptive field, and approximate where
an LSTM or attention sees the whole signal (EnCodec, Mimi, WavTokenizer, X-Codec's encoder,
X-Codec 2, NeuCodec): see each class, and benchmarks/results/pretrained_guarantees.md for measured
agreement.

Not supported: EnCodec configs that normalise the input or code it in overlapping chunks
(`normalize=True` or `chunk_length_s` set, i.e. facebook/encodec_48khz). Their decoder needs
a loudness scale per chunk besides the codes, which a token stream cannot carry, so loading
one raises MmtokError. HiggsAudioV2TokenizerModel is refused (it needs torchaudio; xcodec.py).
NeuCodec codes 16 kHz and decodes 24 kHz: its `output_sample_rate` (see `mmtok.audio.base`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mmtok.audio.base import AudioTokenizer
from mmtok.errors import MmtokError
from mmtok.pretrained.base import PretrainedAdapter, PretrainedConfig, by_model_type
from mmtok.pretrained.registry import families, load
from mmtok.pretrained.spec import HF_PREFIX, peek_model_type


@dataclass(frozen=True)
class PretrainedAudioConfig(PretrainedConfig):
    """A transformers codec as an mmtok config: its `model_type` ("encodec", "dac", "mimi") and
    its transformers config as canonical JSON (see `mmtok.pretrained.base`)."""


class PretrainedAudioCodec(PretrainedAdapter, AudioTokenizer):
    """Base of the transformers audio codecs: frames in, codes out, aligned to the hop.

    Subclasses name the transformers class and implement `_setup` (the audio facts and the
    convolutional context, see `mmtok.pretrained.receptive_field`), `_encode` and `_decode`.
    """

    config_class = PretrainedAudioConfig

    # (past, future) context set by `_setup`: encoder in samples, decoder in frames
    _encode_context: tuple[int, int] = (0, 0)
    _decode_context: tuple[int, int] = (0, 0)

    @property
    def encode_history(self) -> int:
        return self._encode_context[0]

    @property
    def encode_lookahead(self) -> int:
        return self._encode_context[1]

    @property
    def decode_history(self) -> int:
        return self._decode_context[0]

    @property
    def decode_lookahead(self) -> int:
        return self._decode_context[1]

    # -- bitrates ---------------------------------------------------------------------
    # levels -> the bandwidth (kbps) that names them, for families whose models only code the
    # bitrates their config lists (EnCodec, Xcodec: `target_bandwidths`); set by `_setup`.
    # Empty: any number of levels 1..num_quantizers, at the bitrate the codes carry.
    _bandwidths: dict[int, float] = {}

    def levels_for(self, kbps: float | None = None, num_quantizers: int | None = None) -> int:
        if not self._bandwidths:
            return super().levels_for(kbps, num_quantizers)
        if kbps is not None and num_quantizers is None:
            for levels, bandwidth in self._bandwidths.items():
                if math.isclose(kbps, bandwidth, rel_tol=1e-6):
                    return levels
            raise MmtokError(f"{kbps:g} kbps is not a bitrate of this {self.hf_model_class}; choose --kbps from {self._choices()}")
        levels = super().levels_for(kbps, num_quantizers)
        if levels not in self._bandwidths:
            raise MmtokError(f"--num-quantizers {levels} is not offered by this {self.hf_model_class}; choose from {self._choices()}")
        return levels

    def _choices(self) -> str:
        return ", ".join(f"{bandwidth:g} kbps ({levels} levels)" for levels, bandwidth in sorted(self._bandwidths.items()))

    def bitrates(self) -> dict[int, float]:
        if not self._bandwidths:
            return super().bitrates()
        return {levels: float(bandwidth) for levels, bandwidth in sorted(self._bandwidths.items())}

    def _bandwidth(self, levels: int) -> float:
        """The bandwidth argument that makes the model code `levels` levels."""
        bandwidth = self._bandwidths.get(levels)
        if bandwidth is None:  # callers go through levels_for; this guards direct use
            raise MmtokError(f"{self.hf_model_class} cannot code {levels} levels; choose from {self._choices()}")
        return bandwidth

    # -- coding -----------------------------------------------------------------------
    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_frames(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        """`[B,C,T]`, T a multiple of `hop_length` -> codes `[B,levels,T/hop]` int64 in [0, codebook_size)."""
        codes = self._encode(x.to(self._dtype), levels)
        # All three models pad their strided convolutions to whole frames, so T = n*hop gives
        # exactly n frames. A config that does not would misalign codes and audio: refuse.
        frames = x.shape[-1] // self.hop_length
        if codes.shape != (x.shape[0], levels, frames):
            raise MmtokError(
                f"{self.kind}: the model coded {x.shape[-1]} samples as {tuple(codes.shape)}, not "
                f"[{x.shape[0]},{levels},{frames}]; this config's frames do not line up with its hop length"
            )
        return codes.long()

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,k,t]` -> audio `[B,C,t*output_hop_length]` float32 (unclamped)."""
        audio = self._decode(codes).float()
        # DAC with odd strides (e.g. the 24 kHz model, ratios 2,4,5,8) decodes a few samples
        # short: its transposed convolutions trim ceil(s/2) samples on each side. The missing
        # samples are at the end, so pad them with silence to keep audio and frames aligned.
        length = codes.shape[-1] * self.output_hop_length
        if audio.shape[-1] < length:
            return nn.functional.pad(audio, (0, length - audio.shape[-1]))
        return audio[..., :length]

    # -- model card -------------------------------------------------------------------
    def _card_title(self) -> str:
        return f"{self.hf_model_class} audio codec (mmtok kind `{self.kind}`)"

    def _card_facts(self) -> list[str]:
        rates = ", ".join(f"{k} levels = {kbps:g} kbps" for k, kbps in self.bitrates().items())
        rate = f"{self.sample_rate} Hz"
        if self.output_sample_rate != self.sample_rate:
            rate = f"{self.sample_rate} Hz in, {self.output_sample_rate} Hz out"
        return [
            f"sample rate: {rate}, {self.channels} channel(s), {self.frame_rate:g} frames/s",
            f"{self.codebook_size} codes per level; {rates}",
        ]


AUDIO_WHAT = "pass a folder saved by transformers (an audio codec: EnCodec, DAC, Mimi ...), or hf:ORG/NAME"


def load_pretrained(spec: str | Path) -> PretrainedAudioCodec:
    """Load a transformers audio codec (EnCodec, DAC, Mimi, ...), in eval mode, float32; like
    `mmtok.load`, but anything else is refused.

    `spec`: "hf:ORG/NAME" (a hub id, e.g. hf:facebook/encodec_24khz), "hf:/local/folder", or a
    local folder saved by transformers' or an adapter's `save_pretrained`. `name_or_path` is
    set as `mmtok.pretrained.spec.Source` says, so token files can find the tokenizer again.
    Failures raise MmtokError.
    """
    return load(spec, families("audio"), AUDIO_WHAT, "a supported audio codec")


def is_pretrained_spec(spec: str | Path) -> bool:
    """True for "hf:..." specs and for local transformers folders of an audio codec (config.json
    with such a `model_type` and no mmtok `format_version`)."""
    return str(spec).startswith(HF_PREFIX) or peek_model_type(spec) in by_model_type(families("audio"))
