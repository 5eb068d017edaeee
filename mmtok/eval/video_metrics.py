"""Video quality metrics on `[3,T,H,W]` float videos in [-1,1] (one video at a time; the
[0,1] scale, as image metrics).

- `frame_psnr` / `frame_ssim`: PSNR (dB) and SSIM of every frame, `[T]`; report their mean.
- `temporal_flicker`: mean absolute error of frame-to-frame changes,
  `mean |(y[t+1] - y[t]) - (x[t+1] - x[t])|` on the [0,1] scale (0 for a perfect or a
  uniformly offset copy; grows when a reconstruction shimmers or jumps at latent-frame
  borders even where each frame alone looks fine).
- `clip_scores`: all three for a uint8 original and reconstruction, chunk by chunk, with
  their means (what the video evaluator and benchmark report per clip).
"""

from __future__ import annotations

import statistics

import torch

from mmtok.metrics import psnr, ssim
from mmtok.media.image import to_model


def _frames(video: torch.Tensor) -> torch.Tensor:
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a video [3,T,H,W], got {tuple(video.shape)}")
    return video.transpose(0, 1)


def frame_psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR of each frame, `[T]` dB."""
    return psnr(_frames(x), _frames(y))


def frame_ssim(x: torch.Tensor, y: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """SSIM of each frame, `[T]` (computed `chunk` frames at a time to bound memory)."""
    fx, fy = _frames(x), _frames(y)
    return torch.cat([ssim(fx[i : i + chunk], fy[i : i + chunk]) for i in range(0, fx.shape[0], chunk)])


def flicker_per_transition(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`mean |(y[t+1] - y[t]) - (x[t+1] - x[t])|` for each transition t -> t+1, `[T-1]`, on
    the [0,1] scale (the temporal term of the video training loss, halved). Long videos can
    be scored in chunks of frames that overlap by one."""
    _frames(x), _frames(y)
    error = (y.clamp(-1, 1).diff(dim=1) - x.clamp(-1, 1).diff(dim=1)).abs() / 2
    return error.mean(dim=(0, 2, 3))


def temporal_flicker(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of `flicker_per_transition`; 0.0 for 1-frame videos."""
    return float(flicker_per_transition(x, y).mean()) if x.shape[1] > 1 else 0.0


def clip_scores(x: torch.Tensor, y: torch.Tensor, chunk: int = 8) -> dict:
    """Scores of reconstruction `y` against original `x`, both uint8 `[3,T,H,W]` of one size,
    converted to float `chunk` frames at a time (SSIM runs in float64: bounded memory).

    Returns `psnr_per_frame` / `ssim_per_frame` (`T` floats), `flicker_per_transition`
    (`T-1`), and their means `psnr`, `ssim`, `flicker` (None for a 1-frame clip)."""
    if x.shape != y.shape:
        raise ValueError(f"original {tuple(x.shape)} and reconstruction {tuple(y.shape)} differ in shape")
    frames = x.shape[1]
    psnrs, ssims, flicker = [], [], []
    for start in range(0, frames, chunk):
        stop = min(start + chunk, frames)
        a, b = to_model(x[:, start : stop + 1]), to_model(y[:, start : stop + 1])  # + the next chunk's first frame
        n = stop - start
        psnrs += frame_psnr(a[:, :n], b[:, :n]).tolist()
        ssims += frame_ssim(a[:, :n], b[:, :n], chunk).tolist()
        if a.shape[1] >= 2:
            flicker += flicker_per_transition(a, b).tolist()
    return {
        "psnr": statistics.fmean(psnrs), "ssim": statistics.fmean(ssims), "flicker": statistics.fmean(flicker) if flicker else None,
        "psnr_per_frame": psnrs, "ssim_per_frame": ssims, "flicker_per_transition": flicker,
    }
