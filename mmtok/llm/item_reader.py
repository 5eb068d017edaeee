"""Reading the media of pre-tokenization items into tensors, in DataLoader worker processes.

Workers only read files (PIL, soundfile + soxr, PyAV); the main process holds the
tokenizers and encodes (`mmtok.llm.encode`). Each file is read by its media type's
`Modality.hold`: exactly what the per-file encoder (`Modality.encode_file`) would feed its
tokenizer, block by block, so the main process reproduces its codes bit for bit. Media too
long to hold whole comes back as `held=None`: the main process then streams the file itself
with bounded memory. A file that cannot be read makes the whole item fail, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmtok.errors import MmtokError
from mmtok.files import require_regular_file
from mmtok.llm.items import Item, MediaRef
from mmtok.media.modality import Held
from mmtok.modalities import named


@dataclass
class DecodedMedia:
    ref: MediaRef
    held: Held | None                      # None: too big to hold, stream the file in the main process


@dataclass
class DecodedItem:
    position: int                          # index in the rank's share
    item: Item
    parts: list[str | DecodedMedia]
    error: str | None = None


def file_options(ref: MediaRef) -> dict[str, Any]:
    """The options the item gives its file (video: `fps`, `short_side`), as keywords."""
    return {k: v for k, v in (("fps", ref.fps), ("short_side", ref.short_side)) if v is not None}


class ItemReader(torch.utils.data.Dataset):
    """`reader[i]` -> `DecodedItem` of `items[i]` (the rank's share from `start` on).

    `readings` maps stream names to what their media type needs to know of the tokenizer
    (`Modality.reading`, e.g. audio rate and channels); no model is held, so forking workers
    is cheap and safe."""

    def __init__(self, items: list[Item], start: int, readings: dict[str, dict[str, Any]]):
        self.items, self.start, self.readings = items, start, readings

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
        require_regular_file(Path(ref.path))  # a FIFO would block the run forever
        reading = {**self.readings.get(ref.stream, {}), **file_options(ref)}
        return DecodedMedia(ref, named(ref.modality).hold(ref.path, **reading))


def keep(sample: DecodedItem) -> DecodedItem:
    """DataLoader `collate_fn`: items are used one by one, as they come."""
    return sample
