"""Reading the media of pre-tokenization items into tensors, in DataLoader worker processes.

Workers only decode files (PIL, soundfile + soxr, PyAV); the main process holds the
tokenizers and encodes. What a worker hands back is exactly what the per-file encoders
(`encode_image`, `encode_audio`, `encode_video`) would feed their tokenizer, block by block,
so the main process reproduces their codes bit for bit:

- image: `[3,H,W]` uint8 (`read_image`);
- audio: `[C,T]` float32 at the tokenizer's rate and channels plus the lengths of the
  `AudioBlocks` blocks it was read in (the streaming encoder sees the same pieces);
- video: `[3,T,H,W]` uint8 frames, read in `BLOCK_FRAMES` blocks by `VideoFrames` (uint8 is
  exact: `to_model` of it gives back the float frames, at a quarter of the size).

Media too long to hold whole (`MAX_AUDIO_SECONDS`, `MAX_VIDEO_BYTES`) comes back as
`data=None`: the main process then streams the file itself with bounded memory.
A file that cannot be read makes the whole item fail, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.llm.items import Item, MediaRef

MAX_AUDIO_SECONDS = 600.0          # 10 min of 48 kHz stereo float32 is 230 MB
MAX_VIDEO_BYTES = 512 * 2**20      # uint8 frames held whole above this are streamed instead


@dataclass
class DecodedMedia:
    ref: MediaRef
    data: torch.Tensor | None             # see module docstring; None: stream the file in the main process
    blocks: tuple[int, ...] = ()          # audio: samples per block as read


@dataclass
class DecodedItem:
    position: int                          # index in the rank's share
    item: Item
    parts: list[str | DecodedMedia]
    error: str | None = None


@dataclass(frozen=True)
class AudioFormat:
    sample_rate: int
    channels: int


class ItemReader(torch.utils.data.Dataset):
    """`reader[i]` -> `DecodedItem` of `items[i]` (the rank's share from `start` on).

    `audio` maps audio stream names to the rate / channels their tokenizer takes; no model
    is held, so forking workers is cheap and safe."""

    def __init__(self, items: list[Item], start: int, audio: dict[str, AudioFormat]):
        self.items, self.start, self.audio = items, start, audio

    def __len__(self) -> int:
        return len(self.items) - self.start

    def __getitem__(self, i: int) -> DecodedItem:
        position = self.start + i
        item = self.items[position]
        if item.error:
            return DecodedItem(position, item, [], item.error)
        try:
            parts = [p if isinstance(p, str) else self._read(p) for p in item.parts]
        except MmtokError as err:
            return DecodedItem(position, item, [], str(err))
        except Exception as err:  # a media library's own error type: still this item's failure, not the run's
            return DecodedItem(position, item, [], f"{type(err).__name__}: {err}".strip())
        return DecodedItem(position, item, parts)

    def _read(self, ref: MediaRef) -> DecodedMedia:
        from mmtok.files import require_regular_file

        require_regular_file(Path(ref.path))  # a FIFO would block the run forever
        if ref.modality == "image":
            from mmtok.media.image import read_image

            return DecodedMedia(ref, read_image(ref.path))
        if ref.modality == "audio":
            return self._read_audio(ref)
        return _read_video(ref)

    def _read_audio(self, ref: MediaRef) -> DecodedMedia:
        from mmtok.audio.files import CHUNK_SECONDS
        from mmtok.media.audio import AudioBlocks

        fmt = self.audio[ref.stream]
        blocks = AudioBlocks(ref.path, fmt.sample_rate, fmt.channels, block_seconds=CHUNK_SECONDS)
        if blocks.info.seconds > MAX_AUDIO_SECONDS:
            return DecodedMedia(ref, None)
        pieces = list(blocks)
        return DecodedMedia(ref, torch.cat(pieces, dim=-1), tuple(p.shape[-1] for p in pieces))


def _read_video(ref: MediaRef) -> DecodedMedia:
    from mmtok.media.image import from_model
    from mmtok.media.video import VideoFrames
    from mmtok.video.files import BLOCK_FRAMES

    frames = VideoFrames(ref.path, fps=ref.fps, short_side=ref.short_side, block_frames=BLOCK_FRAMES)
    if 3 * frames.num_frames * frames.height * frames.width > MAX_VIDEO_BYTES:
        return DecodedMedia(ref, None)
    video = torch.empty((3, frames.num_frames, frames.height, frames.width), dtype=torch.uint8)
    for block in frames:
        video[:, frames.frames_read - block.shape[1] : frames.frames_read] = from_model(block)
    return DecodedMedia(ref, video[:, : frames.frames_read])


def keep(sample: DecodedItem) -> DecodedItem:
    """DataLoader `collate_fn`: items are used one by one, as they come."""
    return sample
