"""Parsing generated ids back into text and media segments (see `parse`).

A model writes what it likes: a span without its end token, a truncated image, a text id
in the middle of an audio body, a header that is not a number. `parse` never crashes on
such input; it finds every problem, names its position, and applies one policy:

- `strict`: raise `MmtokError` on the first problem (one line, with the position);
- `repair`: keep the best valid media it can make (see `parse` for the rules);
- `drop`: skip every media span with any problem.

Stray media ids and out-of-range ids in text are removed under `repair` and `drop`. A clean
sequence parses the same under all three policies, and `torch.cat([s.ids for s in
parsed.segments])` is always a clean sequence (equal to the input when it was clean).

The work is vectorised over the ids (one classification pass, then tensor ops per span),
so a span of thousands of codes parses in about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmtok.errors import MmtokError
from mmtok.llm.options import POLICIES
from mmtok.llm.streams import MediaStream, SpanType

# repair pads a truncated image / video unless more than half of it, and more than this many
# ids, would be invented
MAX_INVENTED = 4096

# Role of every id of a sequence.
TEXT, START, END, DIM, LAYOUT, INVALID = range(6)
# Kind of every id of an image / video body.
CODE, ROW, FRAME, FOREIGN = range(4)


@dataclass
class Segment:
    """A run of text ids, or one media span, of a parsed sequence.

    `start` / `stop` are positions `[start, stop)` in the parsed ids. `ids` is what the
    segment contributes to a clean sequence: the text ids kept (stray media ids removed),
    or the whole media span re-made from `codes` (the input span itself when it was clean).
    For media, `stream` names the block, `media_type` what the span holds (a stream may
    serve several: Emu3's image and video spans), `grid` the header's grid (image `(h, w)`,
    video `(t, h, w)`, audio `(frames,)`) and `codes` the tokenizer codes (image `[h,w]`,
    audio `[K,t]`, video `[t,h,w]`, int64). `problems` lists what was wrong with this
    segment and what was done.
    """

    start: int
    stop: int
    ids: torch.Tensor
    stream: MediaStream | None = None
    grid: tuple[int, ...] | None = None
    codes: torch.Tensor | None = None
    problems: list[str] = field(default_factory=list)
    media_type: str | None = None


@dataclass
class Parsed:
    segments: list[Segment]
    problems: list[str]   # every problem found, with its position

    @property
    def media(self) -> list[Segment]:
        """The media segments (each with its codes), in order."""
        return [s for s in self.segments if s.stream is not None]

    @property
    def text_ids(self) -> torch.Tensor:
        """Every text id kept, in order, without the media spans (int64)."""
        parts = [s.ids for s in self.segments if s.stream is None]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def parse(vocab, ids: torch.Tensor | list[int], policy: str = "repair") -> Parsed:
    """Split LLM ids (`[L]`, e.g. what `model.generate` wrote) into text and media segments.

    Spans begin at a start token and end at their stream's end token. What counts as a
    problem, and what `repair` does about it:

    - no end token (the sequence ends, or another span starts, first): the body runs over
      the stream's code and separator ids (a lone other id between two of them is taken as
      a corrupt code); the span is closed where they stop and text resumes;
    - a header that is cut short or holds anything but the stream's dim ids: the span
      cannot be read and is dropped (under every policy but `strict`);
    - a truncated image / video body: missing codes repeat the previous frame's codes at the
      same place (video), else the previous row's, else the last code;
    - an overlong body: the ids beyond the grid are ignored;
    - foreign ids in a body (text, other streams, header ids, out-of-range or pad-row ids):
      at a separator's place they stand for the separator, elsewhere they become the
      preceding code (the first position: code 0);
    - separators missing or misplaced: when the body holds exactly the grid's number of
      codes they are ignored (raster order); otherwise, when the row (or frame) separators
      give exactly the header's number of rows (frames), the codes are realigned on them;
    - audio: ids are realigned on their levels (a frame ends when a level does not rise),
      a level missing from a frame repeats the previous frame's code, and an incomplete
      last frame is dropped;
    - stray end / header / code ids and out-of-range ids in text are removed.

    `drop` skips any media span with a problem instead. Problems are short strings with
    the position, in `Parsed.problems` and the segment's `problems`; dropped spans are not
    among the segments. `strict` raises `MmtokError` on the first problem.
    """
    if policy not in POLICIES:
        raise MmtokError(f"unknown parse policy '{policy}'; use one of {', '.join(POLICIES)}")
    return _Parser(vocab, _as_ids(ids), policy).run()


# -- input ---------------------------------------------------------------------------
def _as_ids(ids) -> torch.Tensor:
    """Any 1-D sequence of integers (or `[1,L]`) -> int64 `[L]` on the CPU."""
    if isinstance(ids, torch.Tensor):
        t = ids.detach().cpu()
    else:
        try:
            t = torch.as_tensor(ids)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            try:  # Python ints beyond int64: clip (they are out of range either way)
                t = torch.as_tensor([max(min(int(v), 2**62), -(2**62)) for v in ids])
            except (TypeError, ValueError, OverflowError):
                raise MmtokError("ids must be a sequence of integers") from None
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 1:
        raise MmtokError(f"parse takes one sequence of ids `[L]`, got shape {tuple(t.shape)}; parse each row on its own")
    if t.dtype == torch.bool or t.is_complex():
        raise MmtokError(f"ids must be integers, got {t.dtype}")
    if t.is_floating_point():
        if not (torch.isfinite(t) & (t == t.round())).all():
            raise MmtokError("ids must be integers, got fractional or non-finite values")
        t = t.clamp(-(2.0**62), 2.0**62)
    return t.long()


def describe(vocab, token_id: int) -> str:
    """What an id is, in a few words (for problem messages)."""
    if token_id < 0 or token_id >= vocab.embedding_rows:
        return f"out-of-range id {token_id}"
    if token_id >= vocab.vocab_size:
        return f"pad-row id {token_id}"
    if token_id < vocab.text_vocab_size:
        return f"text id {token_id}"
    s = vocab.stream_of_id(token_id)
    offset = token_id - s.start_id
    if token_id < s.dim_id:
        span = s.span_types[offset // 2]
        name = s.name if len(s.span_types) == 1 else f"{s.name} {span.media_type}"
        return f"{name} {'end' if offset % 2 else 'start'} token"
    if token_id < s.code_offset:
        return f"{s.name} header id (dim {token_id - s.dim_id + 1})"
    return f"{s.name} code id {token_id}"


def _ffill(x: torch.Tensor, present: torch.Tensor, dim: int) -> torch.Tensor:
    """Fill the missing entries of `x` along `dim` with the nearest present one before
    them (0 where there is none)."""
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    index = torch.arange(x.shape[dim]).view(shape).expand_as(x)
    last = torch.where(present, index, -1).cummax(dim).values
    return torch.where(last >= 0, x.gather(dim, last.clamp(min=0)), 0)


def _fill_grid(grid: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Complete codes `[t,h,w]`: a missing code takes the previous frame's code at its place,
    in the first frame the previous row's, in the first row the previous code's (or 0)."""
    grid, present = grid.clone(), present.clone()
    grid[0, 0] = _ffill(grid[0, 0], present[0, 0], 0)
    present[0, 0] = True
    grid[0] = _ffill(grid[0], present[0], 0)
    present[0] = True
    return _ffill(grid, present, 0)


def _first(mask: torch.Tensor) -> int:
    return int(mask.nonzero()[0, 0])


def _grid_text(grid: tuple[int, ...]) -> str:
    return "x".join(map(str, grid))


# -- the parser ----------------------------------------------------------------------
class _Parser:
    def __init__(self, vocab, ids: torch.Tensor, policy: str):
        self.vocab, self.ids, self.policy = vocab, ids, policy
        self.problems: list[str] = []
        self.segments: list[Segment] = []
        n = ids.numel()
        valid = (ids >= 0) & (ids < vocab.vocab_size)
        self.sidx = torch.full((n,), -3, dtype=torch.long)
        self.sidx[valid] = vocab.block_table[ids[valid]]
        self.role = torch.full((n,), INVALID, dtype=torch.long)
        self.role[self.sidx == -1] = TEXT
        media = self.sidx >= 0
        if media.any() and vocab.streams:
            starts = torch.tensor([s.start_id for s in vocab.streams])
            code_offsets = torch.tensor([s.code_offset - s.start_id for s in vocab.streams])
            markers = torch.tensor([s.dim_id - s.start_id for s in vocab.streams])   # 2 per media type
            s = self.sidx[media]
            offset = ids[media] - starts[s]
            role = torch.full_like(offset, LAYOUT)
            role[offset < code_offsets[s]] = DIM
            is_marker = offset < markers[s]
            role[is_marker & (offset % 2 == 1)] = END
            role[is_marker & (offset % 2 == 0)] = START
            self.role[media] = role
        self.span_starts = (self.role == START).nonzero()[:, 0].tolist()
        # end positions of each span type, by its start token id
        self.ends = {t.start_id: (ids == t.end_id).nonzero()[:, 0] for st in vocab.streams for t in st.span_types}

    def report(self, message: str, action: str, into: list[str]) -> None:
        if self.policy == "strict":
            raise MmtokError(f"{message}; parse with policy 'repair' to fix it or 'drop' to skip it")
        line = f"{message}; {action}"
        self.problems.append(line)
        into.append(line)

    def run(self) -> Parsed:
        n = self.ids.numel()
        cursor = 0
        for k, p in enumerate(self.span_starts):
            self.text(cursor, p)
            region_end = self.span_starts[k + 1] if k + 1 < len(self.span_starts) else n
            cursor = self.span(p, region_end)
        self.text(cursor, n)
        return Parsed(self.segments, self.problems)

    # -- text --------------------------------------------------------------------------
    def text(self, a: int, b: int) -> None:
        if a >= b:
            return
        role = self.role[a:b]
        keep = role == TEXT
        problems: list[str] = []
        if not keep.all():
            found = []
            for what, mask in (("stray media id", (role != TEXT) & (role != INVALID)), ("out-of-range id", role == INVALID)):
                if mask.any():
                    found.append((a + _first(mask), what, int(mask.sum())))
            for i, what, count in sorted(found):
                first = describe(self.vocab, int(self.ids[i])).replace("out-of-range id", "id")
                self.report(f"text at {a}: {count} {what}{'s' if count > 1 else ''} (first: {first} at {i})", "removed", problems)
        kept = self.ids[a:b][keep]
        if kept.numel():
            self.segments.append(Segment(a, b, kept.clone(), problems=problems))

    # -- spans -------------------------------------------------------------------------
    def _owned(self, a: int, b: int, si: int, roles: tuple[int, ...], lone_ok: bool = False) -> int:
        """First position in `[a, b)` whose id is not one of stream `si`'s `roles` (b if
        none); with `lone_ok`, a lone such id between two of the stream's ids does not count."""
        if a >= b:
            return b
        ok = self.sidx[a:b] == si
        ok &= (self.role[a:b].unsqueeze(1) == torch.tensor(roles)).any(1)
        stop = ~ok
        if lone_ok:
            stop[:-1] &= stop[1:].clone()
        return a + _first(stop) if stop.any() else b

    def span(self, p: int, region_end: int) -> int:
        """Parse the span starting at `p` (no other span starts before `region_end`);
        returns the position after it."""
        vocab, ids = self.vocab, self.ids
        si = int(self.sidx[p])
        stream: MediaStream = vocab.streams[si]
        kind = stream.span_types[(int(ids[p]) - stream.start_id) // 2]
        name, nd = stream.name, kind.num_dims
        problems: list[str] = []
        drop_action = "span dropped"

        ends = self.ends[kind.start_id]
        after = ends[(ends > p) & (ends < region_end)]
        end = int(after[0]) if after.numel() else None
        inner_limit = end if end is not None else region_end

        # header
        header_end = p + 1 + nd
        grid: tuple[int, ...] | None = None
        header_problem = None
        if header_end > inner_limit:
            closer = "its end token" if end is not None else ("the next span" if region_end < ids.numel() else "the end of the sequence")
            header_problem = f"{name} span at {p}: header cut short by {closer} at {inner_limit} (needs {nd} dims)"
        elif nd:
            hdr = slice(p + 1, header_end)
            bad = ~((self.sidx[hdr] == si) & (self.role[hdr] == DIM))
            if bad.any():
                i = p + 1 + _first(bad)
                header_problem = f"{name} span at {p}: header holds {describe(vocab, int(ids[i]))} at {i}, not a header dim of {name}"
            else:
                grid = tuple(int(v) - stream.dim_id + 1 for v in ids[hdr])
        if header_problem is not None:
            stop = end + 1 if end is not None else self._owned(p + 1, region_end, si, (DIM, LAYOUT))
            self.report(header_problem, drop_action, problems)
            return stop

        if end is not None:
            body_stop, stop = end, end + 1
        else:  # the body runs over the stream's codes (a lone foreign id is part of it)
            body_stop = stop = self._owned(header_end, region_end, si, (LAYOUT,), lone_ok=True)
            if stop == ids.numel():
                why = f"the sequence ends at {stop}"
            elif stop == region_end:
                why = f"the next span starts at {stop}"
            else:
                why = f"{describe(vocab, int(ids[stop]))} follows at {stop}"
            self.report(f"{name} span at {p}: no end token ({why})", "closed there" if self.policy == "repair" else drop_action, problems)

        body = ids[header_end:body_stop]
        expected = kind.body_length(grid) if grid is not None else 0
        if self.policy == "repair" and expected - body.numel() > max(MAX_INVENTED, expected // 2):
            # Padding a few codes up to a huge stated grid would invent most of the media
            # (a 256x256x256 video header would decode to a thousand 2K frames).
            self.report(
                f"{name} span at {p}: body truncated, {body.numel()} ids where a {_grid_text(grid)} grid needs "
                f"{expected}; too little to repair", drop_action, problems,
            )
            return stop
        if kind.free_length:
            codes, issues = _audio_body(vocab, kind, body, header_end)
        else:
            codes, issues = _grid_body(vocab, kind, body, grid, header_end)
        for _, message, action in sorted(issues, key=lambda issue: issue[0]):
            self.report(message, action if self.policy == "repair" else drop_action, problems)
        if problems and self.policy == "drop":
            return stop
        if kind.free_length:
            grid = (codes.shape[1],)
        span_ids = ids[p:stop].clone() if not problems else kind.span(codes)
        self.segments.append(Segment(p, stop, span_ids, stream, grid, codes, problems, kind.media_type))
        return stop


def _grid_body(
    vocab, stream: SpanType, body: torch.Tensor, grid: tuple[int, ...], at: int,
) -> tuple[torch.Tensor, list[tuple[int, str, str]]]:
    """Image / video body ids -> (codes `[h,w]` / `[t,h,w]`, [(position, problem, repair action)])."""
    layout, name = stream.layout, stream.name
    t, h, w = grid if len(grid) == 3 else (1, *grid)
    rs, fs = layout.row_separator, layout.frame_separator
    n, expected = body.numel(), stream.body_length(grid)
    local = body - stream.code_offset
    cb = layout.codebook_size
    kind = torch.full((n,), FOREIGN, dtype=torch.long)
    kind[(local >= 0) & (local < cb)] = CODE
    if rs:
        kind[local == layout.separator_id] = ROW
    if fs:
        kind[local == layout.frame_separator_id] = FRAME
    # What the layout expects at the positions the body has (at most `expected`).
    m = min(n, expected)
    pattern = torch.full((m,), CODE, dtype=torch.long)
    if rs or fs:
        frame_len = h * (w + int(rs)) + int(fs)
        within = torch.arange(m) % frame_len
        if rs:
            pattern[(within % (w + 1) == w) & (within < h * (w + 1))] = ROW
        if fs:
            pattern[within == frame_len - 1] = FRAME
    shape = (t, h, w) if len(grid) == 3 else (h, w)
    if n == expected and torch.equal(kind, pattern):
        return local[kind == CODE].view(shape), []

    issues = []
    where = f"{name} span at {at - 1 - len(grid)}"
    foreign = kind == FOREIGN
    if foreign.any():
        i = _first(foreign)
        count = int(foreign.sum())
        issues.append((
            at + i, f"{where}: {count} foreign id{'s' if count > 1 else ''} in the body "
            f"(first: {describe(vocab, int(body[i]))} at {at + i})",
            "replaced by the preceding code",
        ))
    if n < expected:
        issues.append((at + n, f"{where}: body truncated, {n} ids where a {_grid_text(grid)} grid needs {expected}",
                       "missing codes repeat the previous frame / row / code"))
    elif n > expected:
        issues.append((at + expected, f"{where}: body overlong, {n} ids where a {_grid_text(grid)} grid needs {expected}",
                       "extra codes ignored"))
    if rs or fs:
        k = kind[:m]
        wrong = (k != pattern) & (k != FOREIGN)
        if wrong.any():
            i = _first(wrong)
            issues.append((at + i, f"{where}: separators missing or misplaced (first at {at + i})",
                           "codes placed by the separators that fit the grid, or in raster order"))

    # Repair. Foreign ids at a separator's place stand for it; other foreign ids take the
    # preceding code's value.
    kind = kind.clone()
    stand_in = foreign[:m] & (pattern != CODE)
    kind[:m][stand_in] = pattern[stand_in]
    index = torch.where(kind == CODE, torch.arange(n), -1).cummax(0).values if n else torch.zeros(0, dtype=torch.long)
    values = torch.where(index >= 0, local[index.clamp(min=0)], 0)
    kind[kind == FOREIGN] = CODE
    is_code = kind == CODE
    values = values[is_code]
    count = values.numel()
    rank = torch.arange(count)
    rows, frames = int((kind == ROW).sum()), int((kind == FRAME).sum())
    if count != t * h * w and rs and rows == t * h:       # realign on the rows
        group = torch.cumsum(kind == ROW, 0)[is_code]
        col = rank - _group_starts(group)
        f, r, c, ok = group // h, group % h, col, (group < t * h) & (col < w)
    elif count != t * h * w and fs and frames == t:       # realign on the frames
        group = torch.cumsum(kind == FRAME, 0)[is_code]
        within = rank - _group_starts(group)
        f, r, c, ok = group, within // w, within % w, (group < t) & (within < h * w)
    else:                                                 # raster order, separators ignored
        f, r, c, ok = rank // (h * w), (rank // w) % h, rank % w, rank < t * h * w
    flat = ((f * h + r) * w + c)[ok]
    codes = torch.zeros(t * h * w, dtype=torch.long)
    present = torch.zeros(t * h * w, dtype=torch.bool)
    codes[flat] = values[ok]
    present[flat] = True
    codes, present = codes.view(t, h, w), present.view(t, h, w)
    if not present.all():
        codes = _fill_grid(codes, present)
    return codes.view(shape), issues


def _group_starts(group: torch.Tensor) -> torch.Tensor:
    """For sorted group ids, the rank of the first element of each element's group."""
    if not group.numel():
        return group
    _, counts = torch.unique_consecutive(group, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts, counts)


def _audio_body(vocab, stream: SpanType, body: torch.Tensor, at: int) -> tuple[torch.Tensor, list[tuple[int, str, str]]]:
    """Audio body ids -> (codes `[K,t]`, [(position, problem, repair action)])."""
    layout, where = stream.layout, f"{stream.name} span at {at - 1}"
    levels, n = layout.levels, body.numel()
    ranges = torch.tensor(layout.ranges())
    local = body - stream.code_offset
    valid = (local >= 0) & (local < layout.vocab_size)
    level = torch.where(valid, torch.searchsorted(ranges[:, 1].contiguous(), local, right=True), -1)
    position_level = torch.arange(n) % levels
    if n % levels == 0 and torch.equal(level, position_level):
        return (local.view(-1, levels) - ranges[:, 0]).T.contiguous(), []

    issues = []
    if not valid.all():
        i = _first(~valid)
        count = int((~valid).sum())
        issues.append((at + i, f"{where}: {count} foreign id{'s' if count > 1 else ''} in the body "
                       f"(first: {describe(vocab, int(body[i]))} at {at + i})",
                       "replaced by the previous frame's code"))
    if n % levels:
        issues.append((at + n - n % levels, f"{where}: body of {n} id{'s' if n > 1 else ''} is not a whole number of {levels}-level frames",
                       "incomplete last frame dropped"))
    misplaced = valid & (level != position_level)
    if misplaced.any():
        i = _first(misplaced)
        issues.append((at + i, f"{where}: {int(misplaced.sum())} ids in the wrong level's range (first: level "
                       f"{int(level[i])} at {at + i} where level {int(position_level[i])} belongs)",
                       "codes realigned on their levels"))

    # Repair: realign on the levels (a frame ends when the level does not rise), fill the
    # levels a frame lacks from the previous frame, drop an incomplete last frame.
    level, code = level[valid], (local - ranges[:, 0][level.clamp(min=0)])[valid]
    if not level.numel():
        return torch.zeros(levels, 0, dtype=torch.long), issues
    new_frame = torch.ones_like(level, dtype=torch.bool)
    new_frame[1:] = level[1:] <= level[:-1]
    frame = torch.cumsum(new_frame, 0) - 1
    frames = int(frame[-1]) + 1
    if int(level[-1]) < levels - 1:
        frames -= 1
        keep = frame < frames
        level, code, frame = level[keep], code[keep], frame[keep]
    codes = torch.zeros(levels, frames, dtype=torch.long)
    present = torch.zeros(levels, frames, dtype=torch.bool)
    codes[level, frame] = code
    present[level, frame] = True
    if not present.all():
        codes = _ffill(codes, present, 1)
    return codes, issues
