"""One media stream of an extended LLM vocabulary: the block of ids a tokenizer owns.

Each tokenizer added to an LLM gets one contiguous block of ids, laid out as

    start, end (one pair per media type the tokenizer serves),
    [dim_1 .. dim_max]  (image / video only), layout block (codes, separators)

so id <-> code is an offset, never a string lookup. A media span in a sequence is

    <|image_start|> <|image_dim_h|> <|image_dim_w|> codes (raster, optional row separators) <|image_end|>
    <|video_start|> <|video_dim_t|> <|video_dim_h|> <|video_dim_w|> codes (frame by frame) <|video_end|>
    <|audio_start|> codes (frame-major: t0k0 t0k1 .. t0k(K-1) t1k0 ..) <|audio_end|>

The header states the grid (Emu3 style), so a model generating an image commits to its
size first and a logits processor can enforce the exact number of codes; audio needs no
header because any whole number of frames is a valid span.

How codes are laid out comes from the tokenizer (`Tokenizer.token_layout`), one layout per
media type, recorded in the vocab file; nothing here re-derives it from a modality name.

A tokenizer that serves several media types (Emu3's VQ-VAE: video, and images as one-frame
videos) gets ONE block: a start / end pair per media type (`<|emu3_video_start|>`,
`<|emu3_image_start|>`, ...), then one header range and one code range that every media type
shares. This is what Emu3 itself does: one id per codebook entry (`<|visual token N|>`) and
one row separator whatever the span holds, with the span markers saying what comes. One
codebook, so one embedding row per code: an image and a video frame that show the same thing
use the same ids. The layouts must nest (an image's ids are a subset of a video's: same codes,
same row separator id; only video adds the frame separator), which `make_stream` checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import torch

from mmtok.errors import MmtokError
from mmtok.layout import FrameMajorLayout, Layout, layout_from_json, layout_to_json
from mmtok.llm.options import StreamOptions
from mmtok.modalities import MODALITIES
from mmtok.tokenizer import Tokenizer


@dataclass(frozen=True)
class SpanType:
    """The spans of one media type in a stream: its markers, its layout and the shared
    header / code ids of the stream (`dim_id`, `code_offset`, `max_dim`)."""

    media_type: str
    start_id: int
    end_id: int
    layout: Layout
    dim_id: int
    code_offset: int
    max_dim: int
    name: str                       # the stream's name (error messages)
    key: str                        # names these spans: the stream's name for its modality,
                                    # "NAME:MEDIA_TYPE" for another (Emu3's "emu3:image")

    @property
    def num_dims(self) -> int:
        """Header tokens after the start token: 2 for images, 3 for video, 0 for audio."""
        return self.layout.header_sides

    @property
    def free_length(self) -> bool:
        """No grid header: a span holds any whole number of frames (audio), ended by `end_id`."""
        return self.num_dims == 0

    def grid_of(self, codes: torch.Tensor) -> tuple[int, ...]:
        """The grid of `codes` (image `(h, w)`, video `(t, h, w)`, audio `(frames,)`)."""
        return self.layout.grid_of(codes)

    def span(self, codes: torch.Tensor) -> torch.Tensor:
        """codes of one item (image `[h,w]`, audio `[K,t]`, video `[t,h,w]`) -> the whole
        span `[start, header, body, end]` as int64 LLM ids."""
        layout, what = self.layout, self.media_type
        if codes.ndim != layout.code_dims:
            raise MmtokError(f"{self.name}: expected {what} codes with {layout.code_dims} dims, got shape {tuple(codes.shape)}")
        grid = self.grid_of(codes)[: self.num_dims]
        too_big = [d for d in grid if not 1 <= d <= self.max_dim]
        if too_big:
            raise MmtokError(
                f"{self.name}: grid {'x'.join(map(str, grid))} has a side outside 1..{self.max_dim}; "
                "use smaller media or extend with a larger --max-grid"
            )
        audio = isinstance(layout, FrameMajorLayout)
        sizes = layout.codebook_sizes if audio else (layout.codebook_size,)
        kept = codes[: len(sizes)] if audio else codes
        if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= min(sizes)):
            raise MmtokError(f"{self.name}: codes outside 0..{min(sizes) - 1}; were they made by another tokenizer?")
        header = torch.tensor([self.dim_id + d - 1 for d in grid], dtype=torch.long)
        body = layout.flatten(codes) + self.code_offset
        return torch.cat([torch.tensor([self.start_id]), header, body, torch.tensor([self.end_id])])

    def body_length(self, grid: tuple[int, ...]) -> int:
        """Ids between header and end token for `grid` (audio: grid `(frames,)`)."""
        if isinstance(self.layout, FrameMajorLayout):
            return self.layout.span_length(grid[0])
        return self.layout.span_length(grid)

    def unflatten(self, body: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """Body ids (LLM ids, no header / end) -> codes; MmtokError if they do not fit."""
        ids = body.long() - self.code_offset
        if isinstance(self.layout, FrameMajorLayout):
            return self.layout.unflatten(ids)
        return self.layout.unflatten(ids, grid)


@dataclass(frozen=True)
class MediaStream:
    """The id block of one tokenizer inside an extended vocabulary.

    `start_id` is the first id of the block; everything else is an offset from it.
    `layouts` holds the tokenizer's layout of each media type it serves there, its own
    modality first (`modality`). The `tokenizer` dict records kind, fingerprint, source path
    and codebook sizes so a vocab never decodes ids with a tokenizer that did not make them.
    Per-span facts (markers, header length, layout) are in `span_types`; the properties
    without a media type (`end_id`, `layout`, `num_dims`, `span`, ...) are those of `modality`.
    """

    name: str
    start_id: int
    codebook_sizes: tuple[int, ...]
    tokenizer: dict[str, Any]
    layouts: tuple[Layout, ...]
    options: StreamOptions = field(default_factory=StreamOptions)

    # -- media types -----------------------------------------------------------------
    @property
    def media_types(self) -> tuple[str, ...]:
        return tuple(layout.media_type for layout in self.layouts)

    @property
    def modality(self) -> str:
        """The tokenizer's own modality (its first media type)."""
        return self.layouts[0].media_type

    @cached_property
    def span_types(self) -> tuple[SpanType, ...]:
        """One per media type, in `media_types` order; markers at `start_id + 2 * i` (start)
        and `start_id + 2 * i + 1` (end)."""
        return tuple(
            SpanType(layout.media_type, self.start_id + 2 * i, self.start_id + 2 * i + 1, layout,
                     self.dim_id, self.code_offset, self.options.max_dim, self.name,
                     self.name if i == 0 else f"{self.name}:{layout.media_type}")
            for i, layout in enumerate(self.layouts)
        )

    def span_type(self, media_type: str | None = None) -> SpanType:
        """The spans of `media_type` (default: `modality`); MmtokError if not served here."""
        for kind in self.span_types:
            if kind.media_type == (media_type or self.modality):
                return kind
        raise MmtokError(f"stream '{self.name}' holds {' and '.join(self.media_types)}, not {media_type}")

    # -- geometry --------------------------------------------------------------------
    @property
    def end_id(self) -> int:
        return self.start_id + 1

    @property
    def num_dims(self) -> int:
        """Header tokens after `modality`'s start token: 2 for images, 3 for video, 0 for audio."""
        return self.layouts[0].header_sides

    @property
    def dim_id(self) -> int:
        """Id of header value 1 (value n is `dim_id + n - 1`), after the span markers."""
        return self.start_id + 2 * len(self.layouts)

    @property
    def has_header(self) -> bool:
        return any(layout.header_sides for layout in self.layouts)

    @property
    def code_offset(self) -> int:
        """First id of the layout block: layout id `i` is LLM id `code_offset + i`."""
        return self.dim_id + (self.options.max_dim if self.has_header else 0)

    @property
    def layout(self) -> Layout:
        """The layout of `modality`'s spans."""
        return self.layouts[0]

    @property
    def stop_id(self) -> int:
        """One past the last id of the block (the layouts nest: the largest spans it)."""
        return self.code_offset + max(layout.vocab_size for layout in self.layouts)

    def code_ranges(self) -> list[tuple[int, int]]:
        """LLM id range `[start, stop)` of each code stream (one per RVQ level for audio)."""
        return [(self.code_offset + a, self.code_offset + b) for a, b in self.layout.ranges()]

    # -- token strings (only used once, to register the tokens) ------------------------
    def token_strings(self) -> list[str]:
        """Every token of the block in id order, e.g. `<|image_start|>`, `<|image_17|>`;
        markers name the media type when the stream serves several (`<|emu3_image_start|>`)."""
        n = self.name
        names = []
        for m in self.media_types:
            prefix = f"{n}_{m}" if len(self.layouts) > 1 else n
            names += [f"<|{prefix}_start|>", f"<|{prefix}_end|>"]
        if self.has_header:
            names += [f"<|{n}_dim_{i}|>" for i in range(1, self.options.max_dim + 1)]
        widest = max(self.layouts, key=lambda layout: layout.vocab_size)
        if isinstance(widest, FrameMajorLayout):
            for level, size in enumerate(widest.codebook_sizes):
                names += [f"<|{n}_l{level}_{c}|>" for c in range(size)]
        else:
            names += [f"<|{n}_{c}|>" for c in range(widest.codebook_size)]
            if widest.row_separator:
                names.append(f"<|{n}_row|>")
            if widest.frame_separator:
                names.append(f"<|{n}_frame|>")
        assert len(names) == self.stop_id - self.start_id
        return names

    # -- spans of `modality` (other media types: `span_type(m)`) -----------------------
    def grid_of(self, codes: torch.Tensor) -> tuple[int, ...]:
        """The grid a span header states for `codes` (image `[h,w]`, video `[t,h,w]`)."""
        return self.span_type().grid_of(codes)[: self.num_dims]

    def span(self, codes: torch.Tensor, media_type: str | None = None) -> torch.Tensor:
        """codes of one item of `media_type` (default `modality`) -> the whole span as int64 ids
        (see `SpanType.span`)."""
        return self.span_type(media_type).span(codes)

    def body_length(self, grid: tuple[int, ...]) -> int:
        """Ids between header and end token for `grid` (audio: grid `(frames,)`)."""
        return self.span_type().body_length(grid)

    def unflatten(self, body: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """Body ids (LLM ids, no header / end) -> codes; MmtokError if they do not fit."""
        return self.span_type().unflatten(body, grid)

    # -- persistence -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The vocab file's entry. "layouts" (the tokenizer's) and "spans" (markers per media
        type) are written when a reader could not take them as implied: a stream of one media
        type laid out as its base class lays out that modality writes the same entry as
        before layouts were recorded, so the fingerprints of existing vocabs and
        pretokenized datasets (`mmtok.llm.shards.vocab_identity`) stay the same."""
        data = {
            "name": self.name, "modality": self.modality, "tokenizer": self.tokenizer,
            "codebook_sizes": list(self.codebook_sizes), "options": asdict(self.options),
            "ids": {
                "start": self.start_id, "end": self.end_id,
                "dims": [self.dim_id, self.code_offset] if self.has_header else None,
                "codes": [list(r) for r in self.code_ranges()],
                "block": [self.start_id, self.stop_id],
            },
        }
        if self.layouts != (MODALITIES[self.modality].implied_layout(self.codebook_sizes, self.options),):
            data["layouts"] = [layout_to_json(layout) for layout in self.layouts]
        if len(self.layouts) > 1:
            data["ids"]["spans"] = {t.media_type: [t.start_id, t.end_id] for t in self.span_types}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> MediaStream:
        try:
            codebook_sizes = tuple(data["codebook_sizes"])
            options = StreamOptions(**data["options"])
            if "layouts" in data:
                layouts = tuple(layout_from_json(layout) for layout in data["layouts"])
            else:  # implied (see `to_json`)
                layouts = (MODALITIES[data["modality"]].implied_layout(codebook_sizes, options),)
            stream = cls(data["name"], int(data["ids"]["start"]), codebook_sizes, dict(data["tokenizer"]), layouts, options)
            consistent = (
                layouts and stream.modality == data["modality"] and set(MODALITIES) >= set(stream.media_types)
                and len(set(stream.media_types)) == len(layouts) and stream.to_json()["ids"] == data["ids"]
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MmtokError(f"{source}: damaged media stream entry ({err}); re-run `mmtok extend`") from None
        if not consistent:
            raise MmtokError(f"{source}: stream '{stream.name}' has inconsistent ids; re-run `mmtok extend`")
        return stream


def tokenizer_identity(tok: Tokenizer) -> dict[str, Any]:
    """What a vocab records about a tokenizer (checked again whenever it is loaded)."""
    return {"kind": tok.kind, "fingerprint": tok.fingerprint, "source": str(tok.name_or_path)}


def make_stream(name: str, tok: Tokenizer, start_id: int, options: StreamOptions) -> MediaStream:
    """The block for `tok` starting at `start_id`: one layout per media type it serves, each
    from `tok.token_layout` with the options that apply to its media type (its `Modality`
    checks and picks them)."""
    if tok.modality not in MODALITIES:
        raise MmtokError(f"{name}: tokenizer modality '{tok.modality}' cannot be added to a vocabulary")
    if options.max_dim < 1:
        raise MmtokError(f"{name}: --max-grid must be at least 1, got {options.max_dim}")
    options, layout_options = MODALITIES[tok.modality].stream_options(name, tok, options)
    layouts = tuple(tok.token_layout(media_type=m, **layout_options) for m in tok.media_types)
    _check_nested(name, layouts)
    return MediaStream(name, start_id, tuple(tok.codebook_sizes), tokenizer_identity(tok), layouts, options)


def _check_nested(name: str, layouts: tuple[Layout, ...]) -> None:
    """The layouts of one block share it: the same code ranges, and a separator id means the
    same in each (a narrower layout's ids are a prefix of the widest's)."""
    widest = max(layouts, key=lambda layout: layout.vocab_size)
    for layout in layouts:
        same = layout.ranges() == widest.ranges() and all(
            getattr(layout, sep, None) in (None, getattr(widest, sep, None)) for sep in ("separator_id", "frame_separator_id")
        )
        if not same:
            raise MmtokError(f"{name}: the tokenizer's {layout.media_type} and {widest.media_type} layouts do not share one id block")
