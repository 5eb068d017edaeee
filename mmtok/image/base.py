"""What every image tokenizer shares: padding to the model's multiple, cropping back, and
the encode / decode wrappers that make any input size work.

Layout: images are `[B,3,H,W]` float in [-1,1]; codes are `[B,h,w]` int64 with
`h = ceil(H / downsample)`, `w = ceil(W / downsample)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from mmtok.layout import RasterLayout
from mmtok.padding import pad_to_multiple
from mmtok.tokenizer import Tokenizer

COMMON_SIDES = (256, 512, 1024)  # square sizes `mmtok info` states tokens per image for


@dataclass(frozen=True)
class ConvImageConfig:
    """Fields shared by the conv image kinds (see `mmtok.nn.conv2d.Encoder2d`)."""

    patch_size: int = 4                   # pixel-unshuffle stem
    channels: int = 64                    # width of the first level
    channel_mult: tuple[int, ...] = (1, 2)  # one entry per level; a stride-2 step between levels
    num_res_blocks: int = 2               # per level

    def __post_init__(self) -> None:
        if self.patch_size < 1 or not self.channel_mult:
            raise ValueError("patch_size must be >= 1 and channel_mult non-empty")

    @property
    def downsample(self) -> int:
        """Pixels per code along each side: patch_size * 2**(levels - 1)."""
        return self.patch_size * 2 ** (len(self.channel_mult) - 1)


class ImageTokenizer(Tokenizer):
    """Base of the image kinds. Subclasses own `encoder`, `quantizer` (with `embed(ids)`)
    and `decoder`, and a config with a `downsample` property."""

    modality = "image"
    # True: `encode` runs the model's own image processor, which decides the size the model
    # sees (a pretrained tokenizer's resolution rules), so large images are not tiled.
    resizes_input: ClassVar[bool] = False
    # True (implies `resizes_input`): that size is one resolution, so every image gets the same grid.
    fixed_resolution: ClassVar[bool] = False

    @property
    def downsample(self) -> int:
        """Pixels per code along each side."""
        return self.config.downsample

    def describe(self) -> dict:
        """Tokens first (what an LLM pays per image at common sizes), then the common facts."""
        return {"tokens_per_image": {f"{n}x{n}": math.prod(self.grid_shape(n, n)) for n in COMMON_SIDES},
                **super().describe(), "downsample": self.downsample}

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Code grid `(h, w)` that `encode` returns for an `height x width` image."""
        f = self.downsample
        return math.ceil(height / f), math.ceil(width / f)

    def token_layout(self, row_separator: bool = False, *, media_type: str | None = None) -> RasterLayout:
        """Raster order, optionally with a row-separator id ending each row."""
        self.media_type_of(media_type)
        return RasterLayout(self.codebook_sizes[0], row_separator)

    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of `x` whose size is a multiple of `downsample` (subclasses implement)."""
        raise NotImplementedError

    def _decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.embed(ids))

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad `[B,3,H,W]` on the bottom/right up to multiples of `downsample` (see `pad_to_multiple`)."""
        return pad_to_multiple(x, self.downsample)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1] -> codes `[B,ceil(H/f),ceil(W/f)]` int64."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {tuple(x.shape)}")
        with self.eval_mode():
            return self._encode_padded(self.pad(x.to(self.device)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """codes `[B,h,w]` -> images `[B,3,h*f,w*f]` in [-1,1], cropped to `size=(H,W)` if given."""
        if codes.ndim != 3:
            raise ValueError(f"expected codes [B,h,w], got shape {tuple(codes.shape)}")
        self.check_codes(codes)
        with self.eval_mode():
            x = self._decode_ids(codes.to(self.device).long()).clamp(-1, 1)
        if size is not None:
            x = x[..., : size[0], : size[1]]
        return x
