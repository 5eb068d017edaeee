"""Frame-rate audio front and back ends: a causal framed STFT stem and an inverse-STFT head.

Both replace the sample-rate conv stacks of SEANet: the network in between only ever sees one
column per code frame (`hop` samples), so its cost scales with the frame rate, not 24 kHz.

Time alignment (frame `j` owns samples `[j*hop, (j+1)*hop)`):

- `CausalSTFTStem`: frame `j` is the spectrum of the `n_fft` samples ending at `(j+1)*hop`
  (left zero padding at the start), so an encoded frame never sees future samples.
- `ISTFTHead`: frame `j` predicts a spectrum whose `n_fft`-sample synthesis window starts at
  `(j - lookahead)*hop`; windows are overlap-added. An output sample of frame `i` is the sum of
  head frames `i + lookahead - (n_fft/hop - 1) .. i + lookahead`: `lookahead` future frames
  (the decoder's latency) and `n_fft/hop - 1 - lookahead` past ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CausalSTFTStem(nn.Module):
    """`[B,C,T]` (T a multiple of `hop`) -> features `[B, C*3*(n_fft//2+1), T/hop]`.

    Per bin: log magnitude and the power-law compressed complex value (|X|^0.3 with X's phase,
    the speech-enhancement "compressed spectrum"), so phase is kept but the dynamic range is
    tamed. `history` = samples before the current frame that it depends on.

    The log magnitude (about -11.5 in silence, near 0 at the loudest bins) is shifted and scaled
    by fixed constants to roughly zero mean, unit spread on speech: otherwise its common level
    dominates every frame's projection and an untrained encoder codes all frames alike.
    """

    LOG_CENTER, LOG_SCALE = -7.0, 4.0

    def __init__(self, channels: int, hop: int, n_fft: int):
        super().__init__()
        if n_fft < hop:
            raise ValueError("the stem's n_fft must be at least one hop")
        self.hop, self.n_fft = hop, n_fft
        self.out_channels = channels * 3 * (n_fft // 2 + 1)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.history = n_fft - hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        frames = F.pad(x, (self.history, 0)).unfold(-1, self.n_fft, self.hop)   # [B,C,t,n_fft]
        spec = torch.fft.rfft(frames * self.window, norm="ortho")               # [B,C,t,F]
        mag = spec.abs().clamp(min=1e-5)
        compressed = spec * mag.pow(-0.7)
        feats = torch.cat([(mag.log() - self.LOG_CENTER) / self.LOG_SCALE, compressed.real, compressed.imag], dim=-1)  # [B,C,t,3F]
        return feats.permute(0, 1, 3, 2).reshape(b, self.out_channels, -1)


class ISTFTHead(nn.Module):
    """`[B,D,t] -> [B,C,t*hop]`: per frame a linear map to log magnitude and phase of an
    `n_fft` spectrum per channel (Vocos), inverse FFT, Hann synthesis window, overlap-add.

    See the module docstring for which frames an output sample depends on (`history`,
    `lookahead`, both in frames).
    """

    def __init__(self, dim: int, channels: int, hop: int, n_fft: int, lookahead: int):
        super().__init__()
        if n_fft % hop or not 0 <= lookahead < n_fft // hop:
            raise ValueError("the head's n_fft must be a multiple of hop and 0 <= lookahead < n_fft/hop")
        self.channels, self.hop, self.n_fft = channels, hop, n_fft
        self.bins = n_fft // 2 + 1
        self.proj = nn.Linear(dim, channels * 2 * self.bins)
        window = torch.hann_window(n_fft)
        # Steady-state overlap-add gain of the synthesis window: divide it out so the head's
        # magnitudes mean the same whatever n_fft / hop (Vocos divides by the window envelope).
        self.register_buffer("window", window / window.reshape(-1, hop).sum(0).mean(), persistent=False)
        self.lookahead = lookahead
        self.history = n_fft // hop - 1 - lookahead

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, _, t = h.shape
        # float32 from here on: under autocast the projection comes out in bf16 / fp16, which
        # neither torch.polar nor a 1,280-point FFT accepts (or should).
        out = self.proj(h.transpose(1, 2)).float()                               # [B,t,C*2F]
        out = out.reshape(b, t, self.channels, 2, self.bins).permute(0, 2, 1, 3, 4)  # [B,C,t,2,F]
        mag = out[..., 0, :].exp().clamp(max=1e2)   # Vocos' cap: keeps early training finite
        phase = out[..., 1, :]
        spec = torch.polar(mag, phase)
        frames = torch.fft.irfft(spec, n=self.n_fft, norm="backward") * self.window   # [B,C,t,n_fft]
        frames = frames.reshape(b * self.channels, t, self.n_fft).transpose(1, 2)      # [BC,n_fft,t]
        span = (t - 1) * self.hop + self.n_fft
        y = F.fold(frames, (1, span), (1, self.n_fft), stride=(1, self.hop))           # [BC,1,1,span]
        start = self.lookahead * self.hop   # fold index 0 is sample -lookahead*hop
        # span = (t + n_fft/hop - 1) hops >= start + t hops: the crop is always whole. The last
        # `lookahead` frames' samples lack their successors' windows, as at any signal's end.
        return y.reshape(b, self.channels, span)[..., start : start + t * self.hop]
