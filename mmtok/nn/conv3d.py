"""3-D conv blocks for the causal video tokenizer (MAGVIT-v2 / Cosmos style).

Video tensors are `[B,C,T,H,W]`. Every temporal operation is causal: an output frame only
sees input frames at or before it, and the sequence start is padded by repeating the first
frame. With stride-2 temporal steps on `1 + 2m` frames this gives `1 + m` outputs whose
first one has seen frame 0 alone, so a clip of `1 + 4n` frames becomes `1 + n` latent
frames and a single image is a valid 1-frame video.

Long videos are coded in windows that carry state (`carrying`): each causal layer keeps the
last input frames its next output needs and, in the next window, starts from them instead of
padding. Windowed coding then computes exactly what whole-video coding computes, with no
recomputed context and memory bounded by the window (see `mmtok.video.base`).

Cost note: as in the image encoder, a pixel-unshuffle stem moves work to 1/p resolution, and
the full-rate levels use per-frame (1x3x3) kernels; temporal mixing happens in the strided
steps and at the lower levels, where it is cheap.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch
from torch import nn
from torch.nn import functional as F

TRANSITIONS = ("s", "t", "st")  # halve space, time, or both between two levels

# The state of the stream being coded, {layer: what it carries}; None when not streaming.
# A context variable (not a module attribute) so two streams through one model never mix.
_STREAM: ContextVar[dict | None] = ContextVar("mmtok_video_stream", default=None)


@contextlib.contextmanager
def carrying(state: dict):
    """Inside the block, causal layers continue the stream whose state is `state` (empty at
    the start of a video) and update it, so consecutive calls on consecutive windows equal
    one call on the whole video. Windows after the first must hold whole latent frames."""
    token = _STREAM.set(state)
    try:
        yield
    finally:
        _STREAM.reset(token)


class ChannelNorm3d(nn.Module):
    """LayerNorm over channels at each position of `[B,C,T,H,W]`.

    Per-position statistics keep the model causal in time and local in space (GroupNorm
    would pool over all frames, so a frame's codes would depend on later frames and on the
    window a long video is cut into).
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        shape = (1, -1, 1, 1, 1)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)


class CausalConv3d(nn.Module):
    """`nn.Conv3d` padded causally in time (first frame repeated `kt-1` times) and 'same'
    in space. With temporal stride 2, `1 + 2m` frames give `1 + m`."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3), stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        kt, kh, kw = kernel
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=(0, kh // 2, kw // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kt, st = self.kernel[0], self.stride[0]
        state = _STREAM.get()
        carried = state.get(self) if state is not None else None
        if carried is not None:  # continue the stream: the previous window's last frames
            x = torch.cat([carried, x], dim=2)
        elif kt > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, kt - 1, -1, -1), x], dim=2)
        if state is not None:  # keep what the next output needs: frames from its window start on
            outputs = (x.shape[2] - kt) // st + 1
            state[self] = x[:, :, outputs * st :].clone()  # a view would keep the whole window alive
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled():
            # PyTorch routes batch-1 inputs with few channels x frames x rows to its slow native
            # conv3d (a size heuristic made for 2-D); oneDNN is ~5x faster there (measured on
            # 64x3x90x160), and encoding one video then runs the same kernels as a batch.
            c = self.conv
            return torch.mkldnn_convolution(x.contiguous(), c.weight, c.bias, c.padding, c.stride, c.dilation, 1)
        return self.conv(x)


class ResBlock3d(nn.Module):
    """Norm-SiLU-Conv x2 with a skip; `[B,C_in,T,H,W] -> [B,C_out,T,H,W]`. `kt=1` makes it
    per-frame (used at full frame rate, where 3-D kernels cost most)."""

    def __init__(self, c_in: int, c_out: int, kt: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            ChannelNorm3d(c_in), nn.SiLU(), CausalConv3d(c_in, c_out, (kt, 3, 3)),
            ChannelNorm3d(c_out), nn.SiLU(), CausalConv3d(c_out, c_out, (kt, 3, 3)),
        )
        self.skip = nn.Identity() if c_in == c_out else nn.Conv3d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Downsample3d(CausalConv3d):
    """Strided causal conv halving space ("s"), time ("t") or both ("st")."""

    def __init__(self, channels: int, how: str):
        st = 2 if "t" in how else 1
        ss = 2 if "s" in how else 1
        super().__init__(channels, channels, (3 if st > 1 else 1, 3, 3), (st, ss, ss))


class Upsample3d(nn.Module):
    """Inverse of `Downsample3d`: nearest 2x in space and/or causal 2x in time, then a conv.

    Causal time upsampling repeats every frame twice and drops the first copy, so `1 + m`
    frames become `1 + 2m` and the first frame stays alone (Cosmos / MAGVIT-v2)."""

    def __init__(self, channels: int, how: str):
        super().__init__()
        self.time, self.space = "t" in how, "s" in how
        self.conv = CausalConv3d(channels, channels, (3 if self.time else 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time:
            state = _STREAM.get()
            first_window = state is None or self not in state
            x = x.repeat_interleave(2, dim=2)[:, :, int(first_window) :]  # only the video's first frame stays single
            if state is not None:
                state[self] = True
        if self.space:
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
        return self.conv(x)


def _frames_to_batch(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w), t


def _batch_to_frames(x: torch.Tensor, t: int) -> torch.Tensor:
    bt, c, h, w = x.shape
    return x.reshape(bt // t, t, c, h, w).transpose(1, 2)


class Encoder3d(nn.Module):
    """`[B,3,T,H,W]` in [-1,1], T = 1 + 4n -> `[B,out_dim,1+n,H/f,W/f]`.

    `downsample` lists the transition between consecutive levels ("s", "t" or "st"), so
    `len(downsample) == len(mults) - 1`; f = patch * 2**(number of "s"), the temporal factor
    is 2**(number of "t"). The first `frame_levels` levels use per-frame kernels.
    """

    def __init__(self, patch: int, channels: int, mults: tuple[int, ...], blocks: int, out_dim: int,
                 downsample: tuple[str, ...], frame_levels: int):
        super().__init__()
        self.patch = patch
        widths = [channels * m for m in mults]
        layers: list[nn.Module] = [CausalConv3d(3 * patch * patch, widths[0], (1, 3, 3))]
        c = widths[0]
        for level, width in enumerate(widths):
            kt = 1 if level < frame_levels else 3
            for _ in range(blocks):
                layers.append(ResBlock3d(c, width, kt))
                c = width
            if level < len(widths) - 1:
                layers.append(Downsample3d(c, downsample[level]))
        layers += [ResBlock3d(c, c), ChannelNorm3d(c), nn.SiLU(), nn.Conv3d(c, out_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, t = _frames_to_batch(x)
        return self.net(_batch_to_frames(F.pixel_unshuffle(frames, self.patch), t))


class Decoder3d(nn.Module):
    """`[B,in_dim,1+n,h,w]` -> `[B,3,1+4n,h*f,w*f]` (unbounded; callers clamp to [-1,1])."""

    def __init__(self, patch: int, channels: int, mults: tuple[int, ...], blocks: int, in_dim: int,
                 downsample: tuple[str, ...], frame_levels: int):
        super().__init__()
        self.patch = patch
        widths = [channels * m for m in mults]
        c = widths[-1]
        layers: list[nn.Module] = [CausalConv3d(in_dim, c, (3, 3, 3)), ResBlock3d(c, c)]
        for level in reversed(range(len(widths))):
            kt = 1 if level < frame_levels else 3
            for _ in range(blocks):
                layers.append(ResBlock3d(c, widths[level], kt))
                c = widths[level]
            if level > 0:
                layers.append(Upsample3d(c, downsample[level - 1]))
        layers += [ChannelNorm3d(c), nn.SiLU(), CausalConv3d(c, 3 * patch * patch, (1, 3, 3))]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        frames, t = _frames_to_batch(self.net(z))
        return _batch_to_frames(F.pixel_shuffle(frames, self.patch), t)
