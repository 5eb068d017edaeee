"""Causal 1-D conv blocks and the SEANet encoder / decoder of SoundStream and EnCodec.

Everything is causal (output step `j` sees inputs up to the end of its own stride window,
never later ones) and has no normalisation over time (weight norm only), so the output for
a stretch of audio depends on a bounded stretch of history and nothing else. That is what
makes chunked and streaming coding exact: give a chunk `history` samples of real left
context and its outputs equal those of the whole-signal pass (see `audio/base.py`).

Lengths: the encoder needs `T` to be a multiple of the hop (the product of `ratios`) and
maps `[B,C,T] -> [B,D,T/hop]`; the decoder maps `[B,D,t] -> [B,C,t*hop]`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

weight_norm = nn.utils.parametrizations.weight_norm


class CausalConv1d(nn.Module):
    """Conv1d padded on the left only: `[B,Cin,L] -> [B,Cout,L/stride]` (L a multiple of stride).

    `history` = input steps before the current stride window that an output depends on.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(cin, cout, kernel, stride, dilation=dilation))
        self.pad = (kernel - 1) * dilation - (stride - 1)
        self.history = self.pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.pad, 0)))


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d with its overhang trimmed on the right: `[B,Cin,L] -> [B,Cout,L*stride]`.

    `history` = earlier input steps an output sample depends on.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv = weight_norm(nn.ConvTranspose1d(cin, cout, kernel, stride))
        self.trim = kernel - stride
        self.history = math.ceil((kernel - 1) / stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., : y.shape[-1] - self.trim] if self.trim else y


class ResUnit1d(nn.Module):
    """ELU -> dilated k=3 conv (to dim/2) -> ELU -> 1x1 conv (back to dim), plus the input."""

    def __init__(self, dim: int, dilation: int):
        super().__init__()
        self.conv1 = CausalConv1d(dim, dim // 2, 3, dilation=dilation)
        self.conv2 = CausalConv1d(dim // 2, dim, 1)
        self.history = self.conv1.history

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class SEANetEncoder(nn.Module):
    """`[B,C,T] -> [B,D,T/hop]`, T a multiple of `hop = prod(ratios)`.

    Channels double at each downsampling step (strides = `ratios` reversed, as in EnCodec).
    `history` is the number of past samples the last frame depends on beyond its own hop.
    """

    def __init__(self, channels: int, dimension: int, n_filters: int, ratios: tuple[int, ...], dilations: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = [CausalConv1d(channels, n_filters, 7)]
        history, rate, width = layers[0].history, 1, n_filters  # rate: input samples per step
        for ratio in reversed(ratios):
            for d in dilations:
                layers.append(ResUnit1d(width, d))
                history += layers[-1].history * rate
            layers += [nn.ELU(), CausalConv1d(width, 2 * width, 2 * ratio, stride=ratio)]
            history += layers[-1].history * rate
            rate, width = rate * ratio, 2 * width
        layers += [nn.ELU(), CausalConv1d(width, dimension, 7)]
        self.history = history + layers[-1].history * rate
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SEANetDecoder(nn.Module):
    """`[B,D,t] -> [B,C,t*hop]`, the mirror of `SEANetEncoder`.

    `history` is the number of past frames (latent steps) an output sample depends on.
    """

    def __init__(self, channels: int, dimension: int, n_filters: int, ratios: tuple[int, ...], dilations: tuple[int, ...]):
        super().__init__()
        width = n_filters * 2 ** len(ratios)
        hop = math.prod(ratios)
        layers: list[nn.Module] = [CausalConv1d(dimension, width, 7)]
        history, rate = layers[0].history * hop, hop  # in output samples; rate: samples per step
        for ratio in ratios:
            layers += [nn.ELU(), CausalConvTranspose1d(width, width // 2, 2 * ratio, stride=ratio)]
            history += layers[-1].history * rate
            rate, width = rate // ratio, width // 2
            for d in dilations:
                layers.append(ResUnit1d(width, d))
                history += layers[-1].history * rate
        layers += [nn.ELU(), CausalConv1d(width, channels, 7)]
        history += layers[-1].history * rate
        self.history = math.ceil(history / hop)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
