"""Image files <-> tensors.

`read_image` returns `[3,H,W]` uint8 RGB whatever the file holds: grayscale, palette,
RGBA / LA (composited over white, as a viewer shows them), 16-bit (scaled, not clipped),
CMYK; EXIF orientation is applied. `to_model` / `from_model` convert to and from the
tokenizers' float range [-1,1].
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mmtok.errors import MmtokError
from mmtok.files import atomic_write

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# What `mmtok decode` takes OUT.<suffix> to mean one image file (not a folder name).
WRITE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
# Decompression-bomb guard: a 16-megabyte PNG can claim 50k x 50k pixels. 200 MP covers
# any camera; raise it via the argument for gigapixel scans.
MAX_PIXELS = 200_000_000


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Read `path` as RGB `[3,H,W]` uint8. Raises MmtokError with a one-line reason."""
    path = Path(path)
    try:
        with open_image(path) as img:
            check_pixels(path, img.size, max_pixels)
            img.load()
            img = ImageOps.exif_transpose(img)
            array = _to_rgb8(img, path)
    except MmtokError:
        raise
    except FileNotFoundError:
        raise MmtokError(f"{path}: no such file; check the path") from None
    except UnidentifiedImageError:
        raise MmtokError(f"{path}: not an image PIL can read; pass PNG, JPEG, WebP, TIFF, BMP or GIF") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise MmtokError(f"{path}: corrupt or truncated image ({err}); re-export or re-download it") from None
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise MmtokError(f"{path}: image has zero width or height")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """`Image.open` with PIL's own bomb check replaced by ours (`check_pixels`), which
    honours the caller's `max_pixels`; PIL's global limit is restored afterwards."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_pixels(path: Path, size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
    """Refuse images larger than `max_pixels` before any pixel is decoded."""
    w, h = size
    if w * h > max_pixels:
        raise MmtokError(
            f"{path}: {w}x{h} = {w * h:,} pixels exceeds the {max_pixels:,}-pixel limit "
            "(decompression-bomb guard); downscale it or raise max_pixels"
        )


def _to_rgb8(img: Image.Image, path: Path) -> np.ndarray:
    """Any PIL mode -> `[H,W,3]` uint8."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # PIL's convert("L") clips 16-bit values at 255; scale the full range instead.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255.0
        gray = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        raise MmtokError(f"{path}: 32-bit float images are not supported; convert to 8- or 16-bit PNG")
    if img.mode == "P" or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def write_image(image: torch.Tensor, path: str | Path) -> None:
    """Write `[3,H,W]` uint8 to `path` (format from the suffix), atomically."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise MmtokError(f"{path}: unknown image suffix; use one of {sorted(IMAGE_SUFFIXES)}")
    pil = Image.fromarray(image.permute(1, 2, 0).cpu().numpy())
    atomic_write(path, lambda tmp: pil.save(tmp, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else pil.save(tmp))


def to_model(image: torch.Tensor) -> torch.Tensor:
    """uint8 `[...,3,H,W]` in [0,255] -> float32 in [-1,1]."""
    return image.float().div(127.5).sub(1.0)


def from_model(x: torch.Tensor) -> torch.Tensor:
    """float `[...,3,H,W]` in [-1,1] -> uint8 in [0,255] (rounded, clamped)."""
    return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
