"""The clips a video evaluation measures: read as uint8, capped in length, and cut into
same-shaped short crops for the determinism check.

    reader = open_clip(path)                 # checks the file, nothing decoded yet
    x = read_clip(reader, frames_to_read(reader))     # uint8 [3,T,H,W], the first T frames
    crops = cut_crops(x, length=5, size=64, count=3, rng=random.Random(0))   # [3,3,5,64,64]

Clips are held whole while they are measured (the original, one reconstruction at a time
and H.264's yuv420p copy: about 7.5 bytes per pixel), so a clip is measured on its first
`MAX_FRAMES` frames, fewer for large frames so that it stays under `MAX_PIXELS` pixels.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from mmtok.media.image import from_model
from mmtok.media.video import VideoFrames

MAX_FRAMES = 300            # 10-25 s of video
MAX_PIXELS = 1 << 27        # 134 M pixels: 64 frames of 1080p, 145 of 720p, ~1 GB while measured


def open_clip(path: str | Path) -> VideoFrames:
    """The file's frames at its own size and rate (validated now; MmtokError if it is not a video)."""
    return VideoFrames(path)


def frames_to_read(reader: VideoFrames, max_frames: int = MAX_FRAMES, max_pixels: int = MAX_PIXELS, min_frames: int = 1) -> int:
    """How many leading frames of `reader` are measured: all, or `max_frames`, or as many as
    fit in `max_pixels` (never fewer than `min_frames`, e.g. one latent frame group)."""
    fit = max(max_pixels // (reader.width * reader.height), min_frames)
    return min(reader.num_frames, max_frames, fit)


def read_clip(source: str | Path | VideoFrames, frames: int | None = None) -> torch.Tensor:
    """The first `frames` frames (default all) as uint8 `[3,T,H,W]`, filled block by block
    (no whole-clip float copy)."""
    reader = source if isinstance(source, VideoFrames) else open_clip(source)
    total = reader.num_frames if frames is None else min(frames, reader.num_frames)
    out = torch.empty((3, total, reader.height, reader.width), dtype=torch.uint8)
    filled = 0
    for block in reader:
        n = min(block.shape[1], total - filled)
        out[:, filled : filled + n] = from_model(block[:, :n])
        filled += n
        if filled == total:
            break  # the reader's generator closes the file
    return out[:, :filled]


def cut_crops(x: torch.Tensor, length: int, size: int, count: int, rng: random.Random) -> torch.Tensor:
    """`count` crops `[count,3,length,size,size]` of uint8 `x [3,T,H,W]` at random times and
    places (`rng`); empty `[0,...]` if `x` is shorter than `length` or smaller than `size`."""
    _, frames, height, width = x.shape
    if frames < length or height < size or width < size or count < 1:
        return torch.empty((0, 3, length, size, size), dtype=torch.uint8)
    crops = []
    for _ in range(count):
        t, top, left = rng.randint(0, frames - length), rng.randint(0, height - size), rng.randint(0, width - size)
        crops.append(x[:, t : t + length, top : top + size, left : left + size])
    return torch.stack(crops)
