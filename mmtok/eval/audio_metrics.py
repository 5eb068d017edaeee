"""Audio quality metrics on `[B,C,T]` float waveforms in [-1,1].

- `si_sdr` (`mmtok.metrics`, training reports it too): scale-invariant SDR in dB, higher is better.
- `mel_distance`: mean L1 distance of log-mel spectrograms over several window sizes (the
  multi-scale mel distance DAC and EnCodec report), lower is better.
- `stoi`: short-time objective intelligibility (pystoi; resampled to 10 kHz inside), 0..1.
- `pesq_wb`: wide-band PESQ at 16 kHz (optional `pesq` package), MOS-LQO 1.0..4.6.
- `dnsmos`: no-reference P.835 SIG / BAK / OVRL (optional `speechmos` + `onnxruntime`;
  `mmtok.eval.dnsmos`), 1..5.
- `clip_scores`: all of them for one clip, in bounded memory however long it is.
- `best_lag` / `shifted`: check that a reconstruction is sample-aligned with its original.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F
from transformers.audio_utils import mel_filter_bank

from mmtok.eval.dnsmos import EVAL_HOP_SECONDS, dnsmos
from mmtok.metrics import si_sdr

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
    x = x.flatten(0, 1).double()
    if x.shape[-1] <= n_fft // 2:  # stft's reflect padding needs more than half a window: pad a very short clip with silence
        x = F.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    spec = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs().pow(2)
    return (fb @ spec).clamp(min=1e-5).log10()


def stoi(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per-item STOI `[B]` on the channel mean (pystoi). NaN where pystoi cannot score an item
    (fewer than 30 non-silent 25.6 ms frames: it would warn and return 1e-5)."""
    import warnings

    from pystoi import stoi as _stoi

    est = estimate.mean(1).double().cpu().numpy()
    ref = reference.mean(1).double().cpu().numpy()
    out = []
    for r, e in zip(ref, est):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(_stoi(r, e, sample_rate, extended=False))
        out.append(math.nan if any("Not enough STFT frames" in str(w.message) for w in caught) else value)
    return torch.tensor(out, dtype=torch.float32)



PESQ_RATE = 16000


def pesq_available() -> bool:
    """Whether the optional `pesq` package is installed (PESQ is reported as unavailable otherwise)."""
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


def pesq_wb(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Per-item wide-band PESQ (ITU-T P.862.2, MOS-LQO 1.0..4.6) `[B]` on the channel mean,
    both resampled to 16 kHz with soxr. NaN where PESQ cannot score an item: a silent
    reference or reconstruction (PESQ aligns levels by dividing by their power), or under
    0.25 s. Needs `sample_rate` >= 16 kHz (wide-band scores 8 kHz of bandwidth) and the
    `pesq` package."""
    import numpy as np
    import soxr
    from pesq import PesqError, pesq

    if sample_rate < PESQ_RATE:
        raise ValueError(f"wide-band PESQ needs audio at {PESQ_RATE} Hz or more, got {sample_rate} Hz")
    out = []
    for est, ref in zip(estimate.mean(1).double().cpu().numpy(), reference.mean(1).double().cpu().numpy()):
        if sample_rate != PESQ_RATE:
            est, ref = (soxr.resample(a, sample_rate, PESQ_RATE, quality="HQ") for a in (est, ref))
        try:
            with np.errstate(invalid="ignore", divide="ignore"):  # pesq divides by the peak: 0/0 on silence
                out.append(float(pesq(PESQ_RATE, ref, est, "wb")))
        except (PesqError, ValueError):  # ValueError: its level alignment divides by zero on a silent signal
            out.append(float("nan"))
    return torch.tensor(out, dtype=torch.float32)


def best_lag(estimate: torch.Tensor, reference: torch.Tensor, max_lag: int) -> int:
    """Lag in samples (+ = `estimate` late) within +-`max_lag` that maximises the
    cross-correlation of the channel means of `estimate` and `reference` `[C,T]`."""
    est, ref = estimate.mean(0).double(), reference.mean(0).double()
    n = est.shape[-1] + ref.shape[-1]
    corr = torch.fft.irfft(torch.fft.rfft(est, n) * torch.fft.rfft(ref, n).conj(), n)
    lags = torch.arange(-max_lag, max_lag + 1)
    return int(lags[corr[lags % n].argmax()])


def shifted(x: torch.Tensor, lag: int) -> torch.Tensor:
    """`x [...,T]` moved `lag` samples earlier (zero-filled), same length."""
    if lag == 0:
        return x
    if lag > 0:
        return F.pad(x[..., lag:], (0, lag))
    return F.pad(x[..., :lag], (-lag, 0))


SCORE_WINDOW_SECONDS = 60.0


def clip_scores(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int, with_pesq: bool = False,
                with_dnsmos: bool = False) -> dict[str, float]:
    """Mel distance, SI-SDR, STOI (wide-band PESQ if `with_pesq`, DNSMOS of `estimate` alone
    if `with_dnsmos`) of one clip `[C,T]`, as floats. Clips longer than `SCORE_WINDOW_SECONDS` are scored in about equal windows of
    at most that length and averaged by duration, so the spectrograms of an hour-long file
    never sit in memory at once; shorter clips are scored whole (as `mmtok compare` does)."""
    length = reference.shape[-1]
    pieces = max(1, math.ceil(length / (SCORE_WINDOW_SECONDS * sample_rate)))
    bounds = [round(i * length / pieces) for i in range(pieces + 1)]
    sums: dict[str, float] = {}
    weights: dict[str, float] = {}
    for start, stop in zip(bounds, bounds[1:]):
        e, r = estimate[None, :, start:stop], reference[None, :, start:stop]
        window = {"mel_distance": float(mel_distance(e, r, sample_rate)[0]), "si_sdr": float(si_sdr(e, r)[0]),
                  "stoi": float(stoi(e, r, sample_rate)[0])}
        if with_pesq:
            window["pesq"] = float(pesq_wb(e, r, sample_rate)[0])
        if with_dnsmos:
            window.update(dnsmos(e[0], sample_rate, EVAL_HOP_SECONDS))
        for key, value in window.items():
            sums.setdefault(key, 0.0)
            weights.setdefault(key, 0.0)
            if math.isfinite(value):  # a silent window has no PESQ / DNSMOS: average over the others
                sums[key] += value * (stop - start)
                weights[key] += stop - start
    return {key: sums[key] / weights[key] if weights[key] else math.nan for key in sums}
