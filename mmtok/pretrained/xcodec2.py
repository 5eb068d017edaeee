"""X-Codec 2 (`transformers.Xcodec2Model`) behind mmtok's audio contract: kind hf-xcodec2.

The model's `encode` takes the waveform and, for its w2v-BERT semantic encoder, log-mel
filter banks that transformers' `Xcodec2FeatureExtractor` computes with torchaudio's Kaldi
fbank. torchaudio has no build for the torch mmtok runs on, so `semantic_features` computes
the same Kaldi fbank with transformers' numpy `audio_utils` (as its SeamlessM4T feature
extractor does). Not checked here against torchaudio (it cannot be installed); codes are
exactly the model's own `encode` given these features.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from mmtok.errors import MmtokError
from mmtok.pretrained.audio_codec import PretrainedAudioCodec
from mmtok.tokenizer import register_kind

# Xcodec2FeatureExtractor's filter bank: 16 kHz, 25 ms frames every 10 ms, 80 mel bins, pairs
# of frames stacked (stride 2), so one semantic frame per 320 samples.
FBANK_RATE, FRAME_LENGTH, FRAME_SHIFT, MEL_BINS, STACK = 16000, 400, 160, 80, 2


@functools.cache
def _fbank_tables() -> tuple[np.ndarray, np.ndarray]:
    from transformers.audio_utils import mel_filter_bank, window_function

    mel = mel_filter_bank(
        num_frequency_bins=257, num_mel_filters=MEL_BINS, min_frequency=20, max_frequency=FBANK_RATE // 2,
        sampling_rate=FBANK_RATE, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True,
    )
    return mel, window_function(FRAME_LENGTH, "povey", periodic=False)


def semantic_features(x: torch.Tensor, hop_length: int) -> torch.Tensor:
    """`[B,1,T]` 16 kHz, T a multiple of `hop_length` (320) -> `[B,T/320,160]` float32: per
    item, Kaldi log-mel fbank (int16 scale, povey window, pre-emphasis 0.97, DC removed, no
    dither) of the signal padded by hop/2 on each side, normalised per mel bin over the item
    (unbiased variance), pairs of frames stacked; what Xcodec2FeatureExtractor computes."""
    from transformers.audio_utils import spectrogram

    mel, window = _fbank_tables()
    items = []
    for wave in x[:, 0].double().cpu().numpy():
        wave = np.pad(wave, (hop_length // 2, hop_length // 2))
        fbank = spectrogram(
            wave * 2**15, window, frame_length=FRAME_LENGTH, hop_length=FRAME_SHIFT, fft_length=512, power=2.0,
            center=False, preemphasis=0.97, mel_filters=mel, log_mel="log", mel_floor=1.192092955078125e-07,
            remove_dc_offset=True,
        ).T  # [frames, 80]
        fbank = (fbank - fbank.mean(0)) / np.sqrt(fbank.var(0, ddof=1) + 1e-7)
        frames = len(fbank) // STACK * STACK
        items.append(fbank[:frames].reshape(frames // STACK, MEL_BINS * STACK))
    return torch.from_numpy(np.stack(items)).to(x.device, torch.float32)


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
        if hf_config.sampling_rate != FBANK_RATE or hf_config.hop_length != FRAME_SHIFT * STACK:
            raise MmtokError(
                f"{source}: this X-Codec 2 config (sampling_rate {hf_config.sampling_rate}, hop {hf_config.hop_length}) does not "
                f"line up with its semantic features ({FBANK_RATE} Hz, one per {FRAME_SHIFT * STACK} samples); mmtok needs both"
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
        features = semantic_features(x, self.hop_length).to(x.dtype)
        return self.model.encode(x, features, return_dict=True).audio_codes  # [B,1,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes, return_dict=True).audio_values  # [B,1,t*hop]
