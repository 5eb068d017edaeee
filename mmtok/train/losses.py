"""Image losses beyond plain L1/L2: a PatchGAN discriminator with hinge loss (VQGAN).

A perceptual (LPIPS) term needs pretrained VGG weights from a model hub, which this
toolkit does not assume; the adversarial term is the optional sharpness knob instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PatchDiscriminator(nn.Module):
    """`[B,3,H,W]` -> patch logits `[B,1,H/8,W/8]` (three stride-2 convs, spectral norm)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        c = channels
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, c, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * c, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
