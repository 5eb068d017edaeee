"""Training sequences from interleaved text and media, built directly as ids.

    seq = vocab.build(["A cat:", Image("cat.png"), "says", Audio("meow.wav")])
    seq.input_ids   # [L] int64 LLM ids
    seq.modality    # [L] int8: 0 for text, 1 + stream index for a media span (boundary
                    # and header tokens included), e.g. to weight the loss per modality

Text goes through the LLM's own tokenizer; media goes through its tokenizer to codes and
then to ids by offset (`MediaStream.span`), never through strings. Text never produces a
control or media id: it is tokenized with `split_special_tokens=True`, so a caption that
holds "<|image_start|>" (or the LLM's own "<|im_end|>") is ordinary text, and `modality`
always agrees with the ids. A prompt that opens a media span says so explicitly
(`prompt(..., media="image")`, `mmtok generate --media image`), never by a magic string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from mmtok.errors import MmtokError
from mmtok.llm.streams import MediaStream
from mmtok.media.image import to_model
from mmtok.modalities import named
from mmtok.tokenizer import Tokenizer
from mmtok.tokens_file import SUFFIX, TokenFile

MediaSource = str | Path | torch.Tensor | TokenFile


@dataclass(frozen=True)
class MediaPart:
    """One media item of a sequence. `source` is a file path, a `.mmtok` token file (path or
    `TokenFile`, codes used as they are after a fingerprint check) or a tensor (layouts
    below). `stream` picks the vocab stream by name when a vocab has several of a modality.

    A file is coded by its media type's `Modality.encode_file` (the codes `mmtok encode`
    and `mmtok pretokenize` give); a tensor by the tokenizer itself (`encode_tensor`)."""

    source: MediaSource
    stream: str | None = None
    modality: ClassVar[str]        # the media type, as `Modality.name`
    tensor_dims: ClassVar[int]     # dims of a tensor `source`

    @classmethod
    def of(cls, media_type: str) -> type[MediaPart]:
        """The part class of a media type: `Image` for "image", and so on."""
        for part_class in cls.__subclasses__():
            if part_class.modality == media_type:
                return part_class
        raise MmtokError(f"no sequence part for media type {media_type!r}; parts are Image, Audio and Video")

    def file_options(self) -> dict[str, Any]:
        """What the part asks of its file's encoder (`Modality.encode_file` keywords)."""
        return {}

    def encode_tensor(self, tok: Tokenizer, stream: MediaStream, x: torch.Tensor) -> torch.Tensor:
        """Codes of one item given as a tensor `x` in [-1,1] (layout in the class docstring)."""
        return tok.encode(x[None])[0]


@dataclass(frozen=True)
class Image(MediaPart):
    """Tensor: `[3,H,W]` uint8 in [0,255] or float in [-1,1]."""

    modality: ClassVar[str] = "image"
    tensor_dims: ClassVar[int] = 3


@dataclass(frozen=True)
class Audio(MediaPart):
    """Tensor: `[C,T]` float in [-1,1] at the tokenizer's sample rate and channel count."""

    modality: ClassVar[str] = "audio"
    tensor_dims: ClassVar[int] = 2

    def encode_tensor(self, tok: Tokenizer, stream: MediaStream, x: torch.Tensor) -> torch.Tensor:
        return tok.encode(x[None], num_quantizers=stream.options.levels)[0]


@dataclass(frozen=True)
class Video(MediaPart):
    """Tensor: `[3,T,H,W]` uint8 or float in [-1,1]. Files can be resampled on the way in."""

    fps: float | None = None
    short_side: int | None = None
    modality: ClassVar[str] = "video"
    tensor_dims: ClassVar[int] = 4

    def file_options(self) -> dict[str, Any]:
        return {"fps": self.fps, "short_side": self.short_side}

    def encode_tensor(self, tok: Tokenizer, stream: MediaStream, x: torch.Tensor) -> torch.Tensor:
        return tok.encode_windowed(x[None])[0]   # the same codes as `encode`, in bounded memory


Part = str | MediaPart


@dataclass
class Sequence:
    """Ids of one interleaved sequence and, per token, which stream it belongs to."""

    input_ids: torch.Tensor                   # [L] int64
    modality: torch.Tensor                    # [L] int8: 0 text, 1 + stream index
    names: tuple[str, ...]                    # modality value -> "text" or the stream name
    spans: list[tuple[str, int, int]] = field(default_factory=list)   # (stream, start, stop)

    def __len__(self) -> int:
        return self.input_ids.numel()


def media_codes(vocab, part: MediaPart) -> tuple[MediaStream, torch.Tensor]:
    """`(stream, codes)` of one media part (image `[h,w]`, audio `[K,t]`, video `[t,h,w]`).
    The stream may serve the part's media type as a second one (an Emu3 stream: images)."""
    stream = vocab.stream_for(part.stream or part.modality)
    if part.modality not in stream.media_types:
        raise MmtokError(f"{type(part).__name__}(...): stream '{stream.name}' holds {' and '.join(stream.media_types)}, not {part.modality}")
    tok = vocab.tokenizer(stream.name, part.modality)
    source = part.source
    if isinstance(source, (str, Path)) and Path(source).suffix == SUFFIX:
        source = TokenFile.load(source)
    if isinstance(source, TokenFile):
        source.check_tokenizer(tok, source.source or "token file")
        return stream, source.codes.long()
    if isinstance(source, torch.Tensor):
        return stream, _encode_tensor(tok, stream, part, source)
    modality = named(part.modality)
    coding = modality.coding_options(stream.options)   # audio: the stream's residual levels
    tokens = modality.encode_file(tok, Path(source), **part.file_options(), **coding)
    # .long(): video files keep their codes uint16, which has no min / max on CPU
    return stream, tokens.codes.long()


def _encode_tensor(tok: Tokenizer, stream: MediaStream, part: MediaPart, x: torch.Tensor) -> torch.Tensor:
    if x.ndim != part.tensor_dims:
        raise MmtokError(f"{part.modality} tensor must have {part.tensor_dims} dims, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = to_model(x)
    return part.encode_tensor(tok, stream, x)


def build(vocab, parts: list[Part], bos: bool = False, eos: bool = False) -> Sequence:
    """Interleaved `parts` (str for text, `Image` / `Audio` / `Video` for media) -> `Sequence`.

    Text is tokenized as given (no added spaces, no special tokens); `bos` / `eos` add the
    LLM tokenizer's own tokens at the ends.
    """
    names = ("text", *(s.name for s in vocab.streams))
    index = {s.name: i + 1 for i, s in enumerate(vocab.streams)}
    ids: list[torch.Tensor] = []
    kinds: list[int] = []
    spans: list[tuple[str, int, int]] = []
    length = 0

    def add(piece: torch.Tensor, kind: int) -> None:
        nonlocal length
        ids.append(piece)
        kinds.append(kind)
        length += piece.numel()

    text_tok = vocab.text_tokenizer if any(isinstance(p, str) for p in parts) or bos or eos else None
    if bos:
        add(torch.tensor([_special(text_tok, "bos")]), 0)
    for part in parts:
        if isinstance(part, str):
            add(text_ids(vocab, text_tok, part), 0)
        elif isinstance(part, MediaPart):
            stream, codes = media_codes(vocab, part)
            span = stream.span(codes, part.modality)
            spans.append((stream.name, length, length + span.numel()))
            add(span, index[stream.name])
        else:
            raise MmtokError(f"sequence parts are str, Image, Audio or Video; got {type(part).__name__}")
    if eos:
        add(torch.tensor([_special(text_tok, "eos")]), 0)
    input_ids = torch.cat(ids) if ids else torch.zeros(0, dtype=torch.long)
    modality = torch.cat([torch.full((p.numel(),), k, dtype=torch.int8) for p, k in zip(ids, kinds)]) if ids else torch.zeros(0, dtype=torch.int8)
    return Sequence(input_ids, modality, names, spans)


def text_ids(vocab, text_tok, text: str) -> torch.Tensor:
    """`[L]` int64 ids of plain `text`: every added token (ours and the LLM's special tokens)
    is split into ordinary text, so no string can inject a control or media id."""
    ids = torch.tensor(text_tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"], dtype=torch.long)
    control = set(text_tok.all_special_ids) - {text_tok.unk_token_id}   # unknown text may map to unk
    if ids.numel() and (int(ids.max()) >= vocab.text_vocab_size or control.intersection(ids.tolist())):
        raise MmtokError(
            "the LLM tokenizer turned plain text into a control or media id even with split_special_tokens; "
            "this tokenizer cannot be used safely, please report this"
        )
    return ids


def prompt(vocab, parts: list[Part], media: str | None = None, bos: bool = False) -> Sequence:
    """A generation prompt: `build(parts)` and, when `media` names a stream (or the only
    stream of a modality), that stream's start id at the end, so the model continues with a
    media span. The only way to open a span from text. `media` is read by
    `MediaVocab.span_type`: "image" on an Emu3-only vocab opens an image span, "emu3" a
    video span (the stream's modality), "emu3:image" an image span."""
    seq = build(vocab, parts, bos=bos)
    if media is None:
        return seq
    kind = vocab.span_type(media)
    start_id = kind.start_id
    index = 1 + [s.name for s in vocab.streams].index(kind.name)
    return Sequence(
        torch.cat([seq.input_ids, torch.tensor([start_id])]),
        torch.cat([seq.modality, torch.tensor([index], dtype=torch.int8)]),
        seq.names, seq.spans,   # spans lists complete spans only
    )


def left_padded(rows: list, pad_id: int) -> dict:
    """Prompts `[L_i]` -> `{"input_ids", "attention_mask"}` `[B,max L]`, padded on the left."""
    width = max(r.numel() for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - r.numel():] = r
        mask[i, width - r.numel():] = 1
    return {"input_ids": ids, "attention_mask": mask}


def pad_id_of(text_tok) -> int:
    """An id to pad prompts with (masked out): pad, else eos, else 0."""
    for token_id in (text_tok.pad_token_id, text_tok.eos_token_id, 0):
        if token_id is not None:
            return int(token_id)
    return 0


def _special(text_tok, which: str) -> int:
    token_id = getattr(text_tok, f"{which}_token_id", None)
    if token_id is None:
        raise MmtokError(f"the LLM tokenizer has no {which} token; build with {which}=False")
    return token_id
