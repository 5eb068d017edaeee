"""How far a code frame reaches in the input, and a decoded sample in the codes, for a stack
of 1-d convolutions: what chunked coding (`encode_chunked`, the streams) must add around each
chunk so that it codes like the whole signal. Used by the pretrained audio codecs, whose
`_setup` describes each convolution of the transformers model (`Geometry`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from torch import nn

# One convolution as (kernel with dilation, stride, left padding or trim, transposed?); a
# model's `geometry(module)` gives it, or None for modules that are not convolutions.
Geometry = tuple[int, int, int, bool]


def torch_conv_geometry(m: nn.Module) -> Geometry | None:
    """Plain torch `Conv1d` / `ConvTranspose1d` with symmetric padding (DAC, Xcodec's DAC halves)."""
    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
        k = (m.kernel_size[0] - 1) * m.dilation[0] + 1
        return k, m.stride[0], m.padding[0], isinstance(m, nn.ConvTranspose1d)
    return None


def encoder_context(modules: Iterable[nn.Module], geometry: Callable[[nn.Module], Geometry | None]) -> tuple[int, int]:
    """(past, future) input samples one code frame depends on beyond its own hop, for the
    convolutions among `modules` (in forward order; `geometry(m)` describes one or is None).

    A conv with kernel k, stride s and left padding p maps output step j to input steps
    [j*s - p, j*s - p + k - 1]: p steps before its own s, k - s - p after. Steps of a layer
    are worth the product of the strides before it. Residual branches run in parallel with
    identity or 1x1 shortcuts, which add nothing, so the sum over all convs bounds the
    receptive field (measured on a tiny DAC: 2501 computed, about 2100-2400 actual).
    """
    past = future = 0
    scale = 1  # input samples per step of the current layer's input
    for m in modules:
        g = geometry(m)
        if g is None:
            continue
        kernel, stride, left, _ = g
        past += left * scale
        future += max(0, kernel - stride - left) * scale
        scale *= stride
    return past, future


def decoder_context(modules: Iterable[nn.Module], geometry: Callable[[nn.Module], Geometry | None]) -> tuple[int, int]:
    """(past, future) code frames one output sample depends on beyond its own frame, for the
    convolutions among `modules` (stride-1 convs and upsampling transposed convs)."""
    past = future = slack = 0.0
    rate = 1.0  # frames per step of the current layer's input
    for m in modules:
        g = geometry(m)
        if g is None:
            continue
        kernel, stride, left, transposed = g
        if not transposed:
            past += left * rate
            future += max(0, kernel - stride - left) * rate
            continue
        # Output n (after trimming `left`) gets input j for j*s <= n + left <= j*s + k - 1; its
        # own input is n // s. Mapping a range of outputs back rounds by up to one input step
        # per side (`slack`).
        past += max(n // stride + (kernel - 1 - n - left) // stride for n in range(stride)) * rate
        future += max((n + left) // stride - n // stride for n in range(stride)) * rate
        slack += rate
        rate /= stride
    return math.ceil(past + slack), math.ceil(future + slack) if future > 0 else 0
