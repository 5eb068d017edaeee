"""The media types mmtok knows, found by name, by file suffix or by tokenizer.

    modality = modality_of(tok)          # the tokenizer's media type (`Tokenizer.modality`)
    named("audio").suffixes              # {".wav", ".flac", ...}
    for_suffix(".mp4")                   # VIDEO; None for a suffix no media type reads

Adding a media type: write its `Modality` (see `mmtok.media.modality`) beside its code and
list it here.
"""

from __future__ import annotations

from typing import Any

from mmtok.audio.modality import AUDIO
from mmtok.errors import MmtokError
from mmtok.image.modality import IMAGE
from mmtok.media.modality import Modality
from mmtok.video.modality import VIDEO

# In the order a suffix or a folder is claimed: ".gif" is read as an image, and a folder
# holding both video and audio files is compared as video.
MODALITIES: dict[str, Modality] = {m.name: m for m in (IMAGE, VIDEO, AUDIO)}


def named(name: str) -> Modality:
    try:
        return MODALITIES[name]
    except KeyError:
        raise MmtokError(f"unknown media type {name!r}; expected one of {', '.join(MODALITIES)}") from None


def modality_of(tok: Any) -> Modality:
    """The media type a tokenizer codes."""
    return named(tok.modality)


def for_suffix(suffix: str) -> Modality | None:
    """The media type that reads files ending in `suffix` (any case), or None."""
    return next((m for m in MODALITIES.values() if suffix.lower() in m.suffixes), None)


def check_encode_options(tok: Any, spec: str, **given: Any) -> None:
    """MmtokError for an `mmtok encode` option given (not None) that the tokenizer's media
    type has no use for, naming the media type it belongs to."""
    own = modality_of(tok)
    for option, value in given.items():
        if value is not None and option not in own.encode_options:
            owner = next(m.name for m in MODALITIES.values() if option in m.encode_options)
            flag = "--" + option.replace("_", "-")
            raise MmtokError(f"{spec}: {flag} applies to {owner} tokenizers; {tok.kind} is a {tok.modality} tokenizer")
