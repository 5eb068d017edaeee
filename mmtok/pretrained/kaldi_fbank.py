"""The w2v-BERT input features of X-Codec 2 and NeuCodec: Kaldi log-mel filter banks, two
10 ms frames stacked per 20 ms, normalised per item.

transformers' `Xcodec2FeatureExtractor` and `NeuCodecFeatureExtractor` compute them with
torchaudio's `compliance.kaldi.fbank`; torchaudio has no build for the torch mmtok runs on,
so `semantic_features` computes the same filter bank with transformers' numpy `audio_utils`
(as its SeamlessM4T feature extractor does). The two extractors differ only in the padding
around the signal (X-Codec 2: half a hop on each side; NeuCodec: none), which is `pad` here.
Checked outside the test suite against both extractors run with torchaudio 2.11.1's own
`kaldi.py` (loaded by path; its compiled part does not load on this torch): the same shapes;
features (unit variance) within 8e-5 of torchaudio's fbank computed in float64, and within
3.4e-3 of the extractors' float32 one (its rounding, in the lowest mel bins). The tiny NeuCodec
of the tests gave codes 100% equal to extractor + `NeuCodecModel.encode` on five clips.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

# The extractors' filter bank: 16 kHz, 25 ms frames every 10 ms, 80 mel bins, pairs of frames
# stacked (stride 2), so one semantic frame per 320 samples.
FBANK_RATE, FRAME_LENGTH, FRAME_SHIFT, MEL_BINS, STACK = 16000, 400, 160, 80, 2
SEMANTIC_HOP = FRAME_SHIFT * STACK


@functools.cache
def _fbank_tables() -> tuple[np.ndarray, np.ndarray]:
    from transformers.audio_utils import mel_filter_bank, window_function

    mel = mel_filter_bank(
        num_frequency_bins=257, num_mel_filters=MEL_BINS, min_frequency=20, max_frequency=FBANK_RATE // 2,
        sampling_rate=FBANK_RATE, norm=None, mel_scale="kaldi", triangularize_in_mel_space=True,
    )
    return mel, window_function(FRAME_LENGTH, "povey", periodic=False)


def semantic_features(x: torch.Tensor, pad: int) -> torch.Tensor:
    """`[B,1,T]` 16 kHz -> `[B,F//2,160]` float32, F = 1 + (T + 2*pad - 400) // 160 filter-bank
    frames: per item, Kaldi log-mel fbank (int16 scale, povey window, pre-emphasis 0.97, DC
    removed, no dither, snip_edges) of the signal with `pad` zeros on each side, normalised per
    mel bin over the item (unbiased variance), pairs of frames stacked (an odd last frame dropped).

    X-Codec 2 passes pad = 160 (T a multiple of 320 gives T/320 frames); NeuCodec pad = 0
    (T = (n+1)*320 gives n frames)."""
    from transformers.audio_utils import spectrogram

    mel, window = _fbank_tables()
    items = []
    for wave in x[:, 0].double().cpu().numpy():
        wave = np.pad(wave, (pad, pad))
        fbank = spectrogram(
            wave * 2**15, window, frame_length=FRAME_LENGTH, hop_length=FRAME_SHIFT, fft_length=512, power=2.0,
            center=False, preemphasis=0.97, mel_filters=mel, log_mel="log", mel_floor=1.192092955078125e-07,
            remove_dc_offset=True,
        ).T  # [frames, 80]
        fbank = (fbank - fbank.mean(0)) / np.sqrt(fbank.var(0, ddof=1) + 1e-7)
        frames = len(fbank) // STACK * STACK
        items.append(fbank[:frames].reshape(frames // STACK, MEL_BINS * STACK))
    return torch.from_numpy(np.stack(items)).to(x.device, torch.float32)
