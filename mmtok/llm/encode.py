"""Encoding decoded items in the main process: images batched by size, audio and video streamed.

`ItemEncoder.add(decoded)` returns a `Job` whose `codes` fill in as its media are encoded:
audio and video at once, images when their size group reaches `batch_size`, when more
than `max_waiting` images wait (the biggest group then goes, partial), or at `flush()` (the
end of a shard). Codes equal what the per-file encoders give for the same files (see
`mmtok.llm.decode`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmtok.errors import MmtokError
from mmtok.llm.decode import DecodedItem, DecodedMedia

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
                if part.ref.modality == "image":
                    self._queue(job, slot, part)
                elif part.ref.modality == "audio":
                    job.codes[slot] = self._audio(part)
                else:
                    job.codes[slot] = self._video(part)
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
        from mmtok.image.files import TILE_ABOVE_PIXELS

        ref, image = part.ref, part.data
        height, width = image.shape[-2:]
        tok = self.vocab.tokenizer(ref.stream, "image")   # an Emu3 stream: a one-frame-video view
        _check_grid(self.vocab.stream(ref.stream), tok.grid_shape(height, width), "image")  # before spending compute on it
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
        from mmtok.image.files import encode_batch

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

    # -- audio and video: the streaming encoders, fed the pieces the file encoders feed ----
    def _audio(self, part: DecodedMedia) -> torch.Tensor:
        from mmtok.audio.files import CHUNK_SECONDS, encode_audio

        ref = part.ref
        tok, levels = self.vocab.tokenizer(ref.stream), self.vocab.stream(ref.stream).options.levels
        if part.data is None:  # too long to hold whole: stream the file
            return encode_audio(tok, ref.path, levels).codes
        encoder = tok.stream_encoder(levels, CHUNK_SECONDS)
        pieces = [encoder.push(block[None]) for block in torch.split(part.data, list(part.blocks), dim=-1)]
        return torch.cat([*pieces, encoder.flush()], dim=-1)[0].cpu()

    def _video(self, part: DecodedMedia) -> torch.Tensor:
        from mmtok.media.image import to_model
        from mmtok.tokens_file import smallest_dtype
        from mmtok.video.files import BLOCK_FRAMES, WINDOW, encode_video

        ref = part.ref
        tok = self.vocab.tokenizer(ref.stream)
        # int64 at the end: codebooks over 256 codes give uint16, which torch cannot take the
        # min / max of (the code range checks of `check_codes` and `MediaStream.span` need it).
        if part.data is None:
            return encode_video(tok, ref.path, ref.fps, ref.short_side).codes.long()
        _check_grid(self.vocab.stream(ref.stream), tok.grid_shape(*part.data.shape[1:]), "video")
        encoder = tok.stream_encoder(WINDOW)
        dtype = smallest_dtype(tok.codebook_size - 1)  # as encode_frames: the pieces of a long video stay small
        pieces = [encoder.push(to_model(block)[None])[0].to("cpu", dtype) for block in part.data.split(BLOCK_FRAMES, dim=1)]
        return torch.cat([*pieces, encoder.flush()[0].to("cpu", dtype)]).long()


def _check_grid(stream, grid: tuple[int, ...], media_type: str) -> None:
    """MmtokError (the span's own message) if the vocab cannot state this grid in a header."""
    if any(not 1 <= d <= stream.options.max_dim for d in grid):
        stream.span(torch.zeros(grid, dtype=torch.long), media_type)


def _reason(err: Exception) -> str:
    if isinstance(err, MmtokError):
        return str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__
