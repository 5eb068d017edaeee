"""How `mmtok eval` codes a clip with each method it measures (`code_clip`).

- A video tokenizer codes it as `mmtok encode` / `mmtok decode` do (`roundtrip`): in windows
  of latent frames with carried state, so memory holds one window of activations whatever
  the clip's length; the decoded frames are rounded to uint8 and cropped to the original size.
- An image tokenizer codes every frame alone (`PerFrame`): the baseline a video tokenizer must
  beat to earn its temporal compression (`mmtok eval -t VIDEO_TOK -t IMAGE_TOK --data clips/`).
  Frames are coded in batches as `mmtok encode` codes images (padded to a multiple of the
  factor, decoded, cropped back), so its bits are `T x h x w x log2(K)` for a `T`-frame clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from mmtok.image.base import ImageTokenizer
from mmtok.media.image import from_model, to_model
from mmtok.video.base import VideoTokenizer
from mmtok.video.files import BLOCK_FRAMES, WINDOW

FRAME_BATCH = 8   # frames an image tokenizer codes together: memory of 8 images' activations


@dataclass
class Roundtrip:
    """`codes [t,h,w]` int64, `recon` uint8 `[3,T,H,W]`, seconds spent encoding / decoding."""

    codes: torch.Tensor
    recon: torch.Tensor
    encode_s: float
    decode_s: float


@torch.no_grad()
def roundtrip(tok: VideoTokenizer, x: torch.Tensor, window: int = WINDOW) -> Roundtrip:
    """uint8 `[3,T,H,W]` through the tokenizer the way the file path codes it: frames pushed
    `BLOCK_FRAMES` at a time into a stream encoder, codes decoded `window` latent frames at a
    time with carried state, each window rounded to uint8 and cropped to the original size."""
    _, frames, height, width = x.shape
    start = time.perf_counter()
    encoder = tok.stream_encoder(window)
    parts = [encoder.push(to_model(x[None, :, i : i + BLOCK_FRAMES])) for i in range(0, frames, BLOCK_FRAMES)]
    codes = torch.cat([*parts, encoder.flush()], dim=1)[0].cpu()
    middle = time.perf_counter()
    decoder, recon, done = tok.stream_decoder(window), torch.empty_like(x), 0
    for i in range(0, codes.shape[0], window):
        block = decoder.push(codes[None, i : i + window])[0, :, : frames - done, :height, :width]
        recon[:, done : done + block.shape[1]] = from_model(block.cpu())
        done += block.shape[1]
    return Roundtrip(codes, recon, middle - start, time.perf_counter() - middle)


class PerFrame:
    """`tok` (an image tokenizer) as a per-frame video coder: codes `[T,h,w]` for `[3,T,H,W]`."""

    temporal_downsample = 1      # one code grid per frame
    first_frame_alone = False

    def __init__(self, tok: ImageTokenizer):
        self.tok = tok
        self.kind = f"{tok.kind} (per frame)"
        self.codebook_size = tok.codebook_sizes[0]
        self.spatial_downsample = tok.downsample

    @property
    def fingerprint(self) -> str:
        return self.tok.fingerprint

    def describe(self) -> dict[str, Any]:
        return {**self.tok.describe(), "kind": self.kind, "coded": "each frame alone, as an image"}

    def tokens_per_second(self, fps: float, height: int, width: int) -> float:
        h, w = self.tok.grid_shape(height, width)
        return fps * h * w

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,T,H,W]` in [-1,1] -> codes `[B,T,h,w]`, every frame alone."""
        b, _, t, height, width = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, 3, height, width)
        codes = torch.cat([self.tok.encode(frames[i : i + FRAME_BATCH]) for i in range(0, b * t, FRAME_BATCH)])
        return codes.reshape(b, t, *codes.shape[1:])

    @torch.no_grad()
    def roundtrip(self, x: torch.Tensor) -> Roundtrip:
        """uint8 `[3,T,H,W]` -> `Roundtrip` (codes `[T,h,w]`, uint8 frames cropped to `H x W`)."""
        _, frames, height, width = x.shape
        start = time.perf_counter()
        codes = self.encode(to_model(x)[None])[0].cpu()
        middle = time.perf_counter()
        recon = torch.empty_like(x)
        for i in range(0, frames, FRAME_BATCH):
            decoded = self.tok.decode(codes[i : i + FRAME_BATCH], (height, width))
            recon[:, i : i + decoded.shape[0]] = from_model(decoded.cpu()).permute(1, 0, 2, 3)
        return Roundtrip(codes, recon, middle - start, time.perf_counter() - middle)


def code_clip(tok: VideoTokenizer | PerFrame, x: torch.Tensor) -> Roundtrip:
    """uint8 clip `[3,T,H,W]` through `tok` (a video tokenizer, or an image one `PerFrame`)."""
    return tok.roundtrip(x) if isinstance(tok, PerFrame) else roundtrip(tok, x)
