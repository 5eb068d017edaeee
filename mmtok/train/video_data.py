"""Training batches of random video clips, reproducible by step (see `batches.StepBatches`).

A clip is `clip_frames` consecutive frames (every `stride`-th frame, stride drawn from
1..`max_frame_stride` so slow camera moves also teach faster motion) at a random position,
cropped to `crop x crop` at a random place and flipped half of the time. Videos are decoded
once and cached as uint8 frames: decoding H.264 would otherwise dominate a CPU step.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from mmtok.files import expand_inputs
from mmtok.media.video import VIDEO_SUFFIXES, read_video
from mmtok.train.batches import StepBatches, excluding


def training_files(data: Path, exclude: tuple[str, ...]) -> list[Path]:
    """Video files under `data`, minus those whose name matches an `exclude` glob."""
    return excluding(expand_inputs([data], VIDEO_SUFFIXES, "video"), exclude, data)


class RandomClips(Dataset):
    """Item `(file_index, seed)` -> `[3, clip_frames, crop, crop]` float in [-1,1].

    Videos shorter than a clip repeat their last frame (as encoding pads); frames smaller
    than the crop are upscaled once when cached.
    """

    def __init__(self, files: list[Path], clip_frames: int, crop: int, max_frame_stride: int = 1):
        self.files, self.clip_frames, self.crop, self.max_stride = files, clip_frames, crop, max_frame_stride
        self.cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.files)

    def frames(self, index: int) -> torch.Tensor:
        """Video `index` as uint8 `[3,T,H,W]`."""
        if index not in self.cache:
            video = read_video(self.files[index])
            if min(video.shape[-2:]) < self.crop:
                scale = self.crop / min(video.shape[-2:])
                size = [max(self.crop, round(s * scale)) for s in video.shape[-2:]]
                video = F.interpolate(video.transpose(0, 1), size=size, mode="bicubic").transpose(0, 1)
            self.cache[index] = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return self.cache[index]

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        index, seed = item
        video = self.frames(index)
        g = torch.Generator().manual_seed(seed)
        _, t, h, w = video.shape
        stride = int(torch.randint(1, self.max_stride + 1, (1,), generator=g))
        span = (self.clip_frames - 1) * stride + 1
        if span > t:  # too short for this stride: fall back to consecutive frames
            stride, span = 1, self.clip_frames
        first = int(torch.randint(0, max(t - span, 0) + 1, (1,), generator=g))
        picks = torch.arange(first, first + span, stride).clamp(max=t - 1)
        top = int(torch.randint(0, h - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.crop + 1, (1,), generator=g))
        clip = video[:, picks, top : top + self.crop, left : left + self.crop]
        if torch.rand((), generator=g) < 0.5:
            clip = clip.flip(-1)
        return clip.float() / 127.5 - 1


def clip_loader(
    files: list[Path], clip_frames: int, crop: int, max_frame_stride: int, batch: int, seed: int, rank: int,
    start: int, steps: int, workers: int,
) -> DataLoader:
    sampler = StepBatches(len(files), batch, seed, rank, start, steps)
    # Own generator: see image_data.crop_loader.
    return DataLoader(
        RandomClips(files, clip_frames, crop, max_frame_stride), batch_sampler=sampler, num_workers=workers,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
    )
