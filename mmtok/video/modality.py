"""The video media type: video files <-> token files, in windows (`mmtok.video.files`),
PSNR / SSIM per frame and temporal flicker.

    VIDEO.encode_files(tok, ["clips/"], Path("tokens/"), fps=12, short_side=256)
    VIDEO.decode_files(tok, ["tokens/"], Path("recon/"))

Token files record what was encoded (`fps`, `num_frames`, `height`, `width`) and the
source's (`source_fps`, `source_height`, `source_width`, `rotation`); codes `[t,h,w]`.
Files are read `BLOCK_FRAMES` frames at a time and coded `WINDOW` latent frames at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.eval.video_clips import read_clip
from mmtok.eval.video_eval import evaluate_videos
from mmtok.eval.video_metrics import clip_scores
from mmtok.files import Progress
from mmtok.layout import VideoLayout
from mmtok.media.image import from_model, to_model
from mmtok.media.modality import Held, Modality
from mmtok.media.video import VIDEO_SUFFIXES, VideoFrames
from mmtok.tokens_file import TokenFile
from mmtok.video.base import VideoTokenizer
from mmtok.video.files import BLOCK_FRAMES, WINDOW, decode_video, decode_video_files, encode_blocks, encode_video, encode_video_files


class VideoModality(Modality):
    name = "video"
    suffixes = frozenset(VIDEO_SUFFIXES)
    formats = ("mp4",)
    encode_options = frozenset({"fps", "short_side"})
    progress_unit = "frame"
    baselines = ("h264",)
    also_evaluates = frozenset({"image"})   # image tokenizers frame by frame (`mmtok.eval.video_coding.PerFrame`)
    window, block_frames = WINDOW, BLOCK_FRAMES
    max_held_bytes = 512 * 2**20   # larger videos are streamed, not held whole as uint8 frames

    def encode_file(
        self, tok: VideoTokenizer, path: str | Path, fps: float | None = None, short_side: int | None = None,
    ) -> TokenFile:
        return encode_video(tok, path, fps, short_side)

    def encode_files(
        self, tok: VideoTokenizer, inputs: Iterable[str | Path], out: Path, progress: Progress | None = None,
        fps: float | None = None, short_side: int | None = None,
    ) -> list[Path]:
        """Resampled to `fps` and resized to `short_side` on the way in (default: as the file is)."""
        return encode_video_files(tok, inputs, out, fps, short_side, progress)

    def decode_files(
        self, tok: VideoTokenizer, inputs: Iterable[str | Path], out: Path, fmt: str | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        return decode_video_files(tok, inputs, out, progress)

    def hold(self, path: str | Path, fps: float | None = None, short_side: int | None = None) -> Held | None:
        """uint8 frames `[3,T,H,W]` as `encode_video` reads them (uint8 is exact: `to_model` of
        it gives back the float frames, at a quarter of the size)."""
        frames = VideoFrames(path, fps=fps, short_side=short_side, block_frames=self.block_frames)
        if 3 * frames.num_frames * frames.height * frames.width > self.max_held_bytes:
            return None
        video = torch.empty((3, frames.num_frames, frames.height, frames.width), dtype=torch.uint8)
        for block in frames:
            video[:, frames.frames_read - block.shape[1] : frames.frames_read] = from_model(block)
        return Held(video[:, : frames.frames_read])

    def encode_held(self, tok: VideoTokenizer, held: Held) -> torch.Tensor:
        blocks = (to_model(block) for block in held.data.split(self.block_frames, dim=1))
        return encode_blocks(tok, blocks, self.window)

    def held_grid(self, tok: VideoTokenizer, held: Held) -> tuple[int, ...]:
        return tok.grid_shape(*held.data.shape[1:])

    def stream_options(self, name: str, tok: VideoTokenizer, options):
        options = dataclasses.replace(options, levels=None)
        return options, {"row_separator": options.row_separator, "frame_separator": options.frame_separator}

    def implied_layout(self, codebook_sizes: tuple[int, ...], options) -> VideoLayout:
        return VideoLayout(codebook_sizes[0], options.row_separator, options.frame_separator)

    def write_codes(self, tok: VideoTokenizer, codes: torch.Tensor, path: Path, fps: float) -> bool:
        """Codes `[t,h,w]` -> an mp4 of every frame they decode to (`tok.frames_for(t)`) at `fps`."""
        t, h, w = codes.shape
        f = tok.spatial_downsample
        original = {"fps": fps, "num_frames": tok.frames_for(t), "height": h * f, "width": w * f}
        decode_video(tok, TokenFile.from_codes(tok, codes, original), path)
        return True

    def scores(self, original: Path, reconstruction: Path) -> dict[str, float]:
        x, y = read_clip(original), read_clip(reconstruction)
        # yuv420p stores odd sizes one pixel larger (media/video.py): compare the original's area.
        y = y[:, :, : x.shape[2], : x.shape[3]]
        if x.shape != y.shape:
            raise MmtokError(f"{reconstruction}: {y.shape[1]} frames of {tuple(y.shape[2:])} differ from {original} "
                             f"{x.shape[1]} of {tuple(x.shape[2:])}")
        s = clip_scores(x, y)
        return {"PSNR": s["psnr"], "SSIM": s["ssim"], "flicker": s["flicker"] or 0.0}

    def evaluate(self, tokenizers, files, report, options) -> None:
        evaluate_videos(tokenizers, files, report, options)


VIDEO = VideoModality()
