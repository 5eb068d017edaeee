"""Pretrained families in an LLM vocabulary: Emu3 serves `Video(...)` and `Image(...)` parts
from one stream, Janus serves `Image(...)` parts.

A tiny random-init Emu3VQVAE (saved with transformers, loaded through mmtok) is added to a
vocabulary as ONE block: a start / end pair per media type, one header range, one code range
(one codebook, as Emu3's own `<|visual token N|>` ids). Checked here: the stream's layouts are
the tokenizer's `token_layout` per media type, image and video spans share the code and row
separator ids, `build` / `parse` round trips, the logits processor's spans for both media
types, the vocab file round trip, and the CLI from an image / video file to token shards and
back to a PNG / MP4 through an extended tiny Llama. A tiny Janus VQ (an image tokenizer of
one fixed resolution) beside it takes the `Image(...)` parts that name no stream.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import extend_tiny, make_video_tokenizer, run_mmtok, sample_image, write_image, write_sample_video
from PIL import Image as PILImage
from test_image_pretrained import JANUS_VQ, janus_processor
from test_video_pretrained import tiny_emu3_vq
from transformers import JanusVQVAE, JanusVQVAEConfig

import mmtok
from mmtok.errors import MmtokError
from mmtok.llm import Image, MediaVocab, StreamOptions, Video
from mmtok.llm.constrain import MediaLogitsProcessor
from mmtok.llm.shards import TokenShards
from mmtok.media.image import from_model, to_model
from mmtok.video.as_images import FramesAsImages

torch.set_num_threads(1)

TEXT = 300
OPTIONS = StreamOptions(row_separator=True, frame_separator=True, max_dim=16)
H, W = 16, 20          # the tiny Emu3 is 4x spatial: codes 4 x 5


@pytest.fixture(scope="module")
def emu3_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("emu3") / "vq"
    tiny_emu3_vq().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def emu3(emu3_dir):
    return mmtok.load(emu3_dir)


@pytest.fixture(scope="module")
def vocab(emu3) -> MediaVocab:
    return MediaVocab.create({"emu3": emu3}, TEXT, OPTIONS)


def image_u8(seed: int = 0) -> torch.Tensor:
    return sample_image(H, W, seed=seed)   # [3,H,W] uint8


def video_u8(frames: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.stack([sample_image(H, W, seed=seed + i) for i in range(frames)], dim=1)   # [3,T,H,W] uint8


# -- the block ----------------------------------------------------------------------

def test_one_block_two_span_types_from_token_layout(vocab, emu3):
    (stream,) = vocab.streams
    assert emu3.media_types == ("video", "image") and stream.media_types == ("video", "image")
    # the layouts are the tokenizer's, per media type (no second source)
    assert stream.layouts == (
        emu3.token_layout(row_separator=True, frame_separator=True, media_type="video"),
        emu3.token_layout(row_separator=True, media_type="image"),
    )
    video, image = stream.span_types
    assert (video.start_id, video.end_id, image.start_id, image.end_id) == (TEXT, TEXT + 1, TEXT + 2, TEXT + 3)
    assert (video.key, image.key) == ("emu3", "emu3:image")
    assert stream.dim_id == TEXT + 4 and stream.code_offset == TEXT + 4 + 16
    # 64 codes, one row separator, one frame separator: shared, so the block has them once
    assert vocab.vocab_size == stream.stop_id == TEXT + 4 + 16 + 64 + 2
    names = stream.token_strings()
    assert names[:4] == ["<|emu3_video_start|>", "<|emu3_video_end|>", "<|emu3_image_start|>", "<|emu3_image_end|>"]
    assert names[-2:] == ["<|emu3_row|>", "<|emu3_frame|>"] and len(set(names)) == len(names)


def test_image_and_video_spans_share_code_ids(vocab):
    """An image's span body is the body of the one-frame video of the same codes, without the
    frame separator: same code ids, same row separator id; only the markers differ."""
    (stream,) = vocab.streams
    codes = torch.randint(0, 64, (4, 5), generator=torch.Generator().manual_seed(1))
    image_span = stream.span(codes, "image")
    video_span = stream.span(codes[None], "video")
    assert image_span[0] == TEXT + 2 and image_span[-1] == TEXT + 3 and video_span[0] == TEXT and video_span[-1] == TEXT + 1
    assert image_span[1:3].tolist() == video_span[2:4].tolist() == [stream.dim_id + 3, stream.dim_id + 4]
    assert torch.equal(image_span[3:-1], video_span[4:-2]) and video_span[-2] == stream.stop_id - 1
    row = stream.code_offset + 64
    assert (image_span[3:-1] == row).sum() == 4 and image_span[3 + 5] == row
    with pytest.raises(MmtokError, match="expected image codes with 2 dims"):
        stream.span(codes[None], "image")
    with pytest.raises(MmtokError, match="holds video and image, not audio"):
        stream.span(codes, "audio")


def test_vocab_file_round_trip(vocab, tmp_path):
    vocab.save(tmp_path)
    data = json.loads((tmp_path / "mmtok_vocab.json").read_text())
    (entry,) = data["streams"]
    assert [layout["media_type"] for layout in entry["layouts"]] == ["video", "image"]
    assert entry["ids"]["spans"] == {"video": [TEXT, TEXT + 1], "image": [TEXT + 2, TEXT + 3]}
    again = MediaVocab.load(tmp_path)
    assert again.streams == vocab.streams and again.vocab_size == vocab.vocab_size
    entry["ids"]["spans"]["image"] = [TEXT + 3, TEXT + 4]
    (tmp_path / "mmtok_vocab.json").write_text(json.dumps(data))
    with pytest.raises(MmtokError, match="inconsistent ids"):
        MediaVocab.load(tmp_path)


def test_single_media_entries_are_unchanged(tmp_path):
    """Streams of one media type write no "layouts" / "spans" (what they would say is implied),
    so vocab files and dataset fingerprints made before stay valid; a file that lacks them
    reads back the same layouts."""
    tok = make_video_tokenizer()
    vocab = MediaVocab.create({"video": tok}, TEXT, OPTIONS)
    (entry,) = vocab.to_json()["streams"]
    assert "layouts" not in entry and "spans" not in entry["ids"]
    vocab.save(tmp_path)
    (stream,) = MediaVocab.load(tmp_path).streams
    assert stream.layouts == (tok.token_layout(row_separator=True, frame_separator=True),)


# -- parts -> ids -> parts ------------------------------------------------------------

def test_build_and_parse_image_and_video_parts(vocab, emu3):
    image, video = image_u8(), video_u8()
    seq = vocab.build([Image(image), Video(video), Image(to_model(image))])
    (stream,) = vocab.streams
    starts = [int(seq.input_ids[a]) for _, a, _ in seq.spans]
    assert starts == [TEXT + 2, TEXT, TEXT + 2] and seq.modality.tolist() == [1] * len(seq)
    image_codes = emu3.encode(to_model(image)[None, :, None])[0, 0]          # Emu3's image codes: a 1-frame clip
    video_codes = emu3.encode_windowed(to_model(video)[None])[0]
    assert video_codes.shape == (2, 4, 5)
    parsed = vocab.parse(seq.input_ids, "strict")
    assert [(s.media_type, s.grid) for s in parsed.media] == [("image", (4, 5)), ("video", (2, 4, 5)), ("image", (4, 5))]
    for segment, want in zip(parsed.media, (image_codes, video_codes, image_codes)):
        assert segment.stream is stream and torch.equal(segment.codes, want)
    assert torch.equal(torch.cat([s.ids for s in parsed.segments]), seq.input_ids)


def test_parse_keeps_the_span_types_apart(vocab):
    """An image span closed by the VIDEO end token has no end of its own: repair closes it at
    its codes and drops the stray marker, naming it; strict refuses it."""
    (stream,) = vocab.streams
    codes = torch.randint(0, 64, (2, 3), generator=torch.Generator().manual_seed(3))
    ids = stream.span(codes, "image")
    ids[-1] = stream.span_type("video").end_id
    parsed = vocab.parse(ids, "repair")
    assert [(s.media_type, s.grid) for s in parsed.media] == [("image", (2, 3))]
    assert torch.equal(parsed.media[0].codes, codes) and parsed.media[0].ids[-1] == stream.span_type("image").end_id
    assert any("emu3 video end token" in p for p in parsed.problems), parsed.problems
    with pytest.raises(MmtokError, match="no end token"):
        vocab.parse(ids, "strict")


def test_image_part_needs_a_stream_that_serves_images(emu3):
    """A video tokenizer that codes no images refuses `Image(...)`; with an image tokenizer
    beside it, "image" means the image tokenizer and Emu3's images are asked for by name."""
    plain = MediaVocab.create({"video": make_video_tokenizer()}, TEXT, OPTIONS)
    with pytest.raises(MmtokError, match="no 'image' stream"):
        plain.build([Image(image_u8())])
    with pytest.raises(MmtokError, match="holds video, not image"):
        plain.build([Image(image_u8(), stream="video")])
    with pytest.raises(MmtokError, match="does not code images"):
        FramesAsImages(plain.tokenizer("video"))
    both = MediaVocab.create({"video": make_video_tokenizer(), "emu3": emu3}, TEXT, OPTIONS)
    assert both.stream_for("video").name == "video" and both.stream_for("image").name == "emu3"
    seq = both.build([Image(image_u8(), stream="emu3")])
    assert int(seq.input_ids[0]) == both.stream("emu3").span_type("image").start_id


def test_prompt_opens_the_named_span(vocab):
    assert int(vocab.prompt([], media="image").input_ids[-1]) == TEXT + 2
    assert int(vocab.prompt([], media="emu3:image").input_ids[-1]) == TEXT + 2
    assert int(vocab.prompt([], media="emu3").input_ids[-1]) == TEXT
    assert int(vocab.prompt([], media="video").input_ids[-1]) == TEXT


def test_janus_image_parts_beside_emu3(tmp_path, emu3):
    """Janus (image modality) takes `Image(...)` parts by default; Emu3's images by name. Janus
    codes every image at its one resolution (a 16x16 grid here), whatever the input size."""
    torch.manual_seed(0)
    JanusVQVAE(JanusVQVAEConfig(**JANUS_VQ)).eval().save_pretrained(tmp_path / "janus")
    janus_processor().save_pretrained(tmp_path / "janus")
    janus = mmtok.load(tmp_path / "janus")
    vocab = MediaVocab.create({"janus": janus, "emu3": emu3}, TEXT, OPTIONS)
    assert vocab.stream_for("image").name == "janus" and vocab.streams[0].media_types == ("image",)
    image = image_u8(5)
    seq = vocab.build([Image(image), Image(image, stream="emu3")])
    parsed = vocab.parse(seq.input_ids, "strict")
    assert [(s.stream.name, s.media_type, s.grid) for s in parsed.media] == [("janus", "image", (16, 16)), ("emu3", "image", (4, 5))]
    assert torch.equal(parsed.media[0].codes, janus.encode(to_model(image)[None])[0])
    assert torch.equal(parsed.media[1].codes, emu3.encode(to_model(image)[None, :, None])[0, 0])


# -- constrained generation --------------------------------------------------------------

def allowed(proc: MediaLogitsProcessor, ids: list[int], width: int) -> set[int]:
    out = proc(torch.tensor([ids]), torch.zeros(1, width))
    return set(torch.isfinite(out[0]).nonzero()[:, 0].tolist())


def expected_after(stream, span: list[int], k: int) -> set[int]:
    """What a well-formed span of its own grid allows at position k (header fixed by grids)."""
    codes, row, frame = stream.code_offset, stream.code_offset + 64, stream.code_offset + 65
    x = span[k]
    if x in (row, frame) or k == len(span) - 1 or k <= (3 if span[0] == stream.start_id else 2):
        return {x}
    return set(range(codes, codes + 64))


@pytest.mark.parametrize("media", ["image", "video"])
def test_constrained_spans_follow_each_media_types_layout(vocab, media):
    (stream,) = vocab.streams
    codes = torch.randint(0, 64, (2, 3, 4) if media == "video" else (3, 4), generator=torch.Generator().manual_seed(2))
    span = stream.span(codes, media).tolist()
    grid = tuple(codes.shape)
    proc = MediaLogitsProcessor(vocab, grids={media: grid})
    width = vocab.vocab_size + 5   # pad rows are never allowed
    assert allowed(proc, [5], width) == set(range(TEXT)) | {TEXT, TEXT + 2}   # text: both start tokens
    fresh = [allowed(MediaLogitsProcessor(vocab, grids={media: grid}), span[:k], width) for k in range(1, len(span))]
    for k in range(1, len(span)):   # one processor, fed one token at a time (the stepping path)
        got = allowed(proc, span[:k], width)
        assert got == fresh[k - 1] == expected_after(stream, span, k), (media, k)
    # the image span never offers the frame separator; a free grid offers any header dim
    free = MediaLogitsProcessor(vocab)
    assert allowed(free, span[:1], width) == set(range(stream.dim_id, stream.dim_id + 16))
    assert (stream.code_offset + 65 in set().union(*fresh)) == (media == "video")


def reference_allowed(vocab, ids: list[int]) -> set[int]:
    """The grammar in plain Python, one span type at a time: a start token opens its type's
    span; an id of the block advances it unless it is that type's end; anything else is text."""
    (stream,) = vocab.streams
    starts = {t.start_id: t for t in stream.span_types}
    kind, pos, header = None, 0, []
    for x in ids:
        if x in starts:
            kind, pos, header = starts[x], 0, []
        elif kind is not None and stream.start_id <= x < stream.stop_id and x != kind.end_id:
            if pos < kind.num_dims:
                header.append(min(max(x - stream.dim_id + 1, 1), 16))
            pos += 1
        else:
            kind = None
    if kind is None:
        return set(range(TEXT)) | set(starts)
    if pos < kind.num_dims:
        return set(range(stream.dim_id, stream.dim_id + 16))
    grid, body = tuple(header), pos - kind.num_dims
    if body >= kind.body_length(grid):
        return {kind.end_id}
    lo, hi = kind.layout.allowed(body, grid)
    return set(range(stream.code_offset + lo, stream.code_offset + hi))


def test_random_prefixes_match_the_reference(vocab):
    """Junk and well-formed pieces of both span types: the processor (stepping and replaying)
    allows exactly what the reference does."""
    (stream,) = vocab.streams
    rng = np.random.default_rng(0)
    pieces = [stream.span(torch.randint(0, 64, (2, 3)), "image").tolist(), stream.span(torch.randint(0, 64, (1, 2, 2)), "video").tolist()]
    for _ in range(12):
        ids = [int(rng.integers(0, TEXT))]
        while len(ids) < 60:
            if rng.random() < 0.3:
                piece = pieces[int(rng.integers(2))]
                ids += piece[: int(rng.integers(1, len(piece) + 1))]
            else:
                ids.append(int(rng.integers(TEXT - 3, vocab.vocab_size + 3)))
        stepping = MediaLogitsProcessor(vocab)
        for k in range(1, len(ids) + 1):
            want = reference_allowed(vocab, ids[:k])
            assert allowed(stepping, ids[:k], vocab.vocab_size + 3) == want, ids[:k]
            if k % 7 == 0:
                assert allowed(MediaLogitsProcessor(vocab), ids[:k], vocab.vocab_size + 3) == want


def test_grids_by_span_key(vocab):
    proc = MediaLogitsProcessor(vocab, grids={"emu3": (1, 2, 3), "emu3:image": (4, 5)})
    assert proc.grids == {"emu3": (1, 2, 3), "emu3:image": (4, 5)}
    assert MediaLogitsProcessor(vocab, grids={"image": (4, 5)}).grids == {"emu3:image": (4, 5)}
    with pytest.raises(MmtokError, match=r"expected \(h, w\)"):
        MediaLogitsProcessor(vocab, grids={"emu3:image": (1, 4, 5)})
    with pytest.raises(MmtokError, match="no such stream"):
        MediaLogitsProcessor(vocab, grids={"audio": 3})


# -- files: pretokenize and detokenize through the CLI ------------------------------------

def test_cli_pretokenize_and_detokenize_image_and_video(tmp_path, llm_dir, emu3_dir, emu3):
    extended = tmp_path / "llm-emu3"
    extend_tiny(llm_dir, extended, {"emu3": emu3_dir}, row_separator=True, frame_separator=True, max_dim=16)
    media = tmp_path / "media"
    write_image(media / "a.png", image_u8(3))
    write_sample_video(media / "b.mp4", 5, H, W)
    shards_dir = tmp_path / "shards"
    result = run_mmtok("pretokenize", media, "--vocab", extended, "-o", shards_dir, "--no-bos", "--no-eos", timeout=300)
    assert result.returncode == 0, result.stderr
    vocab = MediaVocab.load(extended)
    shards = TokenShards(shards_dir, vocab=extended)
    assert shards.item_ids() == ["a.png", "b.mp4"]
    image_ids, video_ids = (np.asarray(shards[i][0]).astype(np.int64) for i in range(2))
    assert np.array_equal(image_ids, vocab.build([Image(media / "a.png")]).input_ids.numpy())
    assert np.array_equal(video_ids, vocab.build([Video(media / "b.mp4")]).input_ids.numpy())
    assert image_ids[0] == vocab.span_type("image").start_id and video_ids[0] == vocab.span_type("video").start_id

    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps([image_ids.tolist(), video_ids.tolist()]))
    out = tmp_path / "decoded"
    result = run_mmtok("detokenize", "--vocab", extended, ids_file, "-o", out, "--fps", 12, timeout=300)
    assert result.returncode == 0, result.stderr
    png, mp4 = out / "000" / "media-000.png", out / "001" / "media-000.mp4"
    decoded = torch.from_numpy(np.array(PILImage.open(png).convert("RGB"))).permute(2, 0, 1)
    codes = vocab.parse(torch.from_numpy(image_ids), "strict").media[0].codes
    want = from_model(emu3.decode(codes[None, None], size=(1, H, W))[:, :, 0])[0]   # Emu3's image decode: the clip's first frame
    assert torch.equal(decoded, want)
    with av.open(str(mp4)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (H, W, 3)   # 2 latent frames x 4
    transcript = (out / "000" / "transcript.md").read_text()
    assert "![emu3 0](media-000.png) *(image, 4x5)*" in transcript
