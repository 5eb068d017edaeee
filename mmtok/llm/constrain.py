"""Constrained generation: a `LogitsProcessor` that keeps generated media spans well-formed.

    from transformers import LogitsProcessorList
    proc = MediaLogitsProcessor(vocab, grids={"image": (16, 16)})
    model.generate(input_ids, logits_processor=LogitsProcessorList([proc]), do_sample=True)

Every row of the batch is either in text or inside a span of one stream. In text, the LLM's
own ids and the streams' start tokens are allowed. After a start token the grammar of
`mmtok.llm.streams` is enforced position by position: header dims (free 1..max_dim or fixed
by `grids`), exactly the body the header's grid needs (separators exactly where the layout
puts them, audio levels in order), then the end token. Ids past `vocab.vocab_size` (rows added
by `pad_to_multiple_of`) are never allowed.

How a row's state follows its tokens (so prompts that are not well-formed still give a
defined state): a start token opens a span of its stream (even inside another span); inside a
span, an id of the span's own block advances it (a header position records its value, clamped
to 1..max_dim); the span's end token, or any id outside its block, returns the row to text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from mmtok.errors import MmtokError
from mmtok.llm.streams import MediaStream
from mmtok.llm.vocab import MediaVocab

GRID_SIDES = {"image": 2, "video": 3, "audio": 1}


@dataclass
class _State:
    """Where each row of the batch is, after the ids the processor last saw.

    `stream` `[B]`: stream index, -1 in text. `pos` `[B]`: ids of the span after its start
    token (header included). `dims` `[B,3]`: header values as `(t, h, w)`, 1 where not stated
    (images fill `h, w`; audio none), so every row has a valid grid to compute with.
    """

    stream: torch.Tensor
    pos: torch.Tensor
    dims: torch.Tensor


@dataclass
class _Consts:
    """Per-stream ids as `[S]` tensors (indexed by stream index) and the id -> stream table, on
    one device, so state updates are gathers rather than Python loops over rows."""

    table: torch.Tensor      # [vocab_size + 1]: stream of each id, -1 text; the extra last entry
                             # (-2) is where ids >= vocab_size land after clamping
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
            modality: image `(h, w)`, video `(t, h, w)`, audio `(frames,)` (exact length).
            Streams without a grid let the model choose (header dims 1..max_dim; audio ends at
            any frame boundary after at least one frame).
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
        block = c.table[token.clamp(0, self.vocab.vocab_size)]
        opens = (block >= 0) & (token == c.start[block.clamp(min=0)])
        s = state.stream.clamp(min=0)
        stays = (state.stream >= 0) & (block == state.stream) & ~opens & (token != c.end[s])
        value = torch.minimum((token - c.dim[s] + 1).clamp(min=1), c.max_dim[s])
        dims = _record(state.dims, 3 - c.num_dims[s] + state.pos, value, stays & (state.pos < c.num_dims[s]))
        return _State(
            stream=torch.where(opens, block, torch.where(stays, state.stream, -1)),
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
            return _State(stream=zeros - 1, pos=zeros, dims=torch.ones(rows, 3, dtype=torch.long, device=ids.device))
        block = c.table[ids.clamp(0, self.vocab.vocab_size)]                       # [B, L]
        is_start = (block >= 0) & (ids == c.start[block.clamp(min=0)])
        at = torch.arange(length, device=ids.device)
        last = torch.where(is_start, at, -1).amax(dim=-1)                         # [B], -1: none
        s = block.gather(1, last.clamp(min=0)[:, None])[:, 0].clamp(min=0)
        # The span is still open if nothing after its start left it (end token or foreign id).
        left = ((at > last[:, None]) & ((block != s[:, None]) | (ids == c.end[s][:, None]))).any(dim=-1)
        pos = length - 1 - last
        dims = torch.ones(rows, 3, dtype=torch.long, device=ids.device)
        num_dims = c.num_dims[s]
        for j in range(3):   # header token j follows the start token at last + 1 + j
            token = ids.gather(1, (last + 1 + j).clamp(max=length - 1)[:, None])[:, 0]
            value = torch.minimum((token - c.dim[s] + 1).clamp(min=1), c.max_dim[s])
            dims = _record(dims, 3 - num_dims + j, value, (j < pos) & (j < num_dims))
        stream = torch.where((last < 0) | left, -1, s)
        return _State(stream=stream, pos=torch.where(stream >= 0, pos, 0), dims=dims)

    # -- masks -----------------------------------------------------------------------
    def _allowed(self, state: _State, width: int, device: torch.device) -> torch.Tensor:
        """`[B, width]` bool: the ids allowed next, from per-row `[lo, hi)` intervals, one
        optional extra id (audio's end token at a frame boundary) and the text mask."""
        lo, hi, extra = self._intervals(state)
        ids = torch.arange(width, device=device)
        allowed = (ids >= lo[:, None]) & (ids < hi[:, None]) | (ids == extra[:, None])
        return allowed | ((state.stream < 0)[:, None] & self._text_mask(width, device))

    def _intervals(self, state: _State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row `[B]`: `[lo, hi)` of allowed ids and one extra allowed id (-1: none); text
        rows get an empty interval (their ids come from the text mask)."""
        lo = torch.zeros_like(state.pos)
        hi = torch.zeros_like(state.pos)
        extra = torch.full_like(state.pos, -1)
        t, h, w = state.dims.unbind(-1)
        for i, stream in enumerate(self.streams):
            if stream.modality == "audio":
                s_lo, s_hi, s_extra = self._audio_intervals(stream, state.pos)
            else:
                s_lo, s_hi = self._visual_intervals(stream, state.pos, (h, w) if stream.modality == "image" else (t, h, w))
                s_extra = extra
            rows = state.stream == i
            lo, hi, extra = torch.where(rows, s_lo, lo), torch.where(rows, s_hi, hi), torch.where(rows, s_extra, extra)
        return lo, hi, extra

    def _visual_intervals(self, stream: MediaStream, pos: torch.Tensor, grid: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Image / video rows at span position `pos` `[B]` with header grid `grid` (tensors)."""
        body = pos - stream.num_dims
        lo, hi = stream.layout.allowed_ranges(body.clamp(min=0), grid)
        lo, hi = lo + stream.code_offset, hi + stream.code_offset
        done = body >= stream.body_length(grid)                 # the body is complete: end
        lo, hi = torch.where(done, stream.end_id, lo), torch.where(done, stream.end_id + 1, hi)
        header = pos < stream.num_dims
        fixed = self.grids.get(stream.name)
        if fixed is None:
            h_lo, h_hi = stream.dim_id, stream.dim_id + stream.options.max_dim
        else:
            h_lo = stream.dim_id - 1 + self._grid_tensor(stream, pos.device)[pos.clamp(max=stream.num_dims - 1)]
            h_hi = h_lo + 1
        return torch.where(header, h_lo, lo), torch.where(header, h_hi, hi)

    def _audio_intervals(self, stream: MediaStream, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Audio rows at body position `pos` `[B]`: level `pos % levels`'s range; the end token
        is also allowed at a frame boundary after >= 1 frame (free length), or forced once the
        fixed / maximum number of frames is written."""
        levels = stream.layout.levels
        lo, hi = stream.layout.allowed_ranges(pos)
        lo, hi = lo + stream.code_offset, hi + stream.code_offset
        fixed = self.grids.get(stream.name)
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

            self._consts[device] = _Consts(
                table=table.to(device),
                start=per_stream([s.start_id for s in self.streams]),
                end=per_stream([s.end_id for s in self.streams]),
                dim=per_stream([s.dim_id for s in self.streams]),
                max_dim=per_stream([s.options.max_dim for s in self.streams]),
                num_dims=per_stream([s.num_dims for s in self.streams]),
            )
        return self._consts[device]

    def _grid_tensor(self, stream: MediaStream, device: torch.device) -> torch.Tensor:
        key = (stream.name, device)
        if key not in self._grid_tensors:
            self._grid_tensors[key] = torch.tensor(self.grids[stream.name], dtype=torch.long, device=device)
        return self._grid_tensors[key]

    def _text_mask(self, width: int, device: torch.device) -> torch.Tensor:
        """`[width]` bool: what a text row may produce (text ids and start tokens)."""
        key = (width, device)
        if key not in self._text_masks:
            mask = torch.zeros(width, dtype=torch.bool)
            mask[: self.vocab.text_vocab_size] = True
            mask[[s.start_id for s in self.streams]] = True
            self._text_masks[key] = mask.to(device)
        return self._text_masks[key]


def _record(dims: torch.Tensor, slot: torch.Tensor, value: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """dims `[B,3]` with `value[b]` written at column `slot[b]` of the rows where `where[b]`."""
    hit = (torch.arange(3, device=dims.device) == slot[:, None]) & where[:, None]
    return torch.where(hit, value[:, None], dims)


def _resolve_grids(streams: list[MediaStream], grids: dict[str, tuple[int, ...] | int]) -> dict[str, tuple[int, ...]]:
    """`grids` keyed by stream name or modality -> fixed grid per stream name (checked)."""
    keys = {s.name for s in streams} | {s.modality for s in streams}
    unknown = sorted(set(grids) - keys)
    if unknown:
        raise MmtokError(f"grids for {unknown}: no such stream or modality; this vocab has {sorted(keys)}")
    resolved = {}
    for s in streams:
        grid = grids.get(s.name, grids.get(s.modality))
        if grid is None:
            continue
        grid = (grid,) if isinstance(grid, int) else tuple(int(d) for d in grid)
        sides = GRID_SIDES[s.modality]
        top = s.options.max_dim if s.num_dims else None
        if len(grid) != sides or any(d < 1 or (top is not None and d > top) for d in grid):
            shape = {"image": "(h, w)", "video": "(t, h, w)", "audio": "(frames,)"}[s.modality]
            limit = f" with sides 1..{top}" if top else " with frames >= 1"
            raise MmtokError(f"grid {grid} for stream '{s.name}': expected {shape}{limit}")
        resolved[s.name] = grid
    return resolved
