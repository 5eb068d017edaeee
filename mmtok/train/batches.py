"""Step-indexed batches shared by every modality's training data.

Batch `s` on process `r` is a pure function of `(seed, s, r)`: which files, and a seed per
item for where its crop / segment falls. Resuming at step `s` therefore replays exactly the
batches an uninterrupted run would have seen, with no sampler state to save.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import torch
from torch.utils.data import Sampler

from mmtok.errors import MmtokError


def excluding(files: list[Path], exclude: tuple[str, ...], data: Path) -> list[Path]:
    """`files` minus those whose name matches an `exclude` glob (the held-out set)."""
    kept = [f for f in files if not any(fnmatch.fnmatch(f.name, pat) for pat in exclude)]
    if not kept:
        raise MmtokError(f"{data}: every file matches the recipe's exclude patterns; nothing left to train on")
    return kept


class StepBatches(Sampler):
    """Yields, for steps `start..steps-1`, a batch of `(file_index, crop_seed)` pairs."""

    def __init__(self, n_files: int, batch: int, seed: int, rank: int, start: int, steps: int):
        self.n, self.batch, self.seed, self.rank, self.start, self.steps = n_files, batch, seed, rank, start, steps

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def __iter__(self):
        for step in range(self.start, self.steps):
            g = torch.Generator().manual_seed(hash((self.seed, step, self.rank)) & 0x7FFF_FFFF_FFFF_FFFF)
            idx = torch.randint(0, self.n, (self.batch,), generator=g).tolist()
            seeds = torch.randint(0, 2**62, (self.batch,), generator=g).tolist()
            yield list(zip(idx, seeds))
