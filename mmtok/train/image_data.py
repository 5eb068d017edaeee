"""Training batches of random image crops, reproducible by step.

Batch `s` on process `r` is a pure function of `(seed, s, r)` (see `batches.StepBatches`):
which images, where the crops fall and whether they are flipped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from mmtok.files import expand_inputs
from mmtok.media.image import IMAGE_SUFFIXES, read_image, to_model
from mmtok.train.batches import StepBatches, excluding


def training_files(data: Path, exclude: tuple[str, ...]) -> list[Path]:
    """Image files under `data`, minus those whose name matches an `exclude` glob."""
    return excluding(expand_inputs([data], IMAGE_SUFFIXES, "image"), exclude, data)


class RandomCrops(Dataset):
    """Item `(file_index, seed)` -> `[3,crop,crop]` float in [-1,1].

    Decoded images are cached per worker up to `cache_bytes`: corpora of small images fit
    in memory and JPEG decoding would otherwise dominate a CPU step; beyond the budget,
    images are read from disk each time.
    """

    def __init__(self, files: list[Path], crop: int, cache_bytes: int = 2 * 2**30):
        self.files, self.crop = files, crop
        self.cache: dict[int, torch.Tensor] = {}
        self.cache_left = cache_bytes

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> torch.Tensor:
        if index not in self.cache:
            img = read_image(self.files[index])
            short = min(img.shape[-2:])
            if short < self.crop:  # upscale tiny images so a crop fits
                scale = self.crop / short
                size = [max(self.crop, round(s * scale)) for s in img.shape[-2:]]
                img = F.interpolate(img[None].float(), size=size, mode="bicubic").clamp(0, 255).round().to(torch.uint8)[0]
            if img.numel() > self.cache_left:
                return img
            self.cache[index] = img
            self.cache_left -= img.numel()
        return self.cache[index]

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, seed = item
        img = self.image(index)
        g = torch.Generator().manual_seed(seed)
        h, w = img.shape[-2:]
        top = int(torch.randint(0, h - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.crop + 1, (1,), generator=g))
        patch = img[:, top : top + self.crop, left : left + self.crop]
        if torch.rand((), generator=g) < 0.5:
            patch = patch.flip(-1)
        return to_model(patch)


def crop_loader(files: list[Path], crop: int, batch: int, seed: int, rank: int, start: int, steps: int, workers: int) -> DataLoader:
    sampler = StepBatches(len(files), batch, seed, rank, start, steps)
    # A generator of its own: otherwise starting the loader draws from the global torch RNG,
    # which a resumed run has just restored, and Gumbel noise / code restarts would diverge.
    return DataLoader(
        RandomCrops(files, crop), batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
