"""Image files <-> token files, in batches, with tiling for very large images.

Used by `mmtok encode` / `mmtok decode` and usable from Python:

    written = encode_image_files(tok, ["photos/"], Path("tokens/"), progress=bar)
    decode_token_files(tok, ["tokens/"], Path("recon/"))

`progress` (e.g. a tqdm bar) gets its `total` set to the number of files and is `update`d
as each batch is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.files import Progress, Transaction, collect, output_paths, start_progress
from mmtok.image.base import ImageTokenizer
from mmtok.image.tiling import decode_tiled, encode_tiled
from mmtok.media.image import IMAGE_SUFFIXES, MAX_PIXELS, WRITE_SUFFIXES, check_pixels, from_model, open_image, read_image, to_model, write_image
from mmtok.tokens_file import SUFFIX, TokenFile

EXIF_ORIENTATION = 0x0112
# Above this many pixels an image goes through the tiled path (bounded memory).
TILE_ABOVE_PIXELS = 1024 * 1024


def check_image_header(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Cheap pre-flight: read the header only; returns (width, height) or raises MmtokError."""
    try:
        with open_image(path) as img:
            size = img.size
            if img.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):  # rotated 90 degrees when shown
                size = size[::-1]
    except Exception:
        read_image(path, max_pixels)  # produces the precise one-line error
        raise
    check_pixels(path, size, max_pixels)
    return size


def encode_batch(tok: ImageTokenizer, images: torch.Tensor) -> torch.Tensor:
    """Same-size `[B,3,H,W]` uint8 images -> codes `[B,h,w]` (tiled one by one when large,
    unless the tokenizer resizes every image itself, `resizes_input`)."""
    height, width = images.shape[-2:]
    if height * width > TILE_ABOVE_PIXELS and not tok.resizes_input:
        return torch.stack([encode_tiled(tok, image) for image in images])
    return tok.encode(to_model(images)).cpu()


def decode_batch(tok: ImageTokenizer, codes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Codes `[B,h,w]` of same-size images -> `[B,3,H,W]` uint8 (tiled one by one when large,
    unless the tokenizer resizes images itself: then the codes are of the whole image)."""
    tok.require_decoder()
    if size[0] * size[1] > TILE_ABOVE_PIXELS and not tok.resizes_input:
        return torch.stack([decode_tiled(tok, c, size) for c in codes])
    return from_model(tok.decode(codes, size).cpu())


def encode_image(tok: ImageTokenizer, image: torch.Tensor, source: str = "") -> TokenFile:
    """One `[3,H,W]` uint8 image -> TokenFile (tiled when large)."""
    height, width = image.shape[-2:]
    return TokenFile.from_codes(tok, encode_batch(tok, image[None])[0], {"height": height, "width": width}, source)


def original_size(tok: ImageTokenizer, tokens: TokenFile, source: str = "codes") -> tuple[int, int]:
    """Checked `(H, W)` to decode `tokens` to: right tokenizer, 2-D grid, grid fits the size."""
    tokens.check_tokenizer(tok, source)
    if tokens.codes.ndim != 2:
        raise MmtokError(f"{source}: image codes must be a 2-D grid, got shape {tuple(tokens.codes.shape)}")
    original = tokens.checked_original(source)
    height = original.get("height", tokens.codes.shape[0] * tok.downsample)
    width = original.get("width", tokens.codes.shape[1] * tok.downsample)
    if tok.grid_shape(height, width) != tuple(tokens.codes.shape):
        raise MmtokError(f"{source}: grid {tuple(tokens.codes.shape)} does not fit the recorded size {width}x{height}")
    return height, width


def decode_image(tok: ImageTokenizer, tokens: TokenFile, source: str = "codes") -> torch.Tensor:
    """TokenFile -> `[3,H,W]` uint8 at the original size (tiled when large)."""
    return decode_batch(tok, tokens.codes[None], original_size(tok, tokens, source))[0]


def same_size_batches(sizes: list[tuple[int, int]], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped by equal size, at most `batch_size` per group; images above
    `TILE_ABOVE_PIXELS` go alone (they take the tiled path)."""
    keys = [(h, w) if h * w <= TILE_ABOVE_PIXELS else (h, w, i) for i, (h, w) in enumerate(sizes)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    for _, group in groupby(order, key=keys.__getitem__):
        group = list(group)
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def encode_image_files(
    tok: ImageTokenizer, inputs: Iterable[str | Path], out: Path, batch_size: int = 16,
    progress: Progress | None = None,
) -> list[Path]:
    """Encode image files/folders to `.mmtok` files under `out` (or to `out` for one file).

    Every header, and its size against what the tokenizer takes, is checked before any output
    is written; same-size images are batched.
    If a file turns out corrupt mid-way, everything this call wrote is removed.
    """
    files, roots = collect(inputs, IMAGE_SUFFIXES, "image")
    targets = output_paths(files, roots, out, SUFFIX, single_file_ok=out.suffix == SUFFIX)
    sizes = [check_image_header(f)[::-1] for f in files]  # (height, width)
    for f, (height, width) in zip(files, sizes):  # sizes the tokenizer refuses (GLM-Image: aspect ratio over 4)
        try:
            tok.grid_shape(height, width)
        except MmtokError as err:
            raise MmtokError(f"{f}: {err}") from None
    update = start_progress(progress, len(files))
    with Transaction() as tx:
        for group in same_size_batches(sizes, batch_size):
            images = [read_image(files[j]) for j in group]
            if len({im.shape for im in images}) == 1:
                codes = encode_batch(tok, torch.stack(images))
            else:  # headers that disagreed with the decoded pixels: one by one
                codes = [encode_batch(tok, im[None])[0] for im in images]
            for c, im, j in zip(codes, images, group):
                original = {"height": im.shape[-2], "width": im.shape[-1]}
                tx.add(TokenFile.from_codes(tok, c, original, files[j].name).save(targets[j]))
            if update:
                update(len(group))
    return targets


def decode_token_files(
    tok: ImageTokenizer, inputs: Iterable[str | Path], out: Path, image_suffix: str = ".png", batch_size: int = 16,
    progress: Progress | None = None,
) -> list[Path]:
    """Decode `.mmtok` files/folders to images under `out` (or to `out` for one file).

    Every token file is checked (tokenizer fingerprint, code range, grid) before any image is
    written; same-size images are decoded together.
    """
    files, roots = collect(inputs, {SUFFIX}, "token")
    targets = output_paths(files, roots, out, image_suffix, single_file_ok=out.suffix.lower() in WRITE_SUFFIXES)
    loaded = [TokenFile.load(f) for f in files]
    sizes = [original_size(tok, tf, str(f)) for tf, f in zip(loaded, files)]
    update = start_progress(progress, len(files))
    with Transaction() as tx:
        for group in same_size_batches(sizes, batch_size):
            images = decode_batch(tok, torch.stack([loaded[j].codes for j in group]), sizes[group[0]])
            for image, j in zip(images, group):
                write_image(image, targets[j])
                tx.add(targets[j])
            if update:
                update(len(group))
    return targets
