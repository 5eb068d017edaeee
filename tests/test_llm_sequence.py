"""`MediaVocab.build`: interleaved text and media become ids and a modality mask without
media ever passing through text."""

from __future__ import annotations

import pytest
import torch
from conftest import sample_audio, sample_image, sample_video, write_image, write_sample_audio, write_sample_video

import mmtok
from mmtok.errors import MmtokError
from mmtok.image.files import encode_image
from mmtok.llm import Audio, Image, MediaVocab, Video


@pytest.fixture(scope="module")
def vocab(extended_dir) -> MediaVocab:
    return MediaVocab.load(extended_dir)


def test_text_only_equals_the_llm_tokenizer(vocab):
    seq = vocab.build(["Hello world, the function returns"])
    expected = vocab.text_tokenizer("Hello world, the function returns", add_special_tokens=False)["input_ids"]
    assert seq.input_ids.tolist() == expected
    assert (seq.modality == 0).all() and seq.spans == []
    bos_eos = vocab.build(["Hi"], bos=True, eos=True).input_ids.tolist()
    assert bos_eos[0] == vocab.text_tokenizer.bos_token_id and bos_eos[-1] == vocab.text_tokenizer.eos_token_id


def test_image_span_layout(vocab, tmp_path):
    path = write_image(tmp_path / "cat.png", sample_image(10, 13, seed=3))   # grid 3x4 at downsample 4
    seq = vocab.build(["A cat:", Image(path), "end"])
    stream = vocab.stream("image")
    (name, start, stop), = seq.spans
    span = seq.input_ids[start:stop]
    assert name == "image"
    assert span[0] == stream.start_id and span[-1] == stream.end_id
    assert span[1:3].tolist() == [stream.dim_id + 2, stream.dim_id + 3]            # h=3, w=4
    body = span[3:-1]
    assert body.numel() == 3 * (4 + 1)                                               # row separators
    assert (body.view(3, 5)[:, -1] == stream.code_offset + 125).all()
    codes = stream.unflatten(body, (3, 4))
    assert torch.equal(codes, encode_image(vocab.tokenizer("image"), sample_image(10, 13, seed=3)).codes)
    assert (seq.modality[start:stop] == 1).all() and (seq.modality[:start] == 0).all() and (seq.modality[stop:] == 0).all()
    assert seq.names[1] == "image" and len(seq) == seq.input_ids.numel()


def test_sources_give_the_same_ids(vocab, tmp_path):
    image = sample_image(16, 12, seed=4)
    path = write_image(tmp_path / "x.png", image)
    tok = vocab.tokenizer("image")
    token_file = encode_image(tok, image)
    token_path = token_file.save(tmp_path / "x.mmtok")
    spans = [vocab.build([Image(src)]).input_ids for src in (path, str(path), image, image.float() / 127.5 - 1, token_file, token_path)]
    assert all(torch.equal(spans[0], s) for s in spans[1:])
    assert torch.equal(spans[0], vocab.encode_codes(token_file.codes, "image"))
    assert torch.equal(spans[0], vocab.encode_codes(token_file.codes, tok))


def test_audio_and_video_spans(vocab, tmp_path):
    codec = vocab.tokenizer("audio")
    wave = sample_audio(0.3, codec.sample_rate)
    audio_path = write_sample_audio(tmp_path / "a.wav", 0.3, codec.sample_rate)
    video_path = write_sample_video(tmp_path / "v.mp4", 9, 16, 20)
    seq = vocab.build([Audio(audio_path), "and", Video(video_path), Audio(wave)])
    (a_name, a0, a1), (v_name, v0, v1), (_, b0, b1) = seq.spans
    audio = vocab.stream("audio")
    frames = codec.num_frames(wave.shape[-1])
    assert a1 - a0 == 2 + frames * 4 and (a_name, v_name) == ("audio", "video")
    assert torch.equal(seq.input_ids[a0:a1], seq.input_ids[b0:b1])     # file and tensor agree
    body = seq.input_ids[a0 + 1 : a1 - 1].view(frames, 4)
    for level, (lo, hi) in enumerate(audio.code_ranges()):
        assert ((body[:, level] >= lo) & (body[:, level] < hi)).all()
    video = vocab.stream("video")
    vtok = vocab.tokenizer("video")
    t, h, w = vtok.grid_shape(9, 16, 20)
    assert seq.input_ids[v0 + 1 : v0 + 4].tolist() == [video.dim_id + d - 1 for d in (t, h, w)]
    assert v1 - v0 == 1 + 3 + t * (h * (w + 1) + 1) + 1
    assert seq.modality[v0:v1].unique().tolist() == [3]
    uint8 = ((sample_video(9, 16, 20) + 1) * 127.5).round().to(torch.uint8)
    assert vocab.build([Video(uint8)]).input_ids.numel() == v1 - v0


def test_bad_parts_are_clear_errors(vocab, tmp_path, other_tok_dir):
    with pytest.raises(MmtokError, match="holds audio, not image"):
        vocab.build([Image(torch.zeros(3, 8, 8), stream="audio")])
    with pytest.raises(MmtokError, match="str, Image, Audio or Video"):
        vocab.build([42])
    with pytest.raises(MmtokError, match="3 dims"):
        vocab.build([Image(torch.zeros(8, 8))])
    with pytest.raises(MmtokError, match="missing.png"):
        vocab.build([Image(tmp_path / "missing.png")])
    foreign = encode_image(mmtok.load(other_tok_dir), sample_image(8, 8)).save(tmp_path / "foreign.mmtok")
    with pytest.raises(MmtokError, match="fingerprint|made by"):
        vocab.build([Image(foreign)])
