"""`parse`: generated ids -> text and media segments, with every kind of malformed span
reported and handled by the strict / repair / drop policies."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import make_codec, make_tokenizer, make_video_tokenizer

from mmtok.errors import MmtokError
from mmtok.llm import MediaVocab, StreamOptions
from mmtok.llm.options import POLICIES
from mmtok.llm.parse import parse

TEXT = 400


@pytest.fixture(scope="module")
def tokenizers():
    return {"image": make_tokenizer("fsq"), "audio": make_codec(), "video": make_video_tokenizer()}


def make_vocab(tokenizers, separators: bool, pad_rows: int = 0) -> MediaVocab:
    options = StreamOptions(row_separator=separators, frame_separator=separators, max_dim=8)
    vocab = MediaVocab.create(tokenizers, text_vocab_size=TEXT, options=options)
    if pad_rows:
        vocab = MediaVocab(vocab.streams, TEXT, vocab.vocab_size + pad_rows)
    return vocab


@pytest.fixture(scope="module", params=[True, False], ids=["separators", "plain"])
def vocab(request, tokenizers) -> MediaVocab:
    return make_vocab(tokenizers, request.param, pad_rows=3)


@pytest.fixture(scope="module")
def sep_vocab(tokenizers) -> MediaVocab:
    return make_vocab(tokenizers, True, pad_rows=3)


def rand_codes(kind: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 32 if kind == "audio" else 125, shape, generator=g)


def text(*ids: int) -> torch.Tensor:
    return torch.tensor(ids, dtype=torch.long)


def sample(vocab: MediaVocab, seed: int = 0):
    """A clean sequence: text, image 3x5, text, audio 6 frames, video 2x3x4, text."""
    image, audio, video = rand_codes("image", (3, 5), seed), rand_codes("audio", (4, 6), seed + 1), rand_codes("video", (2, 3, 4), seed + 2)
    seq = torch.cat([
        text(1, 2, 3), vocab.encode_codes(image, "image"), text(7), vocab.encode_codes(audio, "audio"),
        vocab.encode_codes(video, "video"), text(9, 10),
    ])
    return seq, [image, audio, video]


def spans_of(parsed):
    return [(s.stream.name, tuple(s.codes.shape)) for s in parsed.media]


# -- clean sequences -----------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_clean_round_trip(vocab, policy):
    seq, codes = sample(vocab)
    parsed = vocab.parse(seq, policy)
    assert parsed.problems == []
    assert [s.stream.name if s.stream else "text" for s in parsed.segments] == ["text", "image", "text", "audio", "video", "text"]
    for segment, expected in zip(parsed.media, codes):
        assert torch.equal(segment.codes, expected)
        assert segment.problems == []
    assert parsed.media[0].grid == (3, 5) and parsed.media[1].grid == (6,) and parsed.media[2].grid == (2, 3, 4)
    assert torch.equal(torch.cat([s.ids for s in parsed.segments]), seq)
    assert [(s.start, s.stop) for s in parsed.segments][0] == (0, 3)
    assert parsed.segments[-1].stop == len(seq)
    assert torch.equal(parsed.text_ids, text(1, 2, 3, 7, 9, 10))


def test_clean_edge_cases(vocab):
    assert vocab.parse([]).segments == [] and vocab.parse([]).problems == []
    only_text = vocab.parse([5, 6, 7], "strict")
    assert len(only_text.segments) == 1 and only_text.segments[0].ids.tolist() == [5, 6, 7]
    one_by_one = vocab.encode_codes(torch.tensor([[17]]), "image")
    assert vocab.parse(one_by_one, "strict").media[0].codes.tolist() == [[17]]
    empty_audio = vocab.parse([vocab.stream("audio").start_id, vocab.stream("audio").end_id], "strict").media[0]
    assert empty_audio.codes.shape == (4, 0) and empty_audio.grid == (0,)
    # back to back spans, list input, [1,L] input, other integer dtypes
    seq, codes = sample(vocab)
    two = torch.cat([vocab.encode_codes(codes[0], "image"), vocab.encode_codes(codes[0], "image")])
    assert len(vocab.parse(two.tolist(), "strict").media) == 2
    assert len(vocab.parse(two[None].int(), "strict").media) == 2
    assert len(parse(vocab, two.numpy(), "strict").media) == 2


def test_decode_ids_uses_strict_parse(vocab):
    codes = rand_codes("video", (2, 3, 4))
    stream, got = vocab.decode_ids(vocab.encode_codes(codes, "video"))
    assert stream.name == "video" and torch.equal(got, codes)
    with pytest.raises(MmtokError, match="end token"):
        vocab.decode_ids(vocab.encode_codes(codes, "video")[:-1])


def test_bad_arguments(vocab):
    with pytest.raises(MmtokError, match="policy"):
        vocab.parse([1], "lenient")
    with pytest.raises(MmtokError, match="one sequence"):
        vocab.parse(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(MmtokError, match="integers"):
        vocab.parse([1.5, 2])
    with pytest.raises(MmtokError, match="integers"):
        vocab.parse(["a"])
    assert vocab.parse([1.0, 2.0]).segments[0].ids.tolist() == [1, 2]


# -- each malformation ---------------------------------------------------------------
def image_span(vocab, codes):
    return vocab.encode_codes(codes, "image")


def check_strict(vocab, seq, *needles):
    with pytest.raises(MmtokError) as err:
        vocab.parse(seq, "strict")
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_end_at_sequence_end(vocab):
    codes = rand_codes("image", (3, 5))
    seq = torch.cat([text(1), image_span(vocab, codes)[:-1]])
    check_strict(vocab, seq, "image span at 1", "no end token", "sequence ends at")
    repaired = vocab.parse(seq)
    assert torch.equal(repaired.media[0].codes, codes)
    assert len(repaired.problems) == 1 and "closed there" in repaired.problems[0]
    assert repaired.media[0].problems == repaired.problems
    dropped = vocab.parse(seq, "drop")
    assert dropped.media == [] and [s.ids.tolist() for s in dropped.segments] == [[1]]
    assert "span dropped" in dropped.problems[0]


def test_missing_end_before_text_and_before_next_span(vocab):
    a, b = rand_codes("image", (3, 5), 1), rand_codes("image", (2, 2), 2)
    seq = torch.cat([image_span(vocab, a)[:-1], text(11, 12), image_span(vocab, b)[:-1], image_span(vocab, a)])
    check_strict(vocab, seq, "no end token", "text id 11 follows at")
    parsed = vocab.parse(seq)
    assert [tuple(s.codes.shape) for s in parsed.media] == [(3, 5), (2, 2), (3, 5)]
    assert torch.equal(parsed.media[0].codes, a) and torch.equal(parsed.media[1].codes, b) and torch.equal(parsed.media[2].codes, a)
    assert parsed.text_ids.tolist() == [11, 12]
    assert any("next span starts at" in p for p in parsed.problems)
    dropped = vocab.parse(seq, "drop")
    assert len(dropped.media) == 1 and dropped.text_ids.tolist() == [11, 12]
    # a lone foreign id inside a body without end token is a corrupt code, two are text
    body = image_span(vocab, a)[:-1].clone()
    body[6] = 13
    parsed = vocab.parse(torch.cat([body, text(11, 12)]))
    expected = a.clone()
    expected.view(-1)[3] = a.view(-1)[2]
    assert torch.equal(parsed.media[0].codes, expected) and parsed.text_ids.tolist() == [11, 12]


def test_truncated_image_is_padded(vocab):
    codes = rand_codes("image", (4, 5))
    span = image_span(vocab, codes)
    body_start = 3
    per_row = 5 + int(vocab.stream("image").options.row_separator)
    keep = per_row + 3  # one whole row and 3 codes of the second
    seq = torch.cat([span[: body_start + keep], span[-1:]])
    check_strict(vocab, seq, "truncated", "4x5")
    got = vocab.parse(seq).media[0].codes
    assert torch.equal(got[0], codes[0]) and torch.equal(got[1, :3], codes[1, :3])
    assert torch.equal(got[1, 3:], codes[0, 3:])        # the previous row's codes
    assert torch.equal(got[2], got[1]) and torch.equal(got[3], got[1])
    assert vocab.parse(seq, "drop").media == []
    # nothing but the header: all code 0; a partial first row: the last code repeated
    assert vocab.parse(torch.cat([span[:3], span[-1:]])).media[0].codes.eq(0).all()
    partial = vocab.parse(torch.cat([span[:5], span[-1:]])).media[0].codes
    assert partial[0, :2].tolist() == codes[0, :2].tolist() and partial[:, 2:].eq(codes[0, 1]).all()


def test_truncated_video_repeats_previous_frame(vocab):
    codes = rand_codes("video", (3, 2, 2))
    span = vocab.encode_codes(codes, "video")
    o = vocab.stream("video").options
    frame_len = 2 * (2 + int(o.row_separator)) + int(o.frame_separator)
    seq = torch.cat([span[: 4 + frame_len + 1], span[-1:]])   # frame 0 and one code of frame 1
    got = vocab.parse(seq).media[0].codes
    assert got.shape == (3, 2, 2)
    assert torch.equal(got[0], codes[0]) and int(got[1, 0, 0]) == int(codes[1, 0, 0])
    assert torch.equal(got[1].flatten()[1:], codes[0].flatten()[1:])
    assert torch.equal(got[2], got[1])


def test_overlong_body_is_trimmed(vocab):
    codes = rand_codes("image", (3, 5))
    span = image_span(vocab, codes)
    extra = span[3:8]
    seq = torch.cat([span[:-1], extra, span[-1:]])
    check_strict(vocab, seq, "overlong")
    parsed = vocab.parse(seq)
    assert torch.equal(parsed.media[0].codes, codes) and "overlong" in parsed.problems[0]
    assert torch.equal(parsed.media[0].ids, span)   # the span re-made from the codes
    assert vocab.parse(seq, "drop").media == []


@pytest.mark.parametrize("foreign", ["text", "other stream", "dim", "out of range", "negative", "pad row"])
def test_foreign_id_in_image_body(vocab, foreign):
    other = vocab.stream("audio").code_offset + 3
    bad = {"text": 17, "other stream": other, "dim": vocab.stream("image").dim_id + 1, "out of range": 10**6,
           "negative": -5, "pad row": vocab.vocab_size + 1}[foreign]
    codes = rand_codes("image", (3, 5))
    span = image_span(vocab, codes)
    for position, replaced_by in ((3, 0), (5, int(codes[0, 1]))):   # first code: code 0
        seq = span.clone()
        seq[position] = bad
        check_strict(vocab, seq, "foreign id", f"at {position}")
        got = vocab.parse(seq).media[0].codes
        expected = codes.clone()
        expected.view(-1)[position - 3] = replaced_by
        assert torch.equal(got, expected), foreign
        assert vocab.parse(seq, "drop").media == []


def test_separators_missing_or_misplaced(sep_vocab):
    vocab = sep_vocab
    codes = rand_codes("image", (3, 5))
    span = image_span(vocab, codes)
    row = vocab.stream("image").code_offset + 125
    # a missing separator: every code is still there, so raster order recovers the image
    seq = torch.cat([span[:8], span[9:]])
    check_strict(vocab, seq, "separators missing or misplaced (first at 8)")
    assert any("truncated" in p for p in vocab.parse(seq).problems)
    assert torch.equal(vocab.parse(seq).media[0].codes, codes)
    # a separator moved one code left: same
    seq = span.clone()
    seq[7], seq[8] = row, span[7]
    check_strict(vocab, seq, "separators missing or misplaced", "at 7")
    assert torch.equal(vocab.parse(seq).media[0].codes, codes)
    # a code missing from row 1 (separators intact): rows realign on the separators
    seq = torch.cat([span[:10], span[11:]])
    got = vocab.parse(seq).media[0].codes
    assert torch.equal(got[0], codes[0]) and torch.equal(got[2], codes[2])
    assert got[1].tolist() == [*codes[1, :1].tolist(), *codes[1, 2:].tolist(), int(codes[0, 4])]
    # a text id where a separator belongs stands for the separator
    seq = span.clone()
    seq[8] = 42
    check_strict(vocab, seq, "foreign id", "text id 42 at 8")
    assert torch.equal(vocab.parse(seq).media[0].codes, codes)
    assert vocab.parse(seq, "drop").media == []


def test_frame_separators(sep_vocab):
    vocab = sep_vocab
    codes = rand_codes("video", (3, 2, 2))
    span = vocab.encode_codes(codes, "video")
    frame = vocab.stream("video").code_offset + 126
    assert int(span[4 + 6]) == frame  # 2 rows of 2 codes + separator, then the frame separator
    # one code missing from frame 0, row separators dropped too: frames realign on frame separators
    body = span[4:-1]
    kept = [i for i in range(len(body)) if i != 0 and int(body[i]) != frame - 1]
    seq = torch.cat([span[:4], body[kept], span[-1:]])
    got = vocab.parse(seq).media[0].codes
    assert torch.equal(got[1], codes[1]) and torch.equal(got[2], codes[2])
    assert got[0].flatten().tolist()[:3] == codes[0].flatten().tolist()[1:]


def test_bad_header(vocab):
    codes = rand_codes("image", (3, 5))
    span = image_span(vocab, codes)
    image = vocab.stream("image")
    for bad_header in ([17, span[2]], [span[1], image.code_offset]):
        seq = torch.cat([text(1), span[:1], torch.tensor(bad_header), span[3:], text(2)])
        check_strict(vocab, seq, "header holds", "at 2" if bad_header[0] == 17 else "at 3", "not a header dim of image")
        for policy in ("repair", "drop"):
            parsed = vocab.parse(seq, policy)
            assert parsed.media == [] and parsed.text_ids.tolist() == [1, 2]
            assert len(parsed.problems) == 1 and "span dropped" in parsed.problems[0]
    # no header at all, no end token: the stream's ids after the start are skipped
    seq = torch.cat([text(1), span[:1], span[3:-1], text(2)])
    assert vocab.parse(seq).text_ids.tolist() == [1, 2]
    # cut short by the end of the sequence / by the end token
    check_strict(vocab, torch.cat([text(1), span[:2]]), "header cut short", "end of the sequence")
    check_strict(vocab, torch.tensor([image.start_id, image.dim_id, image.end_id]), "header cut short", "end token")
    assert vocab.parse(torch.cat([text(1), span[:2]])).text_ids.tolist() == [1]


def test_stray_ids_in_text(vocab):
    image, audio = vocab.stream("image"), vocab.stream("audio")
    strays = [image.end_id, image.dim_id, image.code_offset + 4, audio.code_offset, audio.end_id]
    invalid = [-1, vocab.vocab_size, vocab.embedding_rows + 7, 10**30]
    seq = [1, *strays, 2, *invalid, 3]
    check_strict(vocab, seq, "text at 0", "stray media id", "image end token at 1")
    for policy in ("repair", "drop"):
        parsed = vocab.parse(seq, policy)
        assert parsed.text_ids.tolist() == [1, 2, 3]
        assert len(parsed.problems) == 2
        assert "5 stray media ids" in parsed.problems[0] and "removed" in parsed.problems[0]
        assert "4 out-of-range ids" in parsed.problems[1] and "(first: id -1 at 7)" in parsed.problems[1]
        assert parsed.segments[0].problems == parsed.problems
    assert "pad-row id" in check_strict(vocab, [1, vocab.vocab_size], "out-of-range")


def test_audio_malformations(vocab):
    codes = rand_codes("audio", (4, 5))
    span = vocab.encode_codes(codes, "audio")
    audio = vocab.stream("audio")
    # incomplete last frame
    seq = torch.cat([span[:-3], span[-1:]])
    check_strict(vocab, seq, "not a whole number of 4-level frames")
    assert torch.equal(vocab.parse(seq).media[0].codes, codes[:, :4])
    assert vocab.parse(seq).media[0].grid == (4,)
    # a level skipped inside a frame: realigned, the gap filled from the previous frame
    seq = torch.cat([span[:1 + 4 + 2], span[1 + 4 + 3:]])
    check_strict(vocab, seq, "wrong level", "at 7", "level 3", "level 2 belongs")
    got = vocab.parse(seq).media[0].codes
    expected = codes.clone()
    expected[2, 1] = codes[2, 0]
    assert torch.equal(got, expected)
    # a code in another level's range where level 1 belongs, and a foreign text id
    for bad in (audio.code_offset + 3 * 32 + 5, 17, vocab.stream("image").code_offset):
        seq = span.clone()
        seq[1 + 4 + 1] = bad
        check_strict(vocab, seq)
        got = vocab.parse(seq).media[0].codes
        assert got.shape[0] == 4 and got.shape[1] in (5, 6)
        assert torch.equal(got[:, 0], codes[:, 0])
        assert vocab.parse(seq, "drop").media == []
    seq = span.clone()
    seq[1 + 4 + 1] = 17
    expected = codes.clone()
    expected[1, 1] = codes[1, 0]
    assert torch.equal(vocab.parse(seq).media[0].codes, expected)
    # only foreign ids: an empty span
    assert vocab.parse(torch.tensor([audio.start_id, 5, audio.end_id])).media[0].codes.shape == (4, 0)


def test_levels_option(tokenizers):
    vocab = MediaVocab.create({"audio": tokenizers["audio"]}, TEXT, StreamOptions(levels=2))
    codes = rand_codes("audio", (4, 3))
    parsed = vocab.parse(vocab.encode_codes(codes, "audio"), "strict")
    assert torch.equal(parsed.media[0].codes, codes[:2])


# -- property: random corruptions ---------------------------------------------------
def corrupt(seq: list[int], rng: random.Random, vocab: MediaVocab) -> list[int]:
    seq = list(seq)
    special = [s.start_id for s in vocab.streams] + [s.end_id for s in vocab.streams] + [s.dim_id + 2 for s in vocab.streams if s.num_dims]
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["delete", "insert", "replace", "duplicate", "truncate", "swap"])
        i = rng.randrange(len(seq) + 1) if seq else 0
        token = rng.choice([rng.randrange(-3, vocab.embedding_rows + 3), rng.choice(special), rng.randrange(TEXT)])
        if op == "delete" and i < len(seq):
            del seq[i]
        elif op == "insert":
            seq.insert(i, token)
        elif op == "replace" and i < len(seq):
            seq[i] = token
        elif op == "duplicate" and i < len(seq):
            j = min(len(seq), i + rng.randint(1, 8))
            seq[i:i] = seq[i:j]
        elif op == "truncate":
            seq = seq[:i]
        elif op == "swap" and i + 1 < len(seq):
            seq[i], seq[i + 1] = seq[i + 1], seq[i]
    return seq


def check_valid(vocab: MediaVocab, parsed) -> None:
    for s in parsed.media:
        stream = s.stream
        if stream.modality == "audio":
            assert s.codes.ndim == 2 and s.codes.shape[0] == stream.layout.levels and s.grid == (s.codes.shape[1],)
            assert s.codes.numel() == 0 or (0 <= int(s.codes.min()) and int(s.codes.max()) < 32)
        else:
            assert tuple(s.codes.shape) == s.grid and all(1 <= d <= 8 for d in s.grid)
            assert 0 <= int(s.codes.min()) and int(s.codes.max()) < 125
        assert s.codes.dtype == torch.long
    for s in parsed.segments:
        if s.stream is None:
            assert s.ids.numel() and bool(((s.ids >= 0) & (s.ids < TEXT)).all())
    # what the segments hold is a clean sequence with the same media
    again = vocab.parse(torch.cat([s.ids for s in parsed.segments]) if parsed.segments else [], "strict")
    assert len(again.media) == len(parsed.media)
    for a, b in zip(again.media, parsed.media):
        assert torch.equal(a.codes, b.codes)


def test_random_corruptions_never_crash(vocab):
    rng = random.Random(0)
    clean_parses = 0
    for trial in range(250):
        seq, _ = sample(vocab, seed=trial % 7)
        bad = corrupt(seq.tolist(), rng, vocab)
        for policy in ("repair", "drop"):
            parsed = vocab.parse(bad, policy)
            check_valid(vocab, parsed)
        try:
            strict = vocab.parse(bad, "strict")
        except MmtokError as err:
            assert "\n" not in str(err) and " at " in str(err)
            assert vocab.parse(bad, "repair").problems   # strict raised: repair saw a problem too
        else:
            clean_parses += 1
            assert strict.problems == []
            for policy in ("repair", "drop"):  # clean spans parse identically under every policy
                other = vocab.parse(bad, policy)
                assert [(s.start, s.stop, s.ids.tolist()) for s in other.segments] == [(s.start, s.stop, s.ids.tolist()) for s in strict.segments]
        dropped = vocab.parse(bad, "drop")
        assert all(not s.problems for s in dropped.media)
        # spans without problems are the same under repair and drop
        clean = [(s.start, s.stop, s.codes.tolist()) for s in vocab.parse(bad, "repair").media if not s.problems]
        assert clean == [(s.start, s.stop, s.codes.tolist()) for s in dropped.media]
    assert clean_parses < 250


def test_speed_of_a_large_span(tokenizers):
    import time

    vocab = MediaVocab.create({"image": tokenizers["image"]}, TEXT, StreamOptions(row_separator=True, max_dim=64))
    span = vocab.encode_codes(rand_codes("image", (64, 64)), "image")
    broken = torch.cat([span[:100], text(5), span[101:-40]])
    for seq in (span, broken):
        vocab.parse(seq)
        start = time.perf_counter()
        for _ in range(5):
            vocab.parse(seq)
        assert (time.perf_counter() - start) / 5 < 0.05   # about 1 ms here; generous for busy machines


def test_repair_does_not_invent_most_of_a_huge_grid(vocab):
    stream = vocab.stream("image")
    big = rand_codes("image", (8, 8))
    header = [stream.start_id, stream.dim_id + 7, stream.dim_id + 7]
    seq = torch.tensor(header + [stream.code_offset + 1] * 3 + [stream.end_id])
    assert vocab.parse(seq).media[0].codes.shape == (8, 8)      # small grids are padded
    import mmtok.llm.parse as parse_module

    limit, parse_module.MAX_INVENTED = parse_module.MAX_INVENTED, 10
    try:
        repaired = vocab.parse(seq)
        assert repaired.media == [] and "too little to repair" in repaired.problems[0]
        assert vocab.parse(vocab.encode_codes(big, "image")).media[0].codes.equal(big)
    finally:
        parse_module.MAX_INVENTED = limit
