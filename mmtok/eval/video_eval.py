"""`mmtok eval` on video: measure (`video_measure`) each tokenizer on each clip, and H.264 at the
bits each tokenizer spends there and along a CRF sweep; report (`video_report`) the sections
and pictures, and every number in `report.results["video"]`.

    evaluate_videos({"f8t4": tok}, files, report, EvalOptions(baselines=("h264",)))
"""

from __future__ import annotations

from pathlib import Path

from mmtok.errors import MmtokError
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report
from mmtok.eval.video_clips import MAX_FRAMES, MAX_PIXELS
from mmtok.eval.video_coding import PerFrame
from mmtok.eval.video_measure import measure
from mmtok.eval.video_report import write_video_report
from mmtok.image.base import ImageTokenizer
from mmtok.video.base import VideoTokenizer


def evaluate_videos(
    tokenizers: dict[str, VideoTokenizer | ImageTokenizer], files: list[Path], report: Report, options: EvalOptions,
    max_frames: int = MAX_FRAMES, max_pixels: int = MAX_PIXELS,
) -> None:
    """Measure `tokenizers` (and H.264 if "h264" is in `options.baselines`) on video `files`;
    add sections and figures to `report`, numbers to `report.results["video"]`. Image
    tokenizers among them code every frame alone (`video_coding.PerFrame`)."""
    if not files:
        raise MmtokError("--data: no video files to evaluate; pass video files or folders (mp4, mov, mkv, webm, ...)")
    coders = {name: tok if isinstance(tok, VideoTokenizer) else PerFrame(tok) for name, tok in tokenizers.items()}
    write_video_report(report, coders, measure(coders, files, options, max_frames, max_pixels))
