"""The media types: found by name, suffix and tokenizer; what the command line spells out
for them agrees with the `Modality` objects; a wrong option names the media type it belongs to."""

from __future__ import annotations

import pytest

import mmtok
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
