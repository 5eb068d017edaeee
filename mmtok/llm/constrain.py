"""Constrained generation: a `LogitsProcessor` that keeps generated media spans well-formed.

    from transformers import LogitsProcessorList
    proc = MediaLogitsProcessor(vocab, grids={"image": (16, 16)})
    model.generate(input_ids, logits_processor=LogitsProcessorList([proc]), do_sample=True)

Every row of the batch is either in text or inside a span of one span type (a stream's spans
of one media type: an Emu3 stream has image and video span types). In text, the LLM's own ids
and every span type's start token are allowed. After a start token the grammar of
`mmtok.llm.streams` is enforced position by position, with the layout of that media type:
header dims (free 1..max_dim or fixed by `grids`), exactly the body the header's grid needs
(separators exactly where the layout puts them, audio levels in order), then the end token.
Ids past `vocab.vocab_size` (rows added by `pad_to_multiple_of`) are never allowed.

How a row's state follows its tokens (so prompts that are not well-formed still give a
defined state): a start token opens a span of its type (even inside another span); inside a
span, an id of its stream's block advances it (a header position records its value, clamped
to 1..max_dim); the span's end token, or any id outside its block, returns the row to text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from mmtok.errors import MmtokError
from mmtok.llm.streams import MediaStream, SpanType
from mmtok.llm.vocab import MediaVocab


@dataclass
class _State:
    """Where each row of the batch is, after the ids the processor last saw.

    `kind` `[B]`: span type index (into `MediaLogitsProcessor.kinds`), -1 in text. `pos`
    `[B]`: ids of the span after its start token (header included). `dims` `[B,3]`: header
    values as `(t, h, w)`, 1 where not stated (images fill `h, w`; audio none), so every row
    has a valid grid to compute with.
    """

    kind: torch.Tensor
    pos: torch.Tensor
    dims: torch.Tensor


@dataclass
class _Consts:
    """Per-span-type ids as `[K]` tensors (indexed by span type) and the id -> stream and
    start id -> span type tables, on one device, so state updates are gathers rather than
    Python loops over rows."""

    table: torch.Tensor      # [vocab_size + 1]: stream of each id, -1 text; the extra last entry
                             # (-2) is where ids >= vocab_size land after clamping
    opens: torch.Tensor      # [vocab_size + 1]: the span type a start id opens, -1 for other ids
    owner: torch.Tensor      # stream index of each span type (whose block its ids are in)
    start: torch.Tensor
    end: torch.Tensor
    dim: torch.Tensor
    max_dim: torch.Tensor
    num_dims: torch.Tensor


class MediaLogitsProcessor(LogitsProcessor):
    """Masks logits so every generated media span is well-formed (see the module docstring).

    Args:
        vocab: the extended vocabulary.
        grids: fixes the grid of every generated span of a stream, keyed by stream name or
            media type: image `(h, w)`, video `(t, h, w)`, audio `(frames,)` (exact length).
            A stream name keys the spans of its modality; "NAME:MEDIA_TYPE" those of another
            media type it serves (Emu3's "emu3:image"). Spans without a grid let the model
            choose (header dims 1..max_dim; audio ends at any frame boundary after at least
            one frame).
        max_audio_frames: for audio streams without a fixed grid, the end token is forced after
            this many frames (None: no limit).

    Works for any batch size, greedy, sampling and beam search: state is kept per row and
    advanced by the last token when the new ids extend the ones seen last call; otherwise (first
    call, new prompt, beams reordered) it is rebuilt from the ids, vectorised over rows.
    """

    def __init__(self, vocab: MediaVocab, grids: dict[str, tuple[int, ...] | int] | None = None, max_audio_frames: int | None = None):
        if max_audio_frames is not None and max_audio_frames < 1:
            raise MmtokError(f"max_audio_frames must be at least 1, got {max_audio_frames}")
        self.vocab = vocab
        self.streams = list(vocab.streams)
        # every span type of every stream: (stream index, span type)
        self.kinds = [(i, t) for i, s in enumerate(self.streams) for t in s.span_types]
        self.grids = _resolve_grids(self.streams, grids or {})
        self.max_audio_frames = max_audio_frames
        self._consts: dict[torch.device, _Consts] = {}
        self._grid_tensors: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._text_masks: dict[tuple[int, torch.device], torch.Tensor] = {}
        self._seen: torch.Tensor | None = None   # the input_ids `_state` belongs to
        self._state: _State | None = None

    # -- the LogitsProcessor call ----------------------------------------------------
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """input_ids `[B, L]`, scores `[B, V]` (V >= vocab_size) -> new scores `[B, V]` with
        every id not allowed at the next position set to -inf (allowed ones unchanged)."""
        if scores.shape[-1] < self.vocab.vocab_size:
            raise MmtokError(
                f"the model has {scores.shape[-1]} logits but the vocab has {self.vocab.vocab_size} ids; "
                "generate with the extended checkpoint (resized embeddings)"
            )
        state = self._advance(input_ids)
        return scores.masked_fill(~self._allowed(state, scores.shape[-1], scores.device), float("-inf"))

    # -- state -----------------------------------------------------------------------
    def _advance(self, ids: torch.Tensor) -> _State:
        """The state after `ids` `[B, L]`: one step from the last call's state when `ids` is
        that call's ids plus one token (the usual generate loop), else a replay."""
        seen = self._seen
        extends = (
            seen is not None and seen.device == ids.device and seen.shape == (ids.shape[0], ids.shape[1] - 1)
            and torch.equal(ids[:, :-1], seen)   # beam search reorders rows: then replay
        )
        self._state = self._step(self._state, ids[:, -1]) if extends else self._replay(ids)
        self._seen = ids
        return self._state

    def _step(self, state: _State, token: torch.Tensor) -> _State:
        """Advance every row by its token `[B]` (the rules of the module docstring)."""
        c = self._constants(token.device)
        clamped = token.clamp(0, self.vocab.vocab_size)
        block, opened = c.table[clamped], c.opens[clamped]
        opens = opened >= 0
        k = state.kind.clamp(min=0)
        stays = (state.kind >= 0) & (block == c.owner[k]) & ~opens & (token != c.end[k])
        value = torch.minimum((token - c.dim[k] + 1).clamp(min=1), c.max_dim[k])
        dims = _record(state.dims, 3 - c.num_dims[k] + state.pos, value, stays & (state.pos < c.num_dims[k]))
        return _State(
            kind=torch.where(opens, opened, torch.where(stays, state.kind, -1)),
            pos=torch.where(stays, state.pos + 1, 0),
            dims=torch.where(opens[:, None], 1, dims),
        )

    def _replay(self, ids: torch.Tensor) -> _State:
        """The state after `ids` `[B, L]` from scratch. Only the ids after each row's last start
        token matter (a start token opens a span whatever came before), so this is a handful
        of `[B, L]` ops, whatever the prompt length."""
        c = self._constants(ids.device)
        rows, length = ids.shape
        if length == 0:   # generating from inputs_embeds alone: every row starts in text
            zeros = torch.zeros(rows, dtype=torch.long, device=ids.device)
            return _State(kind=zeros - 1, pos=zeros, dims=torch.ones(rows, 3, dtype=torch.long, device=ids.device))
        clamped = ids.clamp(0, self.vocab.vocab_size)
        block, opened = c.table[clamped], c.opens[clamped]                        # [B, L]
        at = torch.arange(length, device=ids.device)
        last = torch.where(opened >= 0, at, -1).amax(dim=-1)                      # [B], -1: none
        k = opened.gather(1, last.clamp(min=0)[:, None])[:, 0].clamp(min=0)
        # The span is still open if nothing after its start left it (end token or foreign id).
        left = ((at > last[:, None]) & ((block != c.owner[k][:, None]) | (ids == c.end[k][:, None]))).any(dim=-1)
        pos = length - 1 - last
        dims = torch.ones(rows, 3, dtype=torch.long, device=ids.device)
        num_dims = c.num_dims[k]
        for j in range(3):   # header token j follows the start token at last + 1 + j
            token = ids.gather(1, (last + 1 + j).clamp(max=length - 1)[:, None])[:, 0]
            value = torch.minimum((token - c.dim[k] + 1).clamp(min=1), c.max_dim[k])
            dims = _record(dims, 3 - num_dims + j, value, (j < pos) & (j < num_dims))
        kind = torch.where((last < 0) | left, -1, k)
        return _State(kind=kind, pos=torch.where(kind >= 0, pos, 0), dims=dims)

    # -- masks -----------------------------------------------------------------------
    def _allowed(self, state: _State, width: int, device: torch.device) -> torch.Tensor:
        """`[B, width]` bool: the ids allowed next, from per-row `[lo, hi)` intervals, one
        optional extra id (audio's end token at a frame boundary) and the text mask."""
        lo, hi, extra = self._intervals(state)
        ids = torch.arange(width, device=device)
        allowed = (ids >= lo[:, None]) & (ids < hi[:, None]) | (ids == extra[:, None])
        return allowed | ((state.kind < 0)[:, None] & self._text_mask(width, device))

    def _intervals(self, state: _State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row `[B]`: `[lo, hi)` of allowed ids and one extra allowed id (-1: none); text
        rows get an empty interval (their ids come from the text mask)."""
        lo = torch.zeros_like(state.pos)
        hi = torch.zeros_like(state.pos)
        extra = torch.full_like(state.pos, -1)
        thw = state.dims.unbind(-1)
        for i, (_, kind) in enumerate(self.kinds):
            if kind.free_length:
                s_lo, s_hi, s_extra = self._audio_intervals(kind, state.pos)
            else:   # images state (h, w): the last two of (t, h, w)
                s_lo, s_hi = self._visual_intervals(kind, state.pos, thw[3 - kind.layout.grid_sides:])
                s_extra = extra
            rows = state.kind == i
            lo, hi, extra = torch.where(rows, s_lo, lo), torch.where(rows, s_hi, hi), torch.where(rows, s_extra, extra)
        return lo, hi, extra

    def _visual_intervals(self, stream: SpanType, pos: torch.Tensor, grid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Image / video rows at span position `pos` `[B]` with header grid `grid` (tensors)."""
        body = pos - stream.num_dims
        lo, hi = stream.layout.allowed_ranges(body.clamp(min=0), grid)
        lo, hi = lo + stream.code_offset, hi + stream.code_offset
        done = body >= stream.body_length(grid)                 # the body is complete: end
        lo, hi = torch.where(done, stream.end_id, lo), torch.where(done, stream.end_id + 1, hi)
        header = pos < stream.num_dims
        fixed = self.grids.get(stream.key)
        if fixed is None:
            h_lo, h_hi = stream.dim_id, stream.dim_id + stream.max_dim
        else:
            h_lo = stream.dim_id - 1 + self._grid_tensor(stream, pos.device)[pos.clamp(max=stream.num_dims - 1)]
            h_hi = h_lo + 1
        return torch.where(header, h_lo, lo), torch.where(header, h_hi, hi)

    def _audio_intervals(self, stream: SpanType, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Audio rows at body position `pos` `[B]`: level `pos % levels`'s range; the end token
        is also allowed at a frame boundary after >= 1 frame (free length), or forced once the
        fixed / maximum number of frames is written."""
        levels = stream.layout.levels
        lo, hi = stream.layout.allowed_ranges(pos)
        lo, hi = lo + stream.code_offset, hi + stream.code_offset
        fixed = self.grids.get(stream.key)
        frames = fixed[0] if fixed else self.max_audio_frames
        # A fixed length allows no early end; a free one may end after any whole frame.
        boundary = (pos % levels == 0) & (pos > 0) if fixed is None else torch.zeros_like(pos, dtype=torch.bool)
        extra = torch.where(boundary, stream.end_id, -1)
        if frames is not None:   # (a free span's extra id is this end token too: no clash)
            done = pos >= frames * levels
            lo, hi = torch.where(done, stream.end_id, lo), torch.where(done, stream.end_id + 1, hi)
        return lo, hi, extra

    # -- cached tensors --------------------------------------------------------------
    def _constants(self, device: torch.device) -> _Consts:
        if device not in self._consts:
            # The vocab's id -> stream table up to vocab_size, plus one pad entry (-2) that
            # every id >= vocab_size is clamped onto.
            table = torch.cat([self.vocab.block_table[: self.vocab.vocab_size], torch.tensor([-2])])

            def per_stream(values: list[int]) -> torch.Tensor:
                return torch.tensor(values or [0], dtype=torch.long, device=device)

            opens = torch.full_like(table, -1)
            for k, (_, kind) in enumerate(self.kinds):
                opens[kind.start_id] = k
            kinds = [kind for _, kind in self.kinds]
            self._consts[device] = _Consts(
                table=table.to(device),
                opens=opens.to(device),
                owner=per_stream([i for i, _ in self.kinds]),
                start=per_stream([t.start_id for t in kinds]),
                end=per_stream([t.end_id for t in kinds]),
                dim=per_stream([t.dim_id for t in kinds]),
                max_dim=per_stream([t.max_dim for t in kinds]),
                num_dims=per_stream([t.num_dims for t in kinds]),
            )
        return self._consts[device]

    def _grid_tensor(self, stream: SpanType, device: torch.device) -> torch.Tensor:
        key = (stream.key, device)
        if key not in self._grid_tensors:
            self._grid_tensors[key] = torch.tensor(self.grids[stream.key], dtype=torch.long, device=device)
        return self._grid_tensors[key]

    def _text_mask(self, width: int, device: torch.device) -> torch.Tensor:
        """`[width]` bool: what a text row may produce (text ids and start tokens)."""
        key = (width, device)
        if key not in self._text_masks:
            mask = torch.zeros(width, dtype=torch.bool)
            mask[: self.vocab.text_vocab_size] = True
            mask[[kind.start_id for _, kind in self.kinds]] = True
            self._text_masks[key] = mask.to(device)
        return self._text_masks[key]


def _record(dims: torch.Tensor, slot: torch.Tensor, value: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """dims `[B,3]` with `value[b]` written at column `slot[b]` of the rows where `where[b]`."""
    hit = (torch.arange(3, device=dims.device) == slot[:, None]) & where[:, None]
    return torch.where(hit, value[:, None], dims)


def _resolve_grids(streams: list[MediaStream], grids: dict[str, tuple[int, ...] | int]) -> dict[str, tuple[int, ...]]:
    """`grids` keyed by span-type key (a stream name, or "NAME:MEDIA_TYPE" for a stream's
    other media types) or media type -> fixed grid per span-type key (checked)."""
    kinds = [t for s in streams for t in s.span_types]
    keys = {t.key for t in kinds} | {t.media_type for t in kinds}
    unknown = sorted(set(grids) - keys)
    if unknown:
        raise MmtokError(f"grids for {unknown}: no such stream or modality; this vocab has {sorted(keys)}")
    resolved = {}
    for t in kinds:
        grid = grids.get(t.key, grids.get(t.media_type))
        if grid is None:
            continue
        grid = (grid,) if isinstance(grid, int) else tuple(int(d) for d in grid)
        top = t.max_dim if t.num_dims else None
        if len(grid) != t.layout.grid_sides or any(d < 1 or (top is not None and d > top) for d in grid):
            limit = f" with sides 1..{top}" if top else " with frames >= 1"
            raise MmtokError(f"grid {grid} for stream '{t.key}': expected {t.layout.grid_text}{limit}")
        resolved[t.key] = grid
    return resolved
