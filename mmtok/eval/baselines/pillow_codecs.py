"""JPEG and WebP through Pillow: one image at a chosen quality, or at the best quality whose
file fits a bit budget.

    coder = ImageCoder(JPEG, image)          # image [3,H,W] uint8
    coded = coder.at(50)                     # Coded: quality, bytes, decoded image
    coded = coder.within(0.19)               # best quality with file bpp <= 0.19 (bisection)
    coded.bpp, coded.payload_bpp, coded.image
    result = evaluate_codec(JPEG, files, {"f8": [0.19, ...]})   # a sweep, and each file at its budget

Bits are counted honestly: `bpp` is the whole file (`bytes * 8 / pixels`, headers included)
as a user would store it. `payload_bpp` leaves out what is not the coded picture: JPEG's
marker segments (JFIF, quantisation and Huffman tables, frame and scan headers, end marker)
and WebP's RIFF container and chunk headers (the VP8 bitstream is counted whole).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mmtok.eval.image_metrics import image_scores, quality_summary
from mmtok.media.image import read_image


@dataclass(frozen=True)
class PillowCodec:
    """A Pillow format with its quality range, save options and the qualities of an RD sweep."""

    name: str                     # baseline name on the command line
    label: str                    # how reports call it
    format: str                   # Pillow format name
    lowest: int                   # lowest quality setting
    highest: int                  # highest quality setting
    sweep: tuple[int, ...]        # qualities drawn as the codec's rate-distortion curve
    options: dict[str, Any] = field(default_factory=dict)


# optimize=True: per-image Huffman tables, which halve the file at low rates (the default
# tables alone are ~420 bytes). 4:2:0 chroma (Pillow's default) is what JPEG uses at low rates.
JPEG = PillowCodec("jpeg", "JPEG", "JPEG", 1, 95, (1, 5, 10, 20, 30, 50, 75, 90), {"optimize": True})
# method=6: libwebp's slowest, best-compressing search.
WEBP = PillowCodec("webp", "WebP", "WEBP", 0, 100, (0, 10, 25, 50, 70, 85, 95), {"method": 6})
CODECS = {codec.name: codec for codec in (JPEG, WEBP)}


@dataclass(frozen=True)
class Coded:
    """One encoding: `image` is the decoded `[3,H,W]` uint8 picture."""

    quality: int
    file_bytes: int
    header_bytes: int
    image: torch.Tensor

    @property
    def pixels(self) -> int:
        return self.image.shape[-2] * self.image.shape[-1]

    @property
    def bpp(self) -> float:
        """Whole-file bits per pixel, headers included."""
        return self.file_bytes * 8 / self.pixels

    @property
    def payload_bpp(self) -> float:
        """Bits per pixel without the container / table bytes (see the module docstring)."""
        return (self.file_bytes - self.header_bytes) * 8 / self.pixels


def encode(codec: PillowCodec, image: torch.Tensor, quality: int) -> Coded:
    """Encode `[3,H,W]` uint8 at `quality` and decode it back."""
    buffer = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, codec.format, quality=quality, **codec.options)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as decoded:
        pixels = np.asarray(decoded.convert("RGB"), dtype=np.uint8)
    header = jpeg_header_bytes(data) if codec.format == "JPEG" else webp_header_bytes(data)
    return Coded(quality, len(data), header, torch.from_numpy(pixels.transpose(2, 0, 1).copy()))


def jpeg_header_bytes(data: bytes) -> int:
    """Bytes of a single-scan JPEG that are not entropy-coded data: every marker segment up
    to and including the scan header (SOS), plus the end-of-image marker."""
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        raise ValueError("not a complete JPEG stream")
    i = 2
    while i + 4 <= len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        i += 2 + length
        if marker == 0xDA:  # start of scan: the coded data follows its header
            return i + 2
    raise ValueError("JPEG stream without a scan")


def webp_header_bytes(data: bytes) -> int:
    """Bytes of a WebP file outside its VP8 / VP8L bitstream chunks (RIFF header, chunk
    headers, any extended-format chunks)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    i, payload = 12, 0
    while i + 8 <= len(data):
        fourcc, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            payload += size
        i += 8 + size + (size & 1)  # chunks are padded to even sizes
    return len(data) - payload


class ImageCoder:
    """One image through one codec; every quality is encoded at most once, so a sweep and
    several bit budgets on the same image share their encodings."""

    def __init__(self, codec: PillowCodec, image: torch.Tensor):
        self.codec, self.image = codec, image
        self._done: dict[int, Coded] = {}

    def at(self, quality: int) -> Coded:
        if quality not in self._done:
            self._done[quality] = encode(self.codec, self.image, quality)
        return self._done[quality]

    def within(self, bpp: float) -> Coded:
        """The highest quality whose whole file spends <= `bpp` bits per pixel, found by
        bisection (file size grows with quality). If even the lowest quality spends more,
        that one is returned: the caller sees `coded.bpp > bpp` and must say so."""
        lo, hi = self.codec.lowest, self.codec.highest
        if self.at(lo).bpp > bpp:
            return self.at(lo)
        if self.at(hi).bpp <= bpp:
            return self.at(hi)
        while hi - lo > 1:  # invariant: lo fits, hi does not
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self.at(mid).bpp <= bpp else (lo, mid)
        return self.at(lo)


@dataclass
class CodecResult:
    """`evaluate_codec`'s result. `sweep`: one summary per quality of `codec.sweep` (for the
    codec's rate-distortion curve); `matched`: budget label -> {"summary", "per_image"};
    `kept`: budget label -> file name -> decoded `[3,H,W]` uint8, for the files asked to keep."""

    codec: PillowCodec
    sweep: list[dict[str, Any]]
    matched: dict[str, dict[str, Any]]
    kept: dict[str, dict[str, torch.Tensor]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (no tensors)."""
        options = {"quality_range": [self.codec.lowest, self.codec.highest], **self.codec.options}
        return {"codec": self.codec.label, "pillow_options": options, "sweep": self.sweep, "matched": self.matched}


def evaluate_codec(
    codec: PillowCodec, files: Sequence[Path], budgets: Mapping[str, Sequence[float]], keep: Sequence[str] = (),
    progress: bool = True,
) -> CodecResult:
    """Code every file at each quality of the sweep, and at the best quality within each
    budget (label -> one whole-file bpp limit per file, e.g. a tokenizer's bpp on it).

    Per-image rows: name, quality, bpp, payload_bpp, psnr, ssim, ms_ssim, and for budgets
    target_bpp and over_target (True where even the lowest quality spends more).
    """
    from tqdm.auto import tqdm

    sweep_rows: dict[int, list[dict[str, Any]]] = {q: [] for q in codec.sweep}
    matched_rows: dict[str, list[dict[str, Any]]] = {label: [] for label in budgets}
    kept: dict[str, dict[str, torch.Tensor]] = {label: {} for label in budgets}
    for i, path in enumerate(tqdm(files, desc=codec.label, unit="img", disable=not progress)):
        image = read_image(path)
        coder = ImageCoder(codec, image)
        scores: dict[int, dict[str, float | None]] = {}  # each quality scored once

        def row(coded: Coded, path: Path = path, image: torch.Tensor = image, scores: dict = scores) -> dict[str, Any]:
            if coded.quality not in scores:
                scores[coded.quality] = image_scores(image, coded.image)
            return {"name": path.name, "tokens": None, "bpp": coded.bpp, "payload_bpp": coded.payload_bpp, "quality": coded.quality,
                    **scores[coded.quality]}   # tokens: a classic codec makes none

        for quality in codec.sweep:
            sweep_rows[quality].append(row(coder.at(quality)))
        for label, targets in budgets.items():
            coded = coder.within(targets[i])
            matched_rows[label].append({**row(coded), "target_bpp": targets[i], "over_target": coded.bpp > targets[i]})
            if path.name in keep:
                kept[label][path.name] = coded.image
    sweep = [{"quality": q, **_summary(rows)} for q, rows in sweep_rows.items()]
    matched = {}
    for label, rows in matched_rows.items():
        summary = _summary(rows)
        qualities = [r["quality"] for r in rows]
        summary.update(target_bpp_mean=sum(r["target_bpp"] for r in rows) / len(rows), bpp_max=max(r["bpp"] for r in rows),
                       over_target=sum(r["over_target"] for r in rows), quality_min=min(qualities), quality_max=max(qualities))
        matched[label] = {"summary": summary, "per_image": rows}
    return CodecResult(codec, sweep, matched, kept)


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {**quality_summary(rows), "payload_bpp_mean": sum(r["payload_bpp"] for r in rows) / len(rows)}
