"""2-D conv blocks shared by the image tokenizers: residual blocks, resampling, the
patchify stem, and the encoder / decoder stacks built from them.

Cost note: the encoder starts with a pixel-unshuffle "patchify" stem (as Cosmos-Tokenizer
does with its Haar step): a `p`x`p` patch becomes `3p^2` channels, so every conv runs at
1/p of the resolution. That makes training several times cheaper on CPU than a
full-resolution stack, at no loss of information (pixel-unshuffle is a bijection).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelNorm(nn.Module):
    """LayerNorm over channels at each position of `[B,C,H,W]`.

    Chosen over GroupNorm on purpose: GroupNorm pools statistics over the whole image, so
    the codes of a patch would depend on the rest of the picture, on the image size, and on
    how a large image is tiled. A per-position norm keeps the encoder local: codes from
    64-pixel training crops transfer to any size, and tiled encoding matches whole-image
    encoding.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock2d(nn.Module):
    """Norm-SiLU-Conv x2 with a skip; `[B,C_in,H,W] -> [B,C_out,H,W]`."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            ChannelNorm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            ChannelNorm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Downsample2d(nn.Module):
    """Strided 3x3 conv halving H and W (inputs must have even size)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2d(nn.Module):
    """Nearest 2x upsampling then a 3x3 conv (avoids transposed-conv checkerboards)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder2d(nn.Module):
    """`[B,3,H,W]` in [-1,1] -> `[B,out_dim,H/f,W/f]`, f = patch * 2**(len(mults)-1)."""

    def __init__(self, patch: int, channels: int, mults: tuple[int, ...], blocks: int, out_dim: int):
        super().__init__()
        widths = [channels * m for m in mults]
        layers: list[nn.Module] = [nn.PixelUnshuffle(patch), nn.Conv2d(3 * patch * patch, widths[0], 3, padding=1)]
        c = widths[0]
        for level, width in enumerate(widths):
            for _ in range(blocks):
                layers.append(ResBlock2d(c, width))
                c = width
            if level < len(widths) - 1:
                layers.append(Downsample2d(c))
        layers += [ResBlock2d(c, c), ChannelNorm(c), nn.SiLU(), nn.Conv2d(c, out_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder2d(nn.Module):
    """`[B,in_dim,h,w]` -> `[B,3,h*f,w*f]` (unbounded; callers clamp to [-1,1])."""

    def __init__(self, patch: int, channels: int, mults: tuple[int, ...], blocks: int, in_dim: int):
        super().__init__()
        widths = [channels * m for m in reversed(mults)]
        c = widths[0]
        layers: list[nn.Module] = [nn.Conv2d(in_dim, c, 3, padding=1), ResBlock2d(c, c)]
        for level, width in enumerate(widths):
            for _ in range(blocks):
                layers.append(ResBlock2d(c, width))
                c = width
            if level < len(widths) - 1:
                layers.append(Upsample2d(c))
        layers += [ChannelNorm(c), nn.SiLU(), nn.Conv2d(c, 3 * patch * patch, 3, padding=1), nn.PixelShuffle(patch)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
