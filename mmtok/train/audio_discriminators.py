"""Audio discriminators by name, combined into one module the training loop treats as one.

- "ms-stft": EnCodec's multi-scale STFT discriminator (`audio_losses.MultiScaleSTFTDiscriminator`),
  complex spectrograms at 3 resolutions.
- "mpd": HiFi-GAN's multi-period discriminator: the waveform folded into `[T/p, p]` for
  periods 2, 3, 5, 7, 11, so each 2-D conv stack sees samples one period apart (pitch
  periodicity), at reduced widths.

Each sub-discriminator returns `(logits, features)`; `AudioDiscriminator.forward` concatenates
their lists, so the hinge and feature-matching losses in `audio_losses` apply unchanged. Which
names a tokenizer kind trains with is the kind's `discriminators` attribute.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mmtok.train.audio_losses import MultiScaleSTFTDiscriminator

weight_norm = nn.utils.parametrizations.weight_norm

PERIODS = (2, 3, 5, 7, 11)


class PeriodDiscriminator(nn.Module):
    """`[B,C,T] -> (logits [B,1,~T/(p*81),p], features)`: reflect-pad T to a multiple of `period`,
    view as `[B,C,T/p,p]`, then 2-D convs with (k,1) kernels strided along T/p only."""

    def __init__(self, channels: int, period: int, widths: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        self.period = period
        convs, cin = [], channels
        for w in widths:
            convs.append(weight_norm(nn.Conv2d(cin, w, (5, 1), (3, 1), padding=(2, 0))))
            cin = w
        convs.append(weight_norm(nn.Conv2d(cin, cin, (5, 1), padding=(2, 0))))
        self.convs = nn.ModuleList(convs)
        self.out = weight_norm(nn.Conv2d(cin, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        pad = (-t) % self.period
        if pad:
            x = F.pad(x, (0, pad), mode="reflect")
        h = x.reshape(b, c, -1, self.period)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            features.append(h)
        return self.out(h), features


class MultiPeriodDiscriminator(nn.Module):
    """`forward(x [B,C,T]) -> list of (logits, features)`, one per period."""

    def __init__(self, channels: int = 1, periods: tuple[int, ...] = PERIODS):
        super().__init__()
        self.discs = nn.ModuleList([PeriodDiscriminator(channels, p) for p in periods])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.discs]


BUILDERS = {"ms-stft": MultiScaleSTFTDiscriminator, "mpd": MultiPeriodDiscriminator}


class AudioDiscriminator(nn.Module):
    """The named discriminators side by side: `forward(x) -> list of (logits, features)` over
    all their sub-discriminators; `discs` lists those (the losses average over it)."""

    def __init__(self, channels: int, names: tuple[str, ...]):
        super().__init__()
        unknown = sorted(set(names) - set(BUILDERS))
        if unknown or not names:
            raise ValueError(f"unknown audio discriminators {unknown}; use some of {sorted(BUILDERS)}")
        self.parts = nn.ModuleList([BUILDERS[n](channels) for n in names])
        self.discs = [d for part in self.parts for d in part.discs]   # plain list: no double registration

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [out for part in self.parts for out in part(x)]
