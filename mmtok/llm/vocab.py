"""`MediaVocab`: the map between an extended LLM vocabulary and the media tokenizers.

`mmtok extend` writes `mmtok_vocab.json` next to an ordinary transformers checkpoint:

    {"format": "mmtok-vocab", "version": 1,
     "text_vocab_size": 32000,      # ids below this are the LLM's own tokens
     "vocab_size": 108377,          # len(tokenizer) after extension
     "embedding_rows": 108384,      # rows of the resized embeddings (>= vocab_size; the rest
                                    # are pad_to_multiple_of rows that decode to nothing)
     "streams": [MediaStream.to_json(), ...]}

Ids of the media blocks are contiguous and recorded, so code <-> id is arithmetic; text is
tokenized by the LLM's own tokenizer (loaded lazily from the same folder).
"""

from __future__ import annotations

import shutil
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

import mmtok
from mmtok.errors import MmtokError, first_line
from mmtok.files import read_json, write_json
from mmtok.llm.options import StreamOptions
from mmtok.llm.parse import Parsed
from mmtok.llm.parse import parse as parse_ids
from mmtok.llm.sequence import Part, Sequence
from mmtok.llm.sequence import build as build_sequence
from mmtok.llm.sequence import prompt as build_prompt
from mmtok.llm.streams import MediaStream, SpanType, make_stream
from mmtok.tokenizer import Tokenizer

VOCAB_FILE = "mmtok_vocab.json"
VOCAB_FORMAT = "mmtok-vocab"
VOCAB_VERSION = 1
BUNDLED = "mmtok_tokenizers"   # copies of local tokenizers inside the extended checkpoint


class MediaVocab:
    """Streams of media ids appended after an LLM's text vocabulary.

    `directory` is the extended checkpoint (None for a vocab built in memory); tokenizers
    are found, in order, in `tokenizers=` overrides, in the checkpoint's bundled copies, and
    at the path recorded at extension time, and always checked against the fingerprint.
    """

    def __init__(
        self, streams: list[MediaStream], text_vocab_size: int, embedding_rows: int | None = None,
        directory: Path | None = None, tokenizers: dict[str, Tokenizer | str | Path] | None = None,
    ):
        self.streams = list(streams)
        self.text_vocab_size = text_vocab_size
        self.vocab_size = self.streams[-1].stop_id if self.streams else text_vocab_size
        self.embedding_rows = embedding_rows or self.vocab_size
        self.directory = directory
        self._tokenizers: dict[str, Tokenizer] = {}
        self._overrides = dict(tokenizers or {})
        self._check()

    # -- construction ----------------------------------------------------------------
    @classmethod
    def create(
        cls, tokenizers: dict[str, Tokenizer], text_vocab_size: int, options: StreamOptions | dict[str, StreamOptions] | None = None,
        embedding_rows: int | None = None,
    ) -> MediaVocab:
        """Lay out one block per tokenizer (in the given order) after `text_vocab_size` ids.
        `options` is one `StreamOptions` for all streams or one per stream name;
        `embedding_rows` (default: the vocab size) counts pad rows past the last block."""
        streams, start = [], text_vocab_size
        for name, tok in tokenizers.items():
            opts = options.get(name, StreamOptions()) if isinstance(options, dict) else (options or StreamOptions())
            stream = make_stream(name, tok, start, opts)
            streams.append(stream)
            start = stream.stop_id
        return cls(streams, text_vocab_size, embedding_rows, tokenizers=tokenizers)

    def _check(self) -> None:
        names = [s.name for s in self.streams]
        if len(set(names)) != len(names):
            raise MmtokError(f"two media streams share a name in {names}; name them (--tokenizer NAME=PATH)")
        expected = self.text_vocab_size
        for s in self.streams:
            if s.start_id != expected:
                raise MmtokError(f"media stream '{s.name}' starts at id {s.start_id}, expected {expected}; re-run `mmtok extend`")
            expected = s.stop_id
        if self.embedding_rows < self.vocab_size:
            raise MmtokError(f"embedding rows {self.embedding_rows} < vocab size {self.vocab_size}; re-run `mmtok extend`")

    # -- persistence -----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": VOCAB_FORMAT, "version": VOCAB_VERSION, "text_vocab_size": self.text_vocab_size,
            "vocab_size": self.vocab_size, "embedding_rows": self.embedding_rows,
            "streams": [s.to_json() for s in self.streams],
        }

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VOCAB_FILE
        write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, directory: str | Path, tokenizers: dict[str, Tokenizer | str | Path] | None = None) -> MediaVocab:
        """Read `DIR/mmtok_vocab.json` (written by `mmtok extend`); `tokenizers` maps stream
        names to tokenizers (objects or paths) to use instead of the recorded ones."""
        directory = Path(directory)
        path = directory / VOCAB_FILE if directory.is_dir() else directory
        if not path.is_file():
            raise MmtokError(f"{directory}: no {VOCAB_FILE}; make the folder with `mmtok extend`")
        data = read_json(path, "unreadable vocab file", "re-run `mmtok extend`")
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise MmtokError(f"{path}: not an mmtok vocab file; make one with `mmtok extend`")
        if data.get("version") != VOCAB_VERSION:
            raise MmtokError(f"{path}: vocab format version {data.get('version')} is not supported (expected {VOCAB_VERSION}); upgrade mmtok")
        try:
            streams = [MediaStream.from_json(s, str(path)) for s in data["streams"]]
            vocab = cls(streams, int(data["text_vocab_size"]), int(data["embedding_rows"]), path.parent, tokenizers)
        except (KeyError, TypeError, ValueError) as err:
            raise MmtokError(f"{path}: damaged vocab file ({err}); re-run `mmtok extend`") from None
        if vocab.vocab_size != data.get("vocab_size"):
            raise MmtokError(f"{path}: vocab_size {data.get('vocab_size')} does not match its streams ({vocab.vocab_size}); re-run `mmtok extend`")
        unknown = sorted(set(vocab._overrides) - {s.name for s in streams})
        if unknown:
            raise MmtokError(f"{path}: no media stream named {unknown}; streams are {[s.name for s in streams]}")
        return vocab

    def bundle_tokenizers(self, directory: Path) -> None:
        """Copy each stream's tokenizer folder (when it is a local folder) into
        `directory/mmtok_tokenizers/NAME`, so the extended checkpoint is self-contained."""
        for stream in self.streams:
            source = Path(stream.tokenizer["source"])
            if source.is_dir():
                shutil.copytree(source, directory / BUNDLED / stream.name)

    # -- lookup ----------------------------------------------------------------------
    def stream(self, name: str) -> MediaStream:
        for s in self.streams:
            if s.name == name:
                return s
        raise MmtokError(f"no media stream named '{name}'; this vocab has {[s.name for s in self.streams]}")

    def stream_for(self, what: str | Tokenizer) -> MediaStream:
        """The stream of a tokenizer (by fingerprint), a stream name, or the only stream of
        a modality ("image", "audio", "video"): the only one whose tokenizer has that
        modality, else the only one that serves it as another media type (Emu3: images)."""
        if isinstance(what, Tokenizer):
            for s in self.streams:
                if s.tokenizer["fingerprint"] == what.fingerprint:
                    return s
            raise MmtokError(
                f"tokenizer {what.kind} {what.fingerprint} is not part of this vocab (its streams were made by "
                f"{[s.tokenizer['fingerprint'] for s in self.streams]}); extend the LLM with it first"
            )
        named = [s for s in self.streams if s.name == what]
        if named:
            return named[0]
        # A tokenizer of that modality first; else one that serves it too (Emu3 for images).
        of_modality = [s for s in self.streams if s.modality == what] or [s for s in self.streams if what in s.media_types]
        if len(of_modality) == 1:
            return of_modality[0]
        if of_modality:
            raise MmtokError(f"several {what} streams {[s.name for s in of_modality]}; pick one by name")
        raise MmtokError(f"no '{what}' stream in this vocab; it has {[s.name for s in self.streams]}")

    def span_type(self, what: str) -> SpanType:
        """The spans `what` names: a stream name (the spans of its modality), "NAME:MEDIA_TYPE"
        (Emu3's "emu3:image"), or a media type (its stream as `stream_for` finds it)."""
        name, _, media_type = what.partition(":")
        if media_type:
            return self.stream(name).span_type(media_type)
        stream = self.stream_for(what)
        return stream.span_type(None if what == stream.name else what)

    def stream_of_id(self, token_id: int) -> MediaStream | None:
        """The stream whose block holds `token_id` (None for text and pad rows)."""
        for s in self.streams:
            if s.start_id <= token_id < s.stop_id:
                return s
        return None

    @cached_property
    def block_table(self) -> torch.Tensor:
        """`[embedding_rows]` int64: stream index of every id, -1 for text, -2 for pad rows."""
        table = torch.full((self.embedding_rows,), -2, dtype=torch.long)
        table[: self.text_vocab_size] = -1
        for i, s in enumerate(self.streams):
            table[s.start_id : s.stop_id] = i
        return table

    # -- tokenizers ------------------------------------------------------------------
    def tokenizer(self, name: str, media_type: str | None = None) -> Tokenizer:
        """The media tokenizer of stream `name`, loaded once and checked by fingerprint; with
        `media_type`, what codes that media type (`Tokenizer.for_media`: an Emu3 stream's
        images are coded as one-frame videos)."""
        if media_type is not None:
            self.stream(name).span_type(media_type)   # served by this stream, or MmtokError
            return self.tokenizer(name).for_media(media_type)
        if name in self._tokenizers:
            return self._tokenizers[name]
        stream = self.stream(name)
        override = self._overrides.get(name)
        if isinstance(override, Tokenizer):
            tok = override
        else:
            bundled = self.directory / BUNDLED / name if self.directory else None
            where = override or (bundled if bundled and bundled.is_dir() else stream.tokenizer["source"])
            if not where:
                raise MmtokError(f"stream '{name}': no tokenizer recorded; pass one (-t {name}=PATH)")
            tok = mmtok.load(where)
        if tok.fingerprint != stream.tokenizer["fingerprint"]:
            raise MmtokError(
                f"stream '{name}': tokenizer {tok.name_or_path or tok.kind} has fingerprint {tok.fingerprint}, but the "
                f"vocab was extended with {stream.tokenizer['fingerprint']} ({stream.tokenizer['source']}); use that tokenizer"
            )
        self._tokenizers[name] = tok
        return tok

    @cached_property
    def text_tokenizer(self):
        """The LLM's transformers tokenizer (from the extended checkpoint folder)."""
        from transformers import AutoTokenizer

        if self.directory is None:
            raise MmtokError("this vocab was built in memory; load it from an extended checkpoint to tokenize text")
        try:
            return AutoTokenizer.from_pretrained(self.directory)
        except (OSError, ValueError, KeyError) as err:
            raise MmtokError(
                f"{self.directory}: cannot load the LLM's tokenizer ({first_line(err)}); point at the extended checkpoint"
            ) from None

    # -- codes <-> ids ---------------------------------------------------------------
    def encode_codes(self, codes: torch.Tensor, tokenizer: str | Tokenizer, media_type: str | None = None) -> torch.Tensor:
        """Codes of one item (image `[h,w]`, audio `[K,t]`, video `[t,h,w]`) of `media_type`
        (default: the stream's modality) -> the whole span of LLM ids
        `[start, header..., codes..., end]` (int64)."""
        return self.stream_for(tokenizer).span(codes, media_type)

    def build(self, parts: list[Part], bos: bool = False, eos: bool = False) -> Sequence:
        """Interleaved text and media parts -> `Sequence` (ids + per-token modality); see
        `mmtok.llm.sequence.build`."""
        return build_sequence(self, parts, bos, eos)

    def prompt(self, parts: list[Part], media: str | None = None, bos: bool = False) -> Sequence:
        """A generation prompt: text and media `parts`, then (when `media` names a stream or a
        modality) that stream's start id; see `mmtok.llm.sequence.prompt`."""
        return build_prompt(self, parts, media, bos)

    def parse(self, ids: torch.Tensor | list[int], policy: str = "repair") -> Parsed:
        """Generated ids `[L]` -> text and media segments; malformed spans are reported and
        handled by `policy` ("strict", "repair" or "drop"), see `mmtok.llm.parse.parse`."""
        return parse_ids(self, ids, policy)

    def decode_ids(self, ids: torch.Tensor | list[int]) -> tuple[MediaStream, torch.Tensor]:
        """One complete span of ids -> `(stream, codes)`; MmtokError if it is malformed
        (use `parse` for whole generated sequences, which reports and repairs)."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        media = [s for s in parse_ids(self, ids, policy="strict").segments if s.stream is not None]
        if len(media) != 1 or media[0].start != 0 or media[0].stop != ids.numel():
            raise MmtokError(f"expected exactly one media span from start to end token, got {len(media)} spans")
        return media[0].stream, media[0].codes
