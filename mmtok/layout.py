"""How a tokenizer's codes become one flat sequence of ids for an LLM, and back.

Each tokenizer owns a block of ids `0..vocab_size-1` (the vocabulary code later shifts the
block past the text vocabulary). A layout says which part of the block each position may
use, so constrained generation can mask logits and parsing can check what a model wrote:

- `RasterLayout` (images): codes `[h,w]` in raster order, one range; with
  `row_separator=True` an extra id (the last of the block) ends every row, so a grid of any
  width survives flattening (Emu3 / Lumina style). It is a one-frame `VideoLayout`.
- `FrameMajorLayout` (residual audio): codes `[K,t]` as t0k0, t0k1, ..., t0k(K-1), t1k0, ...;
  level `k` has its own range `[offset_k, offset_k + size_k)`, so a model always knows which
  level it is writing. `levels` keeps only the first k levels (a lower bitrate).
- `VideoLayout` (video): codes `[t,h,w]` frame by frame, each in raster order, with optional
  row and frame separator ids (the last ids of the block).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from mmtok.errors import MmtokError


@dataclass(frozen=True)
class FrameMajorLayout:
    """Residual audio codes `[K,t]`, frame-major; a span's grid is `(frames,)`. Any whole
    number of frames is a valid span, so no header states the length (`header_sides = 0`)."""

    codebook_sizes: tuple[int, ...]    # one per level kept
    media_type: ClassVar[str] = "audio"
    code_dims: ClassVar[int] = 2       # codes [K,t]
    grid_sides: ClassVar[int] = 1      # grid (frames,)
    grid_text: ClassVar[str] = "(frames,)"
    header_sides: ClassVar[int] = 0    # grid sides a span header states

    def grid_of(self, codes: torch.Tensor) -> tuple[int, ...]:
        """The grid of codes `[K,t]`: `(t,)`."""
        return (codes.shape[1],)

    @property
    def levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def vocab_size(self) -> int:
        return sum(self.codebook_sizes)

    def ranges(self) -> list[tuple[int, int]]:
        """`[start, stop)` of each level's ids within the block."""
        starts = [sum(self.codebook_sizes[:k]) for k in range(self.levels)]
        return [(s, s + n) for s, n in zip(starts, self.codebook_sizes)]

    def span_length(self, frames: int) -> int:
        return frames * self.levels

    def allowed(self, position: int, frames: int | None = None) -> tuple[int, int]:
        """Ids allowed at `position` of a span: the range of level `position % levels`."""
        start, stop = self.allowed_ranges(torch.tensor(position))
        return int(start), int(stop)

    def allowed_ranges(self, position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectorised `allowed`: positions (int64, any shape) -> `(start, stop)` int64 tensors
        of the same shape and device (the range of level `position % levels`)."""
        ranges = torch.tensor(self.ranges(), device=position.device)
        level = position % self.levels
        return ranges[level, 0], ranges[level, 1]

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[K,t]` (K >= levels; extra levels are dropped) -> ids `[t*levels]` int64."""
        if codes.ndim != 2 or codes.shape[0] < self.levels:
            raise ValueError(f"expected audio codes [K>={self.levels},t], got {tuple(codes.shape)}")
        offsets = torch.tensor([s for s, _ in self.ranges()])
        return (codes[: self.levels].long() + offsets[:, None]).T.reshape(-1)

    def unflatten(self, ids: torch.Tensor) -> torch.Tensor:
        """ids `[t*levels]` -> codes `[levels,t]`; MmtokError if an id is not in its level's range."""
        if ids.numel() % self.levels:
            raise MmtokError(f"audio span has {ids.numel()} ids, not a multiple of {self.levels} levels")
        frames = ids.long().reshape(-1, self.levels).T
        ranges = torch.tensor(self.ranges())
        bad = (frames < ranges[:, :1]) | (frames >= ranges[:, 1:])
        if bad.any():
            level, frame = (int(i) for i in bad.nonzero()[0])
            bad_id = int(frames[level, frame])
            raise MmtokError(f"audio span: frame {frame} level {level} has id {bad_id}, outside that level's range {self.ranges()[level]}")
        return frames - ranges[:, :1]


@dataclass(frozen=True)
class VideoLayout:
    """Video codes `[t,h,w]`: frame by frame, each frame in raster order. Optional
    separators: `row_separator` ends every row (id `codebook_size`), `frame_separator` ends
    every latent frame (the next id), so grids of any size and length survive flattening."""

    codebook_size: int
    row_separator: bool = False
    frame_separator: bool = False
    media_type: ClassVar[str] = "video"   # also names the span in error messages
    code_dims: ClassVar[int] = 3          # codes [t,h,w]
    grid_sides: ClassVar[int] = 3         # grid (t, h, w)
    grid_text: ClassVar[str] = "(t, h, w)"
    header_sides: ClassVar[int] = 3       # a span header states the whole grid

    def grid_of(self, codes: torch.Tensor) -> tuple[int, ...]:
        """The grid of codes `[t,h,w]` (images `[h,w]`): their shape."""
        return tuple(codes.shape)

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + int(self.row_separator) + int(self.frame_separator)

    @property
    def separator_id(self) -> int | None:
        return self.codebook_size if self.row_separator else None

    @property
    def frame_separator_id(self) -> int | None:
        return self.codebook_size + int(self.row_separator) if self.frame_separator else None

    def ranges(self) -> list[tuple[int, int]]:
        return [(0, self.codebook_size)]

    def _frame_length(self, h: int, w: int) -> int:
        return h * (w + int(self.row_separator)) + int(self.frame_separator)

    def span_length(self, grid: tuple[int, int, int]) -> int:
        t, h, w = grid
        return t * self._frame_length(h, w)

    def allowed(self, position: int, grid: tuple[int, ...]) -> tuple[int, int]:
        """Ids allowed at `position` of a span for `grid` (`(t, h, w)`; images `(h, w)`): `[start, stop)`."""
        start, stop = self.allowed_ranges(torch.tensor(position), grid)
        return int(start), int(stop)

    def allowed_ranges(self, position: torch.Tensor, grid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectorised `allowed`: positions (int64, any shape) and `grid` `(t, h, w)` of ints or
        int64 tensors broadcastable to them (sides >= 1) -> `(start, stop)` int64 tensors: a
        separator's single id where a row / frame ends, else the codebook range."""
        _, h, w = grid
        frame_length = self._frame_length(h, w)
        within = position % frame_length
        start, stop = torch.zeros_like(position), torch.full_like(position, self.codebook_size)
        if self.row_separator:
            row_end = within % (w + 1) == w
            start = torch.where(row_end, self.separator_id, start)
            stop = torch.where(row_end, self.separator_id + 1, stop)
        if self.frame_separator:  # the frame separator follows the last row's separator
            frame_end = within == frame_length - 1
            start = torch.where(frame_end, self.frame_separator_id, start)
            stop = torch.where(frame_end, self.frame_separator_id + 1, stop)
        return start, stop

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[t,h,w]` -> ids `[span_length]` int64."""
        if codes.ndim != 3:
            raise ValueError(f"expected video codes [t,h,w], got {tuple(codes.shape)}")
        ids = codes.long()
        t, h, _ = ids.shape
        if self.row_separator:
            ids = torch.cat([ids, torch.full((t, h, 1), self.codebook_size)], dim=2)
        ids = ids.reshape(t, -1)
        if self.frame_separator:
            ids = torch.cat([ids, torch.full((t, 1), self.frame_separator_id)], dim=1)
        return ids.reshape(-1)

    def unflatten(self, ids: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """ids `[span_length]` -> codes `[t,h,w]`; MmtokError if the ids do not fit the layout."""
        t, h, w = grid
        length = t * self._frame_length(h, w)
        if ids.numel() != length:
            raise MmtokError(f"{self.media_type} span has {ids.numel()} ids, a {t}x{h}x{w} grid needs {length}")
        frames = ids.long().reshape(t, self._frame_length(h, w))
        if self.frame_separator:
            if (frames[:, -1] != self.frame_separator_id).any():
                raise MmtokError(f"{self.media_type} span: a frame does not end with the frame separator")
            frames = frames[:, :-1]
        rows = frames.reshape(t, h, w + int(self.row_separator))
        if self.row_separator:
            if (rows[..., -1] != self.codebook_size).any():
                raise MmtokError(f"{self.media_type} span: a row does not end with the row separator")
            rows = rows[..., :-1]
        if rows.numel() and (rows.min() < 0 or rows.max() >= self.codebook_size):
            raise MmtokError(f"{self.media_type} span: ids outside 0..{self.codebook_size - 1}")
        return rows


@dataclass(frozen=True)
class RasterLayout(VideoLayout):
    """Images: a `VideoLayout` of one frame without a frame separator; grids are `(h, w)`
    and codes `[h,w]`."""

    frame_separator: bool = field(default=False, init=False)
    media_type: ClassVar[str] = "image"
    code_dims: ClassVar[int] = 2          # codes [h,w]
    grid_sides: ClassVar[int] = 2         # grid (h, w)
    grid_text: ClassVar[str] = "(h, w)"
    header_sides: ClassVar[int] = 2

    def span_length(self, grid: tuple[int, int]) -> int:
        return super().span_length((1, *grid))

    # `allowed` is inherited: it goes through this `allowed_ranges`, so it takes `(h, w)`.
    def allowed_ranges(self, position: torch.Tensor, grid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectorised `allowed` for grids `(h, w)` (ints or tensors); see `VideoLayout`."""
        return super().allowed_ranges(position, (1, *grid))

    def flatten(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[h,w]` -> ids `[span_length]` int64."""
        if codes.ndim != 2:
            raise ValueError(f"expected image codes [h,w], got {tuple(codes.shape)}")
        return super().flatten(codes[None])

    def unflatten(self, ids: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """ids `[span_length]` -> codes `[h,w]`; MmtokError if the ids do not fit the layout."""
        return super().unflatten(ids, (1, *grid))[0]


Layout = FrameMajorLayout | VideoLayout | RasterLayout
_BY_MEDIA_TYPE = {cls.media_type: cls for cls in (FrameMajorLayout, VideoLayout, RasterLayout)}


def layout_to_json(layout: Layout) -> dict[str, Any]:
    """`{"media_type": ..., <the layout's fields>}` (what a vocab file records)."""
    return {"media_type": layout.media_type, **{f.name: getattr(layout, f.name) for f in fields(layout) if f.init}}


def layout_from_json(data: dict[str, Any]) -> Layout:
    """Inverse of `layout_to_json`; KeyError / TypeError / ValueError if `data` is not one."""
    data = dict(data)
    cls = _BY_MEDIA_TYPE[data.pop("media_type")]
    if "codebook_sizes" in data:
        data["codebook_sizes"] = tuple(data["codebook_sizes"])
    sizes = data.get("codebook_sizes", (data.get("codebook_size"),))
    flags = [v for k, v in data.items() if k.endswith("_separator")]
    if not sizes or any(type(n) is not int or n < 1 for n in sizes) or any(type(v) is not bool for v in flags):
        raise ValueError(f"layout fields {data} are not codebook sizes and separator flags")
    return cls(**data)
