"""One media stream of an extended LLM vocabulary: the block of ids a tokenizer owns.

Each tokenizer added to an LLM gets one contiguous block of ids, laid out as

    start, end, [dim_1 .. dim_max]  (image / video only), layout block (codes, separators)

so id <-> code is an offset, never a string lookup. A media span in a sequence is

    <|image_start|> <|image_dim_h|> <|image_dim_w|> codes (raster, optional row separators) <|image_end|>
    <|video_start|> <|video_dim_t|> <|video_dim_h|> <|video_dim_w|> codes (frame by frame) <|video_end|>
    <|audio_start|> codes (frame-major: t0k0 t0k1 .. t0k(K-1) t1k0 ..) <|audio_end|>

The header states the grid (Emu3 style), so a model generating an image commits to its
size first and a logits processor can enforce the exact number of codes; audio needs no
header because any whole number of frames is a valid span.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from mmtok.errors import MmtokError
from mmtok.layout import FrameMajorLayout, RasterLayout, VideoLayout
from mmtok.tokenizer import Tokenizer

MODALITIES = ("image", "audio", "video")
DIMS = {"image": 2, "video": 3, "audio": 0}   # header tokens per span: (h, w) / (t, h, w) / none
DEFAULT_MAX_DIM = 256                          # largest grid side a header can state


@dataclass(frozen=True)
class StreamOptions:
    """How a tokenizer's codes are laid out in the LLM sequence (chosen at extension time)."""

    row_separator: bool = False     # image / video: an id ends every row of codes
    frame_separator: bool = False   # video: an id ends every latent frame
    levels: int | None = None       # audio: keep only the first `levels` RVQ levels (None: all)
    max_dim: int = DEFAULT_MAX_DIM  # image / video: header dims run 1..max_dim


@dataclass(frozen=True)
class MediaStream:
    """The id block of one tokenizer inside an extended vocabulary.

    `start_id` is the first id of the block; everything else is an offset from it. The
    `tokenizer` dict records kind, fingerprint, source path and codebook sizes so a vocab
    never decodes ids with a tokenizer that did not make them.
    """

    name: str
    modality: str
    start_id: int
    codebook_sizes: tuple[int, ...]
    tokenizer: dict[str, Any]
    options: StreamOptions = field(default_factory=StreamOptions)

    # -- geometry --------------------------------------------------------------------
    @property
    def end_id(self) -> int:
        return self.start_id + 1

    @property
    def num_dims(self) -> int:
        """Header tokens after the start token: 2 for images, 3 for video, 0 for audio."""
        return DIMS[self.modality]

    @property
    def dim_id(self) -> int:
        """Id of header value 1 (value n is `dim_id + n - 1`)."""
        return self.start_id + 2

    @property
    def code_offset(self) -> int:
        """First id of the layout block: layout id `i` is LLM id `code_offset + i`."""
        return self.dim_id + (self.options.max_dim if self.num_dims else 0)

    @property
    def layout(self) -> RasterLayout | VideoLayout | FrameMajorLayout:
        o = self.options
        if self.modality == "image":
            return RasterLayout(self.codebook_sizes[0], o.row_separator)
        if self.modality == "video":
            return VideoLayout(self.codebook_sizes[0], o.row_separator, o.frame_separator)
        return FrameMajorLayout(tuple(self.codebook_sizes[: o.levels or len(self.codebook_sizes)]))

    @property
    def stop_id(self) -> int:
        """One past the last id of the block."""
        return self.code_offset + self.layout.vocab_size

    def code_ranges(self) -> list[tuple[int, int]]:
        """LLM id range `[start, stop)` of each code stream (one per RVQ level for audio)."""
        return [(self.code_offset + a, self.code_offset + b) for a, b in self.layout.ranges()]

    # -- token strings (only used once, to register the tokens) ------------------------
    def token_strings(self) -> list[str]:
        """Every token of the block in id order, e.g. `<|image_start|>`, `<|image_17|>`."""
        n = self.name
        names = [f"<|{n}_start|>", f"<|{n}_end|>"]
        if self.num_dims:
            names += [f"<|{n}_dim_{i}|>" for i in range(1, self.options.max_dim + 1)]
        if self.modality == "audio":
            for level, size in enumerate(self.layout.codebook_sizes):
                names += [f"<|{n}_l{level}_{c}|>" for c in range(size)]
        else:
            names += [f"<|{n}_{c}|>" for c in range(self.codebook_sizes[0])]
            if self.options.row_separator:
                names.append(f"<|{n}_row|>")
            if self.modality == "video" and self.options.frame_separator:
                names.append(f"<|{n}_frame|>")
        assert len(names) == self.stop_id - self.start_id
        return names

    # -- spans -----------------------------------------------------------------------
    def grid_of(self, codes: torch.Tensor) -> tuple[int, ...]:
        """The grid a span header states for `codes` (image `[h,w]`, video `[t,h,w]`)."""
        return tuple(codes.shape) if self.num_dims else ()

    def span(self, codes: torch.Tensor) -> torch.Tensor:
        """codes of one item (image `[h,w]`, audio `[K,t]`, video `[t,h,w]`) -> the whole
        span `[start, header, body, end]` as int64 LLM ids."""
        expected = {"image": 2, "video": 3, "audio": 2}[self.modality]
        if codes.ndim != expected:
            raise MmtokError(f"{self.name}: expected {self.modality} codes with {expected} dims, got shape {tuple(codes.shape)}")
        grid = self.grid_of(codes)
        too_big = [d for d in grid if not 1 <= d <= self.options.max_dim]
        if too_big:
            raise MmtokError(
                f"{self.name}: grid {'x'.join(map(str, grid))} has a side outside 1..{self.options.max_dim}; "
                "use smaller media or extend with a larger --max-grid"
            )
        sizes = self.layout.codebook_sizes if self.modality == "audio" else self.codebook_sizes[:1]
        kept = codes[: len(sizes)] if self.modality == "audio" else codes
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= min(sizes)):
            raise MmtokError(f"{self.name}: codes outside 0..{min(sizes) - 1}; were they made by another tokenizer?")
        header = torch.tensor([self.dim_id + d - 1 for d in grid], dtype=torch.long)
        body = self.layout.flatten(codes) + self.code_offset
        return torch.cat([torch.tensor([self.start_id]), header, body, torch.tensor([self.end_id])])

    def body_length(self, grid: tuple[int, ...]) -> int:
        """Ids between header and end token for `grid` (audio: grid `(frames,)`)."""
        layout = self.layout
        if self.modality == "audio":
            return layout.span_length(grid[0])
        return layout.span_length(grid)

    def unflatten(self, body: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """Body ids (LLM ids, no header / end) -> codes; MmtokError if they do not fit."""
        ids = body.long() - self.code_offset
        if self.modality == "audio":
            return self.layout.unflatten(ids)
        return self.layout.unflatten(ids, grid)

    # -- persistence -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "modality": self.modality, "tokenizer": self.tokenizer,
            "codebook_sizes": list(self.codebook_sizes), "options": asdict(self.options),
            "ids": {
                "start": self.start_id, "end": self.end_id,
                "dims": [self.dim_id, self.code_offset] if self.num_dims else None,
                "codes": [list(r) for r in self.code_ranges()],
                "block": [self.start_id, self.stop_id],
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> MediaStream:
        try:
            stream = cls(
                data["name"], data["modality"], int(data["ids"]["start"]), tuple(data["codebook_sizes"]),
                dict(data["tokenizer"]), StreamOptions(**data["options"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MmtokError(f"{source}: damaged media stream entry ({err}); re-run `mmtok extend`") from None
        if stream.modality not in MODALITIES or stream.to_json()["ids"] != data["ids"]:
            raise MmtokError(f"{source}: stream '{stream.name}' has inconsistent ids; re-run `mmtok extend`")
        return stream


def tokenizer_identity(tok: Tokenizer) -> dict[str, Any]:
    """What a vocab records about a tokenizer (checked again whenever it is loaded)."""
    return {"kind": tok.kind, "fingerprint": tok.fingerprint, "source": str(tok.name_or_path)}


def make_stream(name: str, tok: Tokenizer, start_id: int, options: StreamOptions) -> MediaStream:
    """The block for `tok` starting at `start_id` (checked options for its modality)."""
    if tok.modality not in MODALITIES:
        raise MmtokError(f"{name}: tokenizer modality '{tok.modality}' cannot be added to a vocabulary")
    if tok.modality == "audio":
        if options.row_separator or options.frame_separator:
            options = StreamOptions(levels=options.levels, max_dim=options.max_dim)
        levels = options.levels or len(tok.codebook_sizes)
        if not 1 <= levels <= len(tok.codebook_sizes):
            raise MmtokError(f"{name}: --audio-levels must be 1..{len(tok.codebook_sizes)}, got {levels}")
        options = StreamOptions(levels=levels, max_dim=options.max_dim)
    else:
        options = StreamOptions(
            options.row_separator, options.frame_separator and tok.modality == "video", None, options.max_dim,
        )
        if options.max_dim < 1:
            raise MmtokError(f"{name}: --max-grid must be at least 1, got {options.max_dim}")
    return MediaStream(name, tok.modality, start_id, tuple(tok.codebook_sizes), tokenizer_identity(tok), options)
