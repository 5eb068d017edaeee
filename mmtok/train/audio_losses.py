"""Audio codec losses: multi-scale mel + multi-resolution STFT reconstruction terms, and an
MS-STFT discriminator with feature matching (EnCodec), all on `[B,C,T]` waveforms in [-1,1].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.audio_utils import mel_filter_bank

# (n_fft, n_mels): DAC / EnCodec use a handful of scales from ~32 ms down to ~3 ms windows.
MEL_SCALES = ((2048, 80), (1024, 64), (512, 64), (256, 32), (128, 16))
STFT_SCALES = (2048, 1024, 512)


def _magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """`[B,C,T]` -> `[B*C, n_fft//2+1, frames]` STFT magnitude (hann, hop n_fft/4)."""
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, n_fft // 4, window=window, return_complex=True)
    return spec.abs()


class SpectralLoss(nn.Module):
    """`forward(recon, target) -> {"mel": ..., "stft": ...}` (both scalars, mean over scales).

    mel: L1 of log-mel plus L1 of linear mel at each scale; stft: spectral convergence plus
    L1 of log magnitude (Parallel WaveGAN's multi-resolution STFT loss).
    """

    def __init__(self, sample_rate: int):
        super().__init__()
        self.sample_rate = sample_rate
        for n_fft, n_mels in MEL_SCALES:
            fb = mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, sample_rate / 2, sample_rate, norm="slaney", mel_scale="slaney")
            self.register_buffer(f"mel_{n_fft}", torch.from_numpy(fb).float().T, persistent=False)

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        mel, stft = recon.new_zeros(()), recon.new_zeros(())
        mags = {}
        for n_fft in sorted({n for n, _ in MEL_SCALES} | set(STFT_SCALES)):
            mags[n_fft] = (_magnitude(recon, n_fft), _magnitude(target, n_fft))
        for n_fft, _ in MEL_SCALES:
            fb = getattr(self, f"mel_{n_fft}")
            r, t = (fb @ m for m in mags[n_fft])
            mel = mel + F.l1_loss(r.clamp(min=1e-5).log(), t.clamp(min=1e-5).log()) + F.l1_loss(r, t)
        for n_fft in STFT_SCALES:
            r, t = mags[n_fft]
            sc = torch.linalg.norm(t - r) / torch.linalg.norm(t).clamp(min=1e-6)
            stft = stft + sc + F.l1_loss(r.clamp(min=1e-5).log(), t.clamp(min=1e-5).log())
        return {"mel": mel / len(MEL_SCALES), "stft": stft / len(STFT_SCALES)}


class STFTDiscriminator(nn.Module):
    """One scale of EnCodec's MS-STFT discriminator: complex STFT (real, imag per channel)
    -> 2-D convs dilated in time, strided in frequency -> logits, plus every feature map."""

    def __init__(self, channels: int, n_fft: int, width: int = 32):
        super().__init__()
        self.n_fft = n_fft
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList([wn(nn.Conv2d(2 * channels, width, (3, 9), padding=(1, 4)))])
        for d in (1, 2, 4):
            self.convs.append(wn(nn.Conv2d(width, width, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))))
        self.convs.append(wn(nn.Conv2d(width, width, (3, 3), padding=(1, 1))))
        self.out = wn(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        window = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(x.reshape(b * c, t), self.n_fft, self.n_fft // 4, window=window, return_complex=True)
        h = torch.view_as_real(spec).reshape(b, c, *spec.shape[1:], 2)          # [B,C,F,frames,2]
        h = h.permute(0, 1, 4, 3, 2).reshape(b, 2 * c, spec.shape[2], spec.shape[1])  # [B,2C,frames,F]
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """`forward(x [B,C,T]) -> list of (logits, features)`, one per STFT scale."""

    def __init__(self, channels: int = 1, scales: tuple[int, ...] = (2048, 1024, 512), width: int = 32):
        super().__init__()
        self.discs = nn.ModuleList([STFTDiscriminator(channels, n, width) for n in scales])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.discs]


def adversarial_losses(disc: MultiScaleSTFTDiscriminator, recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator side: (hinge adversarial loss, relative L1 feature-matching loss), scale means."""
    fake, real = disc(recon), disc(target)
    adv, fm = recon.new_zeros(()), recon.new_zeros(())
    for (logits, f_fake), (_, f_real) in zip(fake, real):
        adv = adv + F.relu(1 - logits).mean()
        fm = fm + sum(F.l1_loss(a, b.detach()) / b.detach().abs().mean().clamp(min=1e-5) for a, b in zip(f_fake, f_real)) / len(f_fake)
    return adv / len(fake), fm / len(fake)


def discriminator_loss(disc: MultiScaleSTFTDiscriminator, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator (recon is detached)."""
    loss = target.new_zeros(())
    for (real, _), (fake, _) in zip(disc(target), disc(recon.detach())):
        loss = loss + F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return loss / len(disc.discs)
