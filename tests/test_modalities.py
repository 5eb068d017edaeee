"""The media types: found by name, suffix and tokenizer; what the command line spells out
for them agrees with the `Modality` objects; a wrong option names the media type it belongs to;
media read whole (pre-tokenization) get the codes of the file encoder; bare codes decode to
files of the tokenizer's own size."""

from __future__ import annotations

import pytest
import torch
from conftest import sample_image, write_image, write_sample_audio, write_sample_video

import mmtok
from mmtok.media.audio import audio_info
from mmtok.media.image import read_image
from mmtok.media.video import video_info
from mmtok.cli.codes import FORMATS
from mmtok.errors import MmtokError
from mmtok.modalities import MODALITIES, check_encode_options, for_suffix, modality_of, named
from mmtok.tokens_file import ORIGINAL_SCHEMA


def test_cli_formats_are_the_modalities_formats():
    assert sorted(FORMATS) == sorted(f for m in MODALITIES.values() for f in m.formats)


def test_lookup_by_name_suffix_and_tokenizer(tok_dir):
    assert list(MODALITIES) == ["image", "video", "audio"]
    assert named("audio").default_format == "wav" and named("video").default_format == "mp4"
    assert for_suffix(".JPG").name == "image" and for_suffix(".flac").name == "audio" and for_suffix(".mkv").name == "video"
    assert for_suffix(".gif").name == "image"  # both read gif; a lone .gif is a picture
    assert for_suffix(".txt") is None
    assert modality_of(mmtok.load(tok_dir)) is MODALITIES["image"]
    with pytest.raises(MmtokError, match="unknown media type 'text'"):
        named("text")
    for m in MODALITIES.values():  # every media type's `original` facts are in the token-file schema
        assert m.original_schema is ORIGINAL_SCHEMA[m.name]


def test_option_of_another_media_type_is_refused(tok_dir):
    tok = mmtok.load(tok_dir)
    check_encode_options(tok, "T", kbps=None, fps=None)
    with pytest.raises(MmtokError, match=r"^T: --short-side applies to video tokenizers; image-vq is a image tokenizer$"):
        check_encode_options(tok, "T", kbps=None, short_side=64)


@pytest.mark.parametrize("name", ["image", "audio", "video"])
def test_held_media_get_the_file_encoders_codes_and_decode_back(name, tok_dir, codec_dir, video_tok_dir, tmp_path):
    """`hold` + `encode_held` (workers read, the main process codes) equals `encode_file`
    bit for bit, with a block boundary inside the file (audio 0.3 s chunks, video 16-frame
    blocks); `write_codes` decodes the codes to a file of the expected size / length."""
    modality = named(name)
    if name == "image":
        tok, path, options = mmtok.load(tok_dir), write_image(tmp_path / "x.png", sample_image(20, 28, seed=5)), {}
    elif name == "audio":
        tok, path = mmtok.load(codec_dir), write_sample_audio(tmp_path / "x.flac", 0.7, 22050, seed=6)
        options = {"levels": 2}
    else:
        tok, path, options = mmtok.load(video_tok_dir), write_sample_video(tmp_path / "x.mp4", 21, 24, 32, seed=7), {}
    if name == "audio":  # three blocks: the encoder must see the pieces the file encoder sees
        modality = type(modality)()
        modality.chunk_seconds = 0.3
    held = modality.hold(path, **modality.reading(tok))
    codes = modality.encode_held(tok, held, **options)
    if name == "audio":
        from mmtok.audio.files import encode_audio

        expected = encode_audio(tok, path, 2, chunk_seconds=0.3).codes
        assert len(held.blocks) == 3
    else:
        expected = modality.encode_file(tok, path, **options).codes
    assert torch.equal(codes.long(), expected.long())
    if modality.held_grid(tok, held) is not None:
        assert modality.held_grid(tok, held) == tuple(codes.shape)

    out = tmp_path / f"out.{modality.default_format}"
    assert modality.write_codes(tok, codes, out, fps=10.0)
    if name == "image":
        assert read_image(out).shape == (3, codes.shape[0] * tok.downsample, codes.shape[1] * tok.downsample)
    elif name == "audio":
        info = audio_info(out)
        assert (info.sample_rate, info.num_samples) == (tok.sample_rate, codes.shape[1] * tok.hop_length)
        assert not modality.write_codes(tok, codes[:, :0], tmp_path / "empty.wav", fps=10.0)
        assert not (tmp_path / "empty.wav").exists()
    else:
        info = video_info(out)
        f = tok.spatial_downsample
        assert (info.num_frames, info.height, info.width) == (tok.frames_for(codes.shape[0]), codes.shape[1] * f, codes.shape[2] * f)
        assert info.fps == pytest.approx(10.0)
