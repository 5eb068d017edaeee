"""The image media type: image files <-> token files (`mmtok.image.files`), PSNR / SSIM / MS-SSIM.

    IMAGE.encode_files(tok, ["photos/"], Path("tokens/"), batch_size=16)
    IMAGE.decode_files(tok, ["tokens/"], Path("recon/"), fmt="webp")

Token files record the image's `height` and `width` (codes `[h,w]`); same-size images are
coded in batches, images above `TILE_ABOVE_PIXELS` tile by tile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.eval.image_eval import evaluate_images
from mmtok.eval.image_metrics import image_scores
from mmtok.files import Progress
from mmtok.image.base import ImageTokenizer
from mmtok.image.files import decode_batch, decode_token_files, encode_batch, encode_image, encode_image_files
from mmtok.layout import RasterLayout
from mmtok.media.image import IMAGE_SUFFIXES, read_image, write_image
from mmtok.media.modality import Held, Modality
from mmtok.tokens_file import TokenFile


class ImageModality(Modality):
    name = "image"
    suffixes = frozenset(IMAGE_SUFFIXES)
    formats = ("png", "jpg", "webp")
    encode_options = decode_options = frozenset({"batch_size"})
    progress_unit = "file"
    baselines = ("jpeg", "webp", "kmeans")
    batched = True

    def encode_file(self, tok: ImageTokenizer, path: str | Path) -> TokenFile:
        return encode_image(tok, read_image(path), Path(path).name)

    def encode_files(
        self, tok: ImageTokenizer, inputs: Iterable[str | Path], out: Path, progress: Progress | None = None,
        batch_size: int = 16,
    ) -> list[Path]:
        return encode_image_files(tok, inputs, out, batch_size, progress)

    def decode_files(
        self, tok: ImageTokenizer, inputs: Iterable[str | Path], out: Path, fmt: str | None = None,
        progress: Progress | None = None, batch_size: int = 16,
    ) -> list[Path]:
        return decode_token_files(tok, inputs, out, f".{fmt or self.default_format}", batch_size, progress)

    def hold(self, path: str | Path) -> Held:
        return Held(read_image(path))

    def encode_held(self, tok: ImageTokenizer, held: Held) -> torch.Tensor:
        """Codes `[h,w]` of one image; `encode_batch` codes many of one size together, equally."""
        return encode_batch(tok, held.data[None])[0]

    def held_grid(self, tok: ImageTokenizer, held: Held) -> tuple[int, ...]:
        return tok.grid_shape(*held.data.shape[-2:])

    def stream_options(self, name: str, tok: ImageTokenizer, options):
        options = dataclasses.replace(options, frame_separator=False, levels=None)
        return options, {"row_separator": options.row_separator}

    def implied_layout(self, codebook_sizes: tuple[int, ...], options) -> RasterLayout:
        return RasterLayout(codebook_sizes[0], options.row_separator)

    def write_codes(self, tok: ImageTokenizer, codes: torch.Tensor, path: Path, fps: float) -> bool:
        """Codes `[h,w]` -> an image of `h*f` x `w*f` pixels."""
        h, w = codes.shape
        f = tok.downsample
        write_image(decode_batch(tok, codes[None], (h * f, w * f))[0], path)
        return True

    def scores(self, original: Path, reconstruction: Path) -> dict[str, float]:
        x, y = read_image(original), read_image(reconstruction)
        if x.shape != y.shape:
            raise MmtokError(f"{reconstruction}: size {tuple(y.shape[1:])} differs from {original} {tuple(x.shape[1:])}")
        s = image_scores(x, y)
        return {"PSNR": s["psnr"], "SSIM": s["ssim"], "MS-SSIM": float("nan") if s["ms_ssim"] is None else s["ms_ssim"]}

    def evaluate(self, tokenizers, files, report, options) -> None:
        evaluate_images(tokenizers, files, report, options)

    def baseline_training_files(self, files: list[Path], held_out: list[Path]) -> tuple[str, ...]:
        """The k-means baseline learns from the files training used: all but the held-out ones."""
        kept_out = set(held_out)
        return tuple(str(f) for f in files if f not in kept_out)

    def markdown_link(self, label: str, name: str) -> str:
        return f"![{label}]({name})"  # shown inline


IMAGE = ImageModality()
