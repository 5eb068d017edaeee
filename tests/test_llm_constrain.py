"""MediaLogitsProcessor: generated media spans are well-formed, text never produces media
ids other than start tokens, pad rows (ids >= vocab_size) never appear.

Two kinds of checks: the processor against a slow per-row Python reference of the span
grammar on random (valid and malformed) prefixes, and real `generate` runs of a tiny random
Llama (greedy, sampling, beam search) whose outputs are split into spans and round-tripped
through `stream.unflatten` / `stream.span`.
"""

from __future__ import annotations

import random
import time

import pytest
import torch
from conftest import make_codec, make_tokenizer, make_video_tokenizer
from transformers import LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

from mmtok.errors import MmtokError
from mmtok.llm import MediaVocab, StreamOptions
from mmtok.llm.constrain import MediaLogitsProcessor

TEXT = 400
WIDTH = 832   # embedding rows: 803 ids (with separators) rounded up by pad_to_multiple_of=64
FIXED = {"image": (2, 3), "video": (2, 2, 3), "audio": (5,)}
MAX_AUDIO_FRAMES = 6


@pytest.fixture(scope="module")
def tokenizers():
    return {"image": make_tokenizer("fsq"), "audio": make_codec(), "video": make_video_tokenizer()}


def make_vocab(tokenizers, separators: bool) -> MediaVocab:
    """Image (max_dim 8), audio (4 levels; 2 without separators) and video (max_dim 4, so a
    free-grid video span stays under 90 ids) with or without row / frame separators."""
    opts = StreamOptions(row_separator=separators, frame_separator=separators, max_dim=8)
    options = {
        "image": opts, "audio": StreamOptions(levels=None if separators else 2, max_dim=8),
        "video": StreamOptions(row_separator=separators, frame_separator=separators, max_dim=4),
    }
    vocab = MediaVocab.create(tokenizers, text_vocab_size=TEXT, options=options)
    return MediaVocab(vocab.streams, TEXT, embedding_rows=WIDTH)


@pytest.fixture(scope="module", params=[True, False], ids=["separators", "plain"])
def vocab(request, tokenizers) -> MediaVocab:
    return make_vocab(tokenizers, request.param)


@pytest.fixture(scope="module")
def model(llm_dir) -> LlamaForCausalLM:
    """The tiny Llama with WIDTH embedding rows (both vocabs round up to the same width)."""
    model = LlamaForCausalLM.from_pretrained(llm_dir).eval()
    model.resize_token_embeddings(803, pad_to_multiple_of=64)
    assert model.get_output_embeddings().weight.shape[0] == WIDTH
    return model


# -- the slow reference: the span grammar, one row at a time, in plain Python --------------

def reference_state(vocab: MediaVocab, ids: list[int]):
    """(stream or None, ids of the span after its start token, header values)."""
    stream, pos, header = None, 0, []
    for x in ids:
        owner = vocab.stream_of_id(x) if x < vocab.vocab_size else None
        if owner is not None and x == owner.start_id:
            stream, pos, header = owner, 0, []
        elif stream is not None and owner is stream and x != stream.end_id:
            if pos < stream.num_dims:
                header.append(min(max(x - stream.dim_id + 1, 1), stream.options.max_dim))
            pos += 1
        else:
            stream = None
    return stream, pos, header


def reference_allowed(vocab: MediaVocab, ids: list[int], grids: dict, max_audio_frames: int | None) -> set[int]:
    stream, pos, header = reference_state(vocab, ids)
    if stream is None:
        return set(range(vocab.text_vocab_size)) | {s.start_id for s in vocab.streams}
    end = {stream.end_id}
    fixed = grids.get(stream.name, grids.get(stream.modality))
    if stream.modality == "audio":
        levels = stream.layout.levels
        frames = fixed[0] if fixed else max_audio_frames
        if frames is not None and pos >= frames * levels:
            return end
        allowed = set(range(*stream.code_ranges()[pos % levels]))
        return allowed | end if not fixed and pos and pos % levels == 0 else allowed
    if pos < stream.num_dims:
        return {stream.dim_id + fixed[pos] - 1} if fixed else set(range(stream.dim_id, stream.dim_id + stream.options.max_dim))
    # The body of a span of zero codes shows where separators go (independent of `allowed`).
    template = stream.span(torch.zeros(tuple(header), dtype=torch.long))[1 + stream.num_dims : -1].tolist()
    body = pos - stream.num_dims
    if body >= len(template):
        return end
    if template[body] == stream.code_offset:
        return set(range(stream.code_offset, stream.code_offset + stream.codebook_sizes[0]))
    return {template[body]}


def allowed_by(proc: MediaLogitsProcessor, ids: torch.Tensor, scores: torch.Tensor) -> list[set[int]]:
    out = proc(ids, scores)
    finite = torch.isfinite(out)
    assert torch.equal(out[finite], scores[finite]), "allowed scores must be unchanged"
    return [set(row.nonzero()[:, 0].tolist()) for row in finite]


def random_codes(stream, rng: random.Random, grid: tuple[int, ...]) -> torch.Tensor:
    if stream.modality == "audio":
        return torch.tensor([[rng.randrange(n) for _ in range(grid[0])] for n in stream.codebook_sizes])
    return torch.randint(0, stream.codebook_sizes[0], grid, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))


def random_sequence(vocab: MediaVocab, rng: random.Random, pieces: int) -> list[int]:
    """Text runs, whole spans and cut spans (valid prefixes), and now and then junk (any id,
    pad rows included) to exercise how malformed input is followed."""
    out: list[int] = []
    for _ in range(pieces):
        kind = rng.random()
        if kind < 0.3:
            out += [rng.randrange(TEXT) for _ in range(rng.randrange(1, 4))]
        elif kind < 0.9:
            stream = rng.choice(vocab.streams)
            top = stream.options.max_dim
            grid = {"image": (rng.randint(1, 3), rng.randint(1, top)), "video": (rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, top)),
                    "audio": (rng.randint(1, 4),)}[stream.modality]
            span = stream.span(random_codes(stream, rng, grid)).tolist()
            out += span if kind < 0.6 else span[: rng.randrange(1, len(span))]
        else:
            out += [rng.randrange(WIDTH) for _ in range(rng.randrange(1, 3))]
    return out


def batch_of(rows: list[list[int]]) -> torch.Tensor:
    """Rows left-padded with text id 0 to one length (text before a sequence changes nothing)."""
    length = max(map(len, rows))
    return torch.tensor([[0] * (length - len(r)) + r for r in rows])


@pytest.mark.parametrize("grids", [{}, FIXED], ids=["free", "fixed"])
def test_processor_matches_reference_on_random_prefixes(vocab, grids):
    """Every prefix of random sequences, fed as generate does (one more id per call), plus
    fresh prompts and rows reordered between calls (beam search): same sets as the reference."""
    rng = random.Random(0)
    proc = MediaLogitsProcessor(vocab, grids=grids, max_audio_frames=None if grids else 3)
    ids = batch_of([random_sequence(vocab, rng, pieces=10) for _ in range(8)])
    scores = torch.randn(ids.shape[0], WIDTH, generator=torch.Generator().manual_seed(0))
    for k in range(1, ids.shape[1] + 1):
        prefix = ids[:, :k]
        if k % 7 == 0:   # beams reordered: rows swapped, the processor must notice and replay
            prefix = prefix[torch.randperm(prefix.shape[0], generator=torch.Generator().manual_seed(k))]
        got = allowed_by(proc, prefix, scores)
        for row, allowed in zip(prefix.tolist(), got):
            assert allowed == reference_allowed(vocab, row, grids, proc.max_audio_frames), (row, k)


def test_processor_never_allows_pad_rows(vocab):
    proc = MediaLogitsProcessor(vocab)
    rng = random.Random(1)
    for _ in range(20):
        ids = batch_of([random_sequence(vocab, rng, pieces=3) for _ in range(4)])
        out = proc(ids, torch.zeros(ids.shape[0], WIDTH + 5))
        assert torch.isinf(out[:, vocab.vocab_size :]).all()
        assert torch.isfinite(out).any(dim=-1).all()   # something is always allowed


def test_text_rows_allow_only_text_and_start_tokens(vocab):
    proc = MediaLogitsProcessor(vocab)
    allowed = allowed_by(proc, torch.tensor([[5, 6], [vocab.streams[0].end_id, 7]]), torch.zeros(2, WIDTH))
    expected = set(range(TEXT)) | {s.start_id for s in vocab.streams}
    assert allowed == [expected, expected]
    # No ids yet (generation from inputs_embeds): text.
    assert allowed_by(proc, torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, WIDTH)) == [expected, expected]


def test_long_prompt_replay_is_vectorised(vocab):
    """A long prompt (4 x ~47k ids, thousands of spans) ending inside a span: right state,
    and quick (about 10 ms here; the bound is loose for busy machines)."""
    rng = random.Random(2)
    proc = MediaLogitsProcessor(vocab)
    rows = [random_sequence(vocab, rng, pieces=400) for _ in range(4)]
    image = vocab.stream_for("image")
    rows = [r + [image.start_id, image.dim_id + 2] for r in rows]        # ends mid-header: h = 3
    ids = batch_of(rows).repeat(1, 16)   # still ends mid-header
    start = time.perf_counter()
    got = allowed_by(proc, ids, torch.zeros(ids.shape[0], WIDTH))
    elapsed = time.perf_counter() - start
    assert got == [set(range(image.dim_id, image.dim_id + 8))] * 4
    assert elapsed < 1.0, f"replaying {tuple(ids.shape)} took {elapsed:.2f} s"


def test_bad_arguments(vocab):
    with pytest.raises(MmtokError, match="no such stream"):
        MediaLogitsProcessor(vocab, grids={"sound": (3,)})
    with pytest.raises(MmtokError, match=r"expected \(h, w\) with sides 1..8"):
        MediaLogitsProcessor(vocab, grids={"image": (2, 9)})
    with pytest.raises(MmtokError, match=r"\(t, h, w\)"):
        MediaLogitsProcessor(vocab, grids={"video": (2, 2)})
    with pytest.raises(MmtokError, match="max_audio_frames"):
        MediaLogitsProcessor(vocab, max_audio_frames=0)
    assert MediaLogitsProcessor(vocab, grids={"audio": 4}).grids == {"audio": (4,)}


def test_grids_by_stream_name_win_over_modality(tokenizers):
    vocab = MediaVocab.create({"a": tokenizers["image"], "b": tokenizers["image"]}, TEXT, StreamOptions(max_dim=4))
    proc = MediaLogitsProcessor(vocab, grids={"a": (1, 2), "image": (3, 4)})
    assert proc.grids == {"a": (1, 2), "b": (3, 4)}
    a, b = vocab.streams
    assert allowed_by(proc, torch.tensor([[a.start_id], [b.start_id]]), torch.zeros(2, vocab.vocab_size)) == [{a.dim_id}, {b.dim_id + 2}]
    with pytest.raises(MmtokError, match="resized embeddings"):
        MediaLogitsProcessor(vocab)(torch.tensor([[1]]), torch.zeros(1, TEXT))


# -- generation with a real model ------------------------------------------------------

class AddBias(LogitsProcessor):
    """Adds a fixed bias `[V]` to the scores (runs before the media processor), to make the
    ids the processor must forbid the model's favourites."""

    def __init__(self, bias: torch.Tensor):
        self.bias = bias

    def __call__(self, input_ids, scores):
        return scores + self.bias


def prompts(vocab: MediaVocab) -> list[list[int]]:
    """Rows in text and inside spans: each start token, mid-header, mid-body, after a span.
    Headers stated by prompts agree with FIXED, so every span's grid can be checked."""
    image, audio, video = (vocab.stream_for(m) for m in ("image", "audio", "video"))
    image_span = image.span(torch.arange(6).reshape(2, 3)).tolist()
    return [
        [10, 11, 12],
        [10, image.start_id],
        [10, audio.start_id],
        [10, video.start_id],
        [image.start_id, image.dim_id + 1],                        # mid-header (h = 2)
        [video.start_id, video.dim_id + 1, video.dim_id + 1],      # mid-header (t = h = 2)
        image_span[:6],                                            # mid-body
        [*audio.span(torch.zeros(4, 2, dtype=torch.long)).tolist(), 10],
    ]


def spans_of(vocab: MediaVocab, ids: list[int]) -> list[tuple]:
    """Split a sequence into its media spans: (stream, grid, whole span ids, complete?, end
    position). A span cut by the end of the sequence is returned incomplete."""
    out, i = [], 0
    while i < len(ids):
        stream = vocab.stream_of_id(ids[i])
        if stream is None or ids[i] != stream.start_id:
            assert ids[i] < TEXT, f"media id {ids[i]} outside a span at {i}"
            i += 1
            continue
        header = [x - stream.dim_id + 1 for x in ids[i + 1 : i + 1 + stream.num_dims]]
        if stream.modality == "audio":
            stop = ids.index(stream.end_id, i) + 1 if stream.end_id in ids[i:] else len(ids)
            grid = ((stop - i - 2) // stream.layout.levels,)
        elif len(header) < stream.num_dims:   # cut inside the header
            stop, grid = len(ids), ()
        else:
            stop = min(len(ids), i + 2 + stream.num_dims + stream.body_length(tuple(header)))
            grid = tuple(header)
        span = ids[i:stop]
        assert span[-1] == stream.end_id or stop == len(ids), f"{stream.name} span at {i} not closed by its end token"
        out.append((stream, grid, span, span[-1] == stream.end_id and len(span) > 1, stop))
        i = stop
    return out


def check_generated(vocab, sequences: torch.Tensor, prompt_length: int, grids: dict, max_audio_frames) -> list[tuple]:
    """Every generated id is allowed by the reference, no pad id appears, and every complete
    span round-trips through unflatten / span with the header's grid."""
    assert int(sequences.max()) < vocab.vocab_size
    spans = []
    for row in sequences.tolist():
        for k in range(prompt_length, len(row)):
            assert row[k] in reference_allowed(vocab, row[:k], grids, max_audio_frames), (row, k)
        for stream, grid, span, complete, stop in spans_of(vocab, row):
            if not complete or stop <= prompt_length:   # only spans the model (co-)wrote
                continue
            body = torch.tensor(span[1 + stream.num_dims : -1])
            codes = stream.unflatten(body, grid)
            assert torch.equal(stream.span(codes), torch.tensor(span))
            fixed = grids.get(stream.modality)
            if fixed:
                assert grid == fixed, (stream.name, grid)
            elif stream.modality == "audio":
                assert 1 <= grid[0] <= max_audio_frames
            spans.append((stream.modality, grid))
    return spans


def generate(model, vocab, proc, rows, bias=None, **kwargs) -> torch.Tensor:
    ids = batch_of(rows)
    processors = ([AddBias(bias)] if bias is not None else []) + [proc]
    return model.generate(
        ids, attention_mask=torch.ones_like(ids), logits_processor=LogitsProcessorList(processors),
        pad_token_id=2, eos_token_id=None, **kwargs,
    )


@pytest.mark.parametrize("grids", [{}, FIXED], ids=["free", "fixed"])
def test_generate_sampling_and_greedy(model, vocab, grids):
    """Batches mixing text rows and rows inside each kind of span (ending on a start token,
    mid-header, mid-body): all spans the prompts open complete, well-formed."""
    proc = MediaLogitsProcessor(vocab, grids=grids, max_audio_frames=MAX_AUDIO_FRAMES)
    rows = prompts(vocab)
    # Media ids get a strong push (pads the strongest) so text rows open spans and only the
    # processor keeps the pads and misplaced ids out.
    bias = torch.zeros(WIDTH)
    bias[TEXT:] = 5.0
    bias[vocab.vocab_size :] = 1e4
    seen = []
    for sample in (True, False):
        torch.manual_seed(0)
        out = generate(model, vocab, proc, rows, bias, max_new_tokens=95, do_sample=sample, **({"top_k": 0} if sample else {}))
        assert out.shape[0] == len(rows)
        prompt_length = batch_of(rows).shape[1]
        seen += check_generated(vocab, out, prompt_length, grids, MAX_AUDIO_FRAMES)
        # The spans opened by the prompts (rows 1-6) are all complete and of their stream.
        for row, modality in zip(out[1:7].tolist(), ["image", "audio", "video", "image", "video", "image"]):
            first = spans_of(vocab, row)[0]
            assert first[0].modality == modality and first[3], (modality, row)
    assert {m for m, _ in seen} == {"image", "audio", "video"}


def test_text_rows_never_write_codes(model, vocab):
    """Code, dim, end, separator and pad ids get a huge bias: text rows still produce only text
    or start tokens, and once the start tokens are the favourites too, greedy opens a span."""
    proc = MediaLogitsProcessor(vocab, max_audio_frames=MAX_AUDIO_FRAMES)
    starts = [s.start_id for s in vocab.streams]
    bias = torch.zeros(WIDTH)
    bias[TEXT:] = 1e3
    bias[starts] = 0.0
    rows = [[10 + i, 11, 12] for i in range(4)]
    torch.manual_seed(1)
    out = generate(model, vocab, proc, rows, bias, max_new_tokens=3, do_sample=True, top_k=0)
    assert out[:, 3:].lt(TEXT).logical_or(torch.isin(out[:, 3:], torch.tensor(starts))).all()
    bias[starts] = 2e3
    out = generate(model, vocab, proc, rows, bias, max_new_tokens=2, do_sample=False)
    assert torch.isin(out[:, 3], torch.tensor(starts)).all()
    check_generated(vocab, out, 3, {}, MAX_AUDIO_FRAMES)


def test_generate_beam_search(model, vocab):
    """Beam search reorders rows between calls; the processor replays and spans stay valid."""
    proc = MediaLogitsProcessor(vocab, grids={"image": (2, 2), "video": (1, 2, 2), "audio": (3,)})
    rows = prompts(vocab)[1:4]
    out = generate(model, vocab, proc, rows, max_new_tokens=14, num_beams=3, do_sample=False)
    spans = check_generated(vocab, out, 2, proc.grids, None)
    assert {m for m, _ in spans} == {"image", "audio", "video"}
