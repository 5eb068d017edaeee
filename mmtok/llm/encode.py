"""Encoding read items in the main process: images batched by size, audio and video streamed.

`ItemEncoder.add(decoded)` returns a `Job` whose `codes` fill in as its media are encoded:
audio and video at once (`Modality.encode_held`, or `encode_file` for media too long to
hold), images (a `batched` media type) when their size group reaches `batch_size`, when
more than `max_waiting` images wait (the biggest group then goes, partial), or at `flush()`
(the end of a shard). Codes equal what the per-file encoders give for the same files (see
`mmtok.llm.item_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmtok.errors import MmtokError
from mmtok.image.files import TILE_ABOVE_PIXELS, encode_batch
from mmtok.llm.item_reader import DecodedItem, DecodedMedia, file_options
from mmtok.modalities import named

# Errors that make one item fail rather than the run (models raise these for odd input).
ITEM_ERRORS = (MmtokError, RuntimeError, ValueError)


@dataclass
class Job:
    decoded: DecodedItem
    codes: dict[int, torch.Tensor] = field(default_factory=dict)   # part index -> codes (CPU)
    error: str | None = None


@dataclass
class _Waiting:
    job: Job
    slot: int
    image: torch.Tensor        # [3,H,W] uint8


class ItemEncoder:
    """Turns `DecodedItem`s into codes with the vocab's tokenizers (already on their device)."""

    def __init__(self, vocab, batch_size: int, max_waiting: int | None = None):
        self.vocab, self.batch_size = vocab, batch_size
        # Bounds the memory of images waiting for a full batch when sizes vary a lot.
        self.max_waiting = max_waiting or 4 * batch_size
        self.groups: dict[tuple, list[_Waiting]] = {}
        self.waiting = 0

    def add(self, decoded: DecodedItem) -> Job:
        job = Job(decoded, error=decoded.error)
        if job.error:
            return job
        for slot, part in enumerate(decoded.parts):
            if not isinstance(part, DecodedMedia):
                continue
            try:
                if named(part.ref.modality).batched:
                    self._queue(job, slot, part)
                else:
                    job.codes[slot] = self._encode_one(part)
            except ITEM_ERRORS as err:
                job.error = _reason(err)
                break
        return job

    def flush(self) -> None:
        """Encode every waiting image (partial batches included)."""
        for key in list(self.groups):
            self._encode_group(self.groups.pop(key))
        self.waiting = 0

    # -- images --------------------------------------------------------------------------
    def _queue(self, job: Job, slot: int, part: DecodedMedia) -> None:
        ref, image = part.ref, part.held.data
        height, width = image.shape[-2:]
        self._check_grid(part)  # before spending compute on it
        # Large images take the tiled path one by one, as encode_image does.
        key = (ref.stream, height, width) if height * width <= TILE_ABOVE_PIXELS else (ref.stream, height, width, id(job), slot)
        group = self.groups.setdefault(key, [])
        group.append(_Waiting(job, slot, image))
        self.waiting += 1
        if len(group) >= self.batch_size:
            self._encode_group(self.groups.pop(key))
            self.waiting -= len(group)
        while self.waiting > self.max_waiting:  # the biggest group goes first: fullest batch, most memory freed
            key = max(self.groups, key=lambda k: len(self.groups[k]))
            self.waiting -= len(self.groups[key])
            self._encode_group(self.groups.pop(key))

    def _encode_group(self, group: list[_Waiting]) -> None:
        group = [w for w in group if w.job.error is None]
        if not group:
            return
        tok = self.vocab.tokenizer(group[0].job.decoded.parts[group[0].slot].ref.stream, "image")
        try:
            codes = encode_batch(tok, torch.stack([w.image for w in group]))
        except ITEM_ERRORS as err:
            if len(group) == 1:
                group[0].job.error = _reason(err)
            else:  # find the culprit: one by one
                for w in group:
                    self._encode_group([w])
            return
        for w, c in zip(group, codes):
            w.job.codes[w.slot] = c

    # -- audio and video: the media type's one streaming encoder, fed what the file encoder feeds it
    def _encode_one(self, part: DecodedMedia) -> torch.Tensor:
        ref = part.ref
        modality, tok = named(ref.modality), self.vocab.tokenizer(ref.stream, ref.modality)
        coding = modality.coding_options(self.vocab.stream(ref.stream).options)
        # int64 at the end: codebooks over 256 codes give uint16, which torch cannot take the
        # min / max of (the code range checks of `check_codes` and `MediaStream.span` need it).
        if part.held is None:  # too long to hold whole: stream the file
            return modality.encode_file(tok, ref.path, **file_options(ref), **coding).codes.long()
        self._check_grid(part)
        return modality.encode_held(tok, part.held, **coding).long()

    def _check_grid(self, part: DecodedMedia) -> None:
        """MmtokError (the span's own message) if the vocab cannot state the grid the held
        media will get in a header."""
        ref = part.ref
        grid = named(ref.modality).held_grid(self.vocab.tokenizer(ref.stream, ref.modality), part.held)
        stream = self.vocab.stream(ref.stream)
        if grid is not None and any(not 1 <= d <= stream.options.max_dim for d in grid):
            stream.span(torch.zeros(grid, dtype=torch.long), ref.modality)


def _reason(err: Exception) -> str:
    if isinstance(err, MmtokError):
        return str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
