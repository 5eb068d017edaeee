"""Images coded by a video tokenizer, as one-frame videos (Emu3 codes images this way).

    images = FramesAsImages(emu3)          # or emu3.for_media("image")
    codes = images.encode(x)               # [B,3,H,W] in [-1,1] -> [B,h,w] int64
    x2 = images.decode(codes, size=(H, W)) # [B,3,H,W] in [-1,1]

The view has the part of the image-tokenizer interface that image files, tiling and the LLM
side use (`encode`, `decode`, `grid_shape`, `downsample`, identity), so those paths take it
as they take an image tokenizer. Identity (`kind`, `fingerprint`, `name_or_path`) is the
video tokenizer's: codes made through the view are that tokenizer's codes.
"""

from __future__ import annotations

import torch

from mmtok.errors import MmtokError


class FramesAsImages:
    """A video tokenizer whose `media_types` include "image", seen as an image tokenizer: an
    image `[3,H,W]` is the video `[3,1,H,W]`, its codes the one latent frame `[h,w]`."""

    modality = "image"
    media_types = ("image",)
    fixed_resolution = False   # any size, like the video tokenizer (large images are tiled)

    def __init__(self, video) -> None:
        if "image" not in video.media_types:
            raise MmtokError(f"{video.kind} does not code images; use an image tokenizer")
        self.video = video

    # -- identity and facts: the video tokenizer's ---------------------------------------------
    kind = property(lambda self: self.video.kind)
    fingerprint = property(lambda self: self.video.fingerprint)
    name_or_path = property(lambda self: self.video.name_or_path)
    can_decode = property(lambda self: self.video.can_decode)
    device = property(lambda self: self.video.device)
    codebook_sizes = property(lambda self: self.video.codebook_sizes)

    def require_decoder(self, source: str = "") -> None:
        self.video.require_decoder(source)

    def check_codes(self, codes: torch.Tensor, source: str = "codes") -> None:
        """Image codes (`[h,w]` or `[B,h,w]`) are the video codes of one latent frame."""
        if codes.ndim not in (2, 3):
            raise MmtokError(f"{source}: image codes must be [h,w] or [B,h,w], got shape {tuple(codes.shape)}")
        self.video.check_codes(codes.unsqueeze(-3), source)

    # -- geometry and coding ------------------------------------------------------------------
    @property
    def downsample(self) -> int:
        """Pixels per code along each side."""
        return self.video.spatial_downsample

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Code grid `(h, w)` of an `height x width` image."""
        return self.video.grid_shape(1, height, width)[1:]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1] -> codes `[B,ceil(H/f),ceil(W/f)]` int64."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {tuple(x.shape)}")
        return self.video.encode(x[:, :, None])[:, 0]

    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """codes `[B,h,w]` -> `[B,3,h*f,w*f]` in [-1,1] (cropped to `size=(H, W)`): the first
        frame the video tokenizer decodes the one latent frame to (Emu3's image decode)."""
        if codes.ndim != 3:
            raise ValueError(f"expected image codes [B,h,w], got shape {tuple(codes.shape)}")
        h, w = codes.shape[1:]
        height, width = size or (h * self.downsample, w * self.downsample)
        return self.video.decode(codes[:, None], size=(1, height, width))[:, :, 0]
