"""Audio quality metrics on `[B,C,T]` float waveforms in [-1,1].

- `si_sdr`: scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), higher is better.
- `mel_distance`: mean L1 distance of log-mel spectrograms over several window sizes (the
  multi-scale mel distance DAC and EnCodec report), lower is better.
- `stoi`: short-time objective intelligibility (pystoi; resampled to 10 kHz inside), 0..1.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from transformers.audio_utils import mel_filter_bank


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-item SI-SDR in dB, `[B]` (channels and time flattened; both zero-meaned)."""
    est = estimate.flatten(1).double()
    ref = reference.flatten(1).double()
    est, ref = est - est.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True)
    scale = (est * ref).sum(1, keepdim=True) / (ref.pow(2).sum(1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return (10 * torch.log10((target.pow(2).sum(1) + eps) / (noise.pow(2).sum(1) + eps))).float()


MEL_DISTANCE_SCALES = ((2048, 80), (512, 80), (256, 40))


def mel_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per-item multi-scale log-mel L1 distance `[B]` (log10 of power mel, floor 1e-5)."""
    out = torch.zeros(estimate.shape[0], dtype=torch.float64)
    for n_fft, n_mels in MEL_DISTANCE_SCALES:
        fb = mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, sample_rate / 2, sample_rate, norm="slaney", mel_scale="slaney")
        fb = torch.from_numpy(fb).double().T
        est, ref = (_log_mel(x, n_fft, fb) for x in (estimate, reference))
        out += F.l1_loss(est, ref, reduction="none").reshape(estimate.shape[0], -1).mean(1)
    return (out / len(MEL_DISTANCE_SCALES)).float()


def _log_mel(x: torch.Tensor, n_fft: int, fb: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(x.flatten(0, 1).double(), n_fft, n_fft // 4, window=window, return_complex=True).abs().pow(2)
    return (fb @ spec).clamp(min=1e-5).log10()


def stoi(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per-item STOI `[B]` on the channel mean (pystoi)."""
    from pystoi import stoi as _stoi

    est = estimate.mean(1).double().cpu().numpy()
    ref = reference.mean(1).double().cpu().numpy()
    return torch.tensor([float(_stoi(r, e, sample_rate, extended=False)) for r, e in zip(ref, est)], dtype=torch.float32)

