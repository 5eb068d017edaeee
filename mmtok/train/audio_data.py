"""Training batches of random audio segments, reproducible by step (see `batches.StepBatches`).

Files are decoded once (resampled and mixed to the codec's rate and channels) and cached as
16-bit integers: the whole speech + music corpus is ~120 MB that way, and FLAC decoding and
resampling would otherwise dominate a CPU step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from mmtok.files import expand_inputs
from mmtok.media.audio import AUDIO_SUFFIXES, read_audio
from mmtok.train.batches import StepBatches, excluding


def training_files(data: Path, exclude: tuple[str, ...]) -> list[Path]:
    """Audio files under `data`, minus those whose name matches an `exclude` glob."""
    return excluding(expand_inputs([data], AUDIO_SUFFIXES, "audio"), exclude, data)


class RandomSegments(Dataset):
    """Item `(file_index, seed)` -> `[C, segment]` float in [-1,1] (zero-padded if the file is shorter)."""

    def __init__(self, files: list[Path], sample_rate: int, channels: int, segment: int):
        self.files, self.sample_rate, self.channels, self.segment = files, sample_rate, channels, segment
        self.cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.files)

    def audio(self, index: int) -> torch.Tensor:
        if index not in self.cache:
            x = read_audio(self.files[index], self.sample_rate, self.channels)
            self.cache[index] = (x * 32767).round().to(torch.int16)
        return self.cache[index]

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, seed = item
        audio = self.audio(index)
        g = torch.Generator().manual_seed(seed)
        n = audio.shape[-1]
        start = int(torch.randint(0, max(n - self.segment, 0) + 1, (1,), generator=g))
        piece = audio[:, start : start + self.segment].float() / 32767
        return torch.nn.functional.pad(piece, (0, self.segment - piece.shape[-1]))


def segment_loader(
    files: list[Path], sample_rate: int, channels: int, segment: int, batch: int, seed: int, rank: int,
    start: int, steps: int, workers: int,
) -> DataLoader:
    sampler = StepBatches(len(files), batch, seed, rank, start, steps)
    # Own generator: see image_data.crop_loader.
    return DataLoader(
        RandomSegments(files, sample_rate, channels, segment), batch_sampler=sampler, num_workers=workers,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
    )
