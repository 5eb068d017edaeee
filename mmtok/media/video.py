"""Video files <-> tensors, read in blocks of frames (PyAV / FFmpeg for decoding and encoding).

Tensors are `[3,T,H,W]` float32 RGB in [-1,1] (as `media.image.to_model` maps 0..255).

Reading (`video_info`, `VideoFrames`, `read_video`) takes whatever FFmpeg decodes (mp4, mov,
mkv, webm, avi, gif: h264, hevc, vp9, av1, ...), the first video stream that is not cover art:
- frames come out as a player shows them: non-square pixels (sample aspect ratio) are
  resampled to square ones (width scaled), and the display matrix's rotation is applied.
  `VideoInfo.rotation` is counter-clockwise degrees, as FFmpeg (`av_display_rotation_get`,
  ffprobe's "rotation") and PyAV (`VideoFrame.rotation`, `set_display_rotation`) report it,
  read from the first decoded frame's display matrix; the frames then match FFmpeg's own
  autorotation. Angles are rounded to a multiple of 90; mirroring in the matrix is ignored.
- frame rate: output frames lie on the constant grid `t_k = k / fps` from the first frame,
  and each is the source frame on screen at `t_k` (the latest with presentation time
  <= `t_k`, give or take one timestamp tick of rounding). So a lower `fps` sub-samples
  (30 -> 10 takes every 3rd frame), a higher one repeats frames, and a variable-frame-rate
  stream is regularised to a constant rate: its average rate unless `fps` is given. Frames
  without a timestamp are placed at index / fps.
- `short_side`: frames are resized so the shorter side is exactly `short_side` pixels, up or
  down, and the other side by the same factor rounded to the nearest pixel. Resizing happens
  in swscale together with the YUV -> RGB conversion (bicubic, accurate rounding, full
  chroma interpolation), so no full-size RGB copy is made.
- memory: `VideoFrames` holds one block of frames (plus the decoder's own buffers) at a
  time; `read_video` is the convenience that holds all of them.
- bad input raises MmtokError with one line naming the file: missing, not a video, no video
  stream, no frames, a frame too large, a decoder error, corrupt packets, or fewer frames
  than promised: `video_info` demuxes every packet (cheap: no decoding) so its frame count
  is exact, and a header that promises more frames than the file holds (by over 1 %) means
  a truncated file. A decoder that yields under 99 % of the counted frames is an error too;
  a smaller shortfall is filled by repeating the last frame. Matroska / webm headers hold
  no frame count, so a file cut between two whole packets reads as a shorter video.
- size limits: `MAX_PIXELS` bounds the frames produced (after `short_side`), with an error
  that names the largest `--short-side` that fits; `MAX_SOURCE_PIXELS` bounds the frames a
  file may store, checked on the header before anything is decoded.

Writing (`VideoWriter`, `write_video`) makes MP4 / H.264 (libx264, `crf` quality) in yuv420p
with BT.709 colour tags, which any player opens, at a constant rate stored as a fraction:
12.5 -> 25/2, and NTSC rates given as decimals (23.976, 29.97, 59.94) snap to N*1000/1001.
Reading a written file back gives the same frame rate and frame count. yuv420p needs an even
width and height: an odd size is padded by repeating the last row / column, so the file is
one pixel larger on that side (crop on reading if the original size matters). Callers wrap
`VideoWriter` in `files.atomic_write` (as `write_video` does), so a failure leaves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.stream import Disposition
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from mmtok.errors import MmtokError, first_line
from mmtok.files import atomic_write

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif"}
WRITE_SUFFIXES = {".mp4"}
MAX_PIXELS = 4096 * 4096  # per output frame: 64 MB as float32 RGB, x16 per block
MAX_SOURCE_PIXELS = 8192 * 8192  # per stored frame: 8K video fits; beyond, decoding alone needs GBs
BLOCK_FRAMES = 16
MAX_FPS = 1000.0  # a higher rate only multiplies frames (1e9 fps would resample forever)

# Bicubic, plus exact rounding and full chroma interpolation in the YUV -> RGB step: 30 %
# lower round-trip error than swscale's default on colour (1.7 vs 2.5 levels of 255), for
# ~10 ms more per full-size 720p frame; little when downscaling, which most callers do.
_SCALE = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_TRUNCATED = 0.99  # fewer than this fraction of the promised frames: truncated
_VFR_SPREAD = 0.05  # frame durations differing by more than this (relative): variable rate
_NTSC_RATES = (24, 30, 48, 60, 120)  # written as N*1000/1001 when given as e.g. 29.97


@dataclass(frozen=True)
class VideoInfo:
    """What a file holds, before conversion."""

    path: Path
    width: int  # display width: square pixels, after rotation
    height: int  # display height
    fps: float  # average frame rate of the stream
    num_frames: int  # frames in the stream (counted from packets, exact)
    duration: float  # seconds, first frame's start to last frame's end
    rotation: int  # 0, 90, 180 or 270: counter-clockwise rotation applied when reading
    variable_frame_rate: bool  # frame durations differ by more than a few %
    codec: str


def video_info(path: str | Path) -> VideoInfo:
    """Facts of `path`, validated, without decoding more than the first frame.

    Demuxes every packet of the video stream (reads the file, decodes nothing) to count the
    frames and measure their timing. Raises MmtokError with a one-line reason.
    """
    path = Path(path)
    if not path.is_file():
        raise MmtokError(f"{path}: no such video file; check the path")
    with _open(path) as container:
        stream = _video_stream(container, path)
        _check_source_size(path, stream.codec_context.width, stream.codec_context.height)  # before decoding: header bombs
        try:
            scan = _scan(container, stream, path)
        except av.FFmpegError as err:
            raise MmtokError(f"{path}: cannot read the video stream ({_reason(err)}); the file is corrupt") from None
        codec = stream.codec_context.name
        average_rate, guessed_rate = stream.average_rate, stream.guessed_rate
        sample_aspect = stream.sample_aspect_ratio
        header_frames, stream_duration, time_base = stream.frames, stream.duration, stream.time_base
        container_duration = container.duration

    if scan.frames == 0:
        raise MmtokError(f"{path}: the video stream has no frames (zero length); nothing to encode")
    if header_frames > 0 and scan.packets < _TRUNCATED * header_frames:
        raise MmtokError(f"{path}: truncated: the header promises {header_frames} frames but only {scan.packets} are in the file; re-export the file")
    if scan.first is None:
        raise MmtokError(f"{path}: no frame of the video stream decodes; the file is corrupt")
    stored_w, stored_h, rotation = scan.first
    _check_source_size(path, stored_w, stored_h)

    rate = average_rate or guessed_rate
    duration = _duration(scan, time_base, stream_duration, container_duration, rate)
    measured = scan.frames / duration if duration > 0 else None
    # The header's rate is exact (30000/1001, not 29.97 from millisecond timestamps); the
    # measured one is right for variable-rate streams and gifs, whose header rate is a guess.
    fps = float(rate) if rate and (measured is None or abs(rate - measured) <= 0.02 * measured) else measured
    if not fps or not math.isfinite(fps):
        raise MmtokError(f"{path}: the video stream has no usable timing (no frame rate or duration); re-export the file")
    if scan.frames == 1 and duration <= 0:
        duration = 1 / fps

    display_w = stored_w
    if sample_aspect and sample_aspect > 0 and sample_aspect != 1:
        display_w = max(1, round(stored_w * sample_aspect))
    width, height = (stored_h, display_w) if rotation in (90, 270) else (display_w, stored_h)
    return VideoInfo(path, width, height, fps, scan.frames, duration, rotation, _variable_rate(scan.starts), codec)


class VideoFrames:
    """Iterate over `path` as `[3, n, height, width]` float32 tensors in [-1,1], n <= `block_frames`.

    `fps` (default: the source's average rate) and `short_side` (default: the display size)
    choose the output; see the module docstring for how frames are picked and resized.
    `num_frames` is known up front; `frames_read` counts the frames yielded so far and
    `frames_decoded` the source frames decoded.

        for block in VideoFrames("clip.mp4", fps=8, short_side=256):
            ...  # [3, <=16, 256, W]
    """

    def __init__(self, path: str | Path, fps: float | None = None, short_side: int | None = None, block_frames: int = BLOCK_FRAMES):
        self.path = Path(path)
        if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
            raise MmtokError(f"{self.path}: frame rate {fps} is not a number in (0, {MAX_FPS:g}]; pass e.g. --fps 8")
        if short_side is not None and short_side < 1:
            raise MmtokError(f"{self.path}: short side {short_side} is not a positive size; pass e.g. --short-side 256")
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        self.info = info = video_info(self.path)
        self.fps = float(fps) if fps is not None else info.fps
        self.width, self.height = output_size(info.width, info.height, short_side)
        if self.width * self.height > MAX_PIXELS:
            largest = _largest_short_side(info.width, info.height)
            raise MmtokError(f"{self.path}: {self.width}x{self.height} frames are over the {MAX_PIXELS}-pixel limit; "
                             f"pass --short-side {largest} or smaller")
        self.block_frames = block_frames
        # Every output time k / fps before the end of the last source frame (a hair of
        # tolerance so 20 frames at 30 fps give exactly 7 at 10 fps, not 8).
        self.num_frames = max(1, math.ceil(info.num_frames * self.fps / info.fps - 1e-6))
        self.frames_read = self.frames_decoded = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.frames_read = 0
        buffer = np.empty((self.block_frames, self.height, self.width, 3), dtype=np.uint8)
        filled = 0
        for rgb in self._output_frames():
            buffer[filled] = rgb
            filled += 1
            if filled == self.block_frames:
                self.frames_read += filled
                yield _to_tensor(buffer)
                filled = 0
        if filled:
            self.frames_read += filled
            yield _to_tensor(buffer[:filled])

    def _output_frames(self) -> Iterator[np.ndarray]:
        """`num_frames` RGB arrays, one per output time k / fps: the source frame on screen then."""
        path, info = self.path, self.info
        self.frames_decoded = 0
        shown = shown_rgb = None  # the latest source frame at or before the next output time, its RGB
        k = 0  # the next output frame
        with _open(path) as container:
            stream = _video_stream(container, path)
            stream.thread_type = "AUTO"  # frame + slice threads: decoding is the slow part
            # Timestamps are rounded to ticks of the time base (1 ms in mkv); allow one tick,
            # but well under a frame interval on either grid.
            tolerance = min(float(stream.time_base or 0) or 1e-6, 0.25 / info.fps, 0.25 / self.fps)
            start = previous = None
            for frame in _decoded_frames(container, stream, path):
                time = _frame_time(frame, self.frames_decoded, info.fps)
                self.frames_decoded += 1
                start = time if start is None else start
                previous = time = max(time - start, previous or 0.0)  # never backwards
                # Output times before this frame starts show the previous frame.
                while shown is not None and k < self.num_frames and k / self.fps + tolerance < time:
                    shown_rgb = self._to_rgb(shown) if shown_rgb is None else shown_rgb
                    yield shown_rgb
                    k += 1
                shown, shown_rgb = frame, None
        if self.frames_decoded < _TRUNCATED * info.num_frames:
            raise MmtokError(f"{path}: truncated or corrupt: {info.num_frames} frames are in the file but only "
                             f"{self.frames_decoded} decode; re-export the file")
        # The rest of the grid falls in the last frame's display time.
        for _ in range(k, self.num_frames):
            shown_rgb = self._to_rgb(shown) if shown_rgb is None else shown_rgb
            yield shown_rgb

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """One decoded frame -> `[height, width, 3]` uint8 RGB, resized and rotated for display."""
        turns = self.info.rotation // 90
        # swscale works on the stored orientation; rotating afterwards is a cheap copy.
        width, height = (self.height, self.width) if turns % 2 else (self.width, self.height)
        try:
            if _has_alpha(frame):  # gif / png / vp9-alpha: composite over white, as viewers do
                rgba = frame.to_ndarray(format="rgba", width=width, height=height, interpolation=_SCALE).astype(np.float32)
                alpha = rgba[..., 3:] / 255.0
                rgb = np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
            else:
                rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=_SCALE)
        except (av.FFmpegError, ValueError) as err:
            raise MmtokError(f"{self.path}: cannot convert frame {self.frames_decoded} ({_reason(err)}); the file is corrupt") from None
        return np.rot90(rgb, turns) if turns else rgb


def read_video(path: str | Path, fps: float | None = None, short_side: int | None = None) -> torch.Tensor:
    """Read the whole of `path` as `[3, T, H, W]` float32 in [-1,1] (see `VideoFrames`)."""
    frames = VideoFrames(path, fps=fps, short_side=short_side)
    video = torch.empty((3, frames.num_frames, frames.height, frames.width))  # filled in place: no second copy
    for block in frames:
        video[:, frames.frames_read - block.shape[1] : frames.frames_read] = block
    return video


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to exactly `short_side` (up or down), the
    other by the same factor, rounded to the nearest pixel; unchanged for None."""
    if short_side is None:
        return width, height
    if width <= height:
        return short_side, max(short_side, round(height * short_side / width))
    return max(short_side, round(width * short_side / height)), short_side


def _largest_short_side(width: int, height: int) -> int:
    """The largest `short_side` whose output frame fits in MAX_PIXELS."""
    side = math.isqrt(MAX_PIXELS * min(width, height) // max(width, height))
    while side > 1 and math.prod(output_size(width, height, side)) > MAX_PIXELS:
        side -= 1
    return side


def check_write_suffix(path: str | Path) -> None:
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise MmtokError(f"{path}: can only write {sorted(WRITE_SUFFIXES)} video; change the output suffix")


def frame_rate(fps: float) -> Fraction:
    """`fps` as the exact fraction stored in the file: 12.5 -> 25/2, 29.97 -> 30000/1001."""
    for base in _NTSC_RATES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 1e-4 * fps:  # 29.97 and 29.97002997 both mean NTSC
            return ntsc
    return max(Fraction(fps).limit_denominator(1001), Fraction(1, 1001))


class VideoWriter:
    """Write `[3, n, height, width]` float blocks in [-1,1] to `path` as MP4 / H.264, yuv420p.

        atomic_write(out, lambda tmp: ...)   # around it, for all-or-nothing output
        with VideoWriter(tmp, fps=8, width=W, height=H) as w:
            w.write(block)
    `crf` is x264's constant quality (0 lossless-ish .. 51 worst; 18 looks lossless). Odd
    sizes are padded to even by repeating the last row / column.
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int, crf: int = 18):
        self.path = Path(path)
        _check_writer_options(self.path, fps, crf)
        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self.rate = frame_rate(fps)
        self.width, self.height, self.crf = width, height, crf
        self.written = 0

    def __enter__(self) -> VideoWriter:
        try:
            self.container = av.open(str(self.path), "w", format="mp4")
        except (av.FFmpegError, OSError) as err:
            raise MmtokError(f"{self.path}: cannot create the video file ({_reason(err)}); check the folder") from None
        try:
            self.stream = stream = self.container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
            stream.pix_fmt = "yuv420p"
            codec = stream.codec_context
            codec.time_base = 1 / self.rate  # one tick per frame: pts = frame index
            codec.options = {"crf": str(self.crf)}
            # Tag what `_yuv` converts with, so players do not guess BT.601 vs BT.709 by size.
            codec.colorspace = codec.color_primaries = codec.color_trc = 1  # AVCOL_*_BT709
            codec.color_range = 1  # limited ("tv") range, the only one every player handles
        except BaseException:
            self.container.close()
            raise
        return self

    def write(self, frames: torch.Tensor) -> None:
        """Append `[3, n, height, width]` float frames in [-1,1] (clamped, rounded to uint8)."""
        if frames.ndim != 4 or frames.shape[0] != 3 or tuple(frames.shape[2:]) != (self.height, self.width):
            raise ValueError(f"expected frames [3,n,{self.height},{self.width}], got shape {tuple(frames.shape)}")
        for start in range(0, frames.shape[1], BLOCK_FRAMES):  # bounded uint8 copies
            self._encode(frames[:, start : start + BLOCK_FRAMES])

    def _encode(self, frames: torch.Tensor) -> None:
        frames = frames.detach().cpu().float()
        if not torch.isfinite(frames).all():
            raise MmtokError(f"{self.path}: frames {self.written}.. contain NaN or infinite values; nothing was written")
        rgb = frames.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()
        rgb = np.pad(rgb, ((0, 0), (0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        for image in rgb:
            frame = _yuv(np.ascontiguousarray(image))
            frame.pts, frame.duration, frame.time_base = self.written, 1, self.stream.codec_context.time_base
            self._mux(frame)
            self.written += 1

    def _mux(self, frame: av.VideoFrame | None) -> None:
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except av.FFmpegError as err:
            raise MmtokError(f"{self.path}: cannot encode video ({_reason(err)}); check the disk and the frame size") from None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.written == 0:
                    raise ValueError(f"{self.path}: no frames were written")
                self._mux(None)  # flush: x264 holds back a few frames for B-frames and lookahead
        finally:
            self.container.close()


def write_video(path: str | Path, frames: torch.Tensor, fps: float, crf: int = 18) -> Path:
    """Write `[3, T, H, W]` float in [-1,1] to `path` (MP4, H.264, yuv420p), atomically."""
    path = Path(path)
    check_write_suffix(path)
    if frames.ndim != 4 or frames.shape[0] != 3 or frames.shape[1] == 0:
        raise ValueError(f"expected frames [3,T,H,W] with T >= 1, got shape {tuple(frames.shape)}")
    # Checked here as well as in VideoWriter so that messages name `path`, not the temp file.
    _check_writer_options(path, fps, crf)
    if not torch.isfinite(frames).all():
        raise MmtokError(f"{path}: the frames contain NaN or infinite values; nothing was written")

    def write(tmp: Path) -> None:
        with VideoWriter(tmp, fps, width=frames.shape[3], height=frames.shape[2], crf=crf) as w:
            w.write(frames)

    atomic_write(path, write)
    return path


def _check_writer_options(path: Path, fps: float, crf: int) -> None:
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise MmtokError(f"{path}: frame rate {fps} is not a number in (0, {MAX_FPS:g}]; write videos at an ordinary rate, e.g. 24")
    if not 0 <= crf <= 51:
        raise MmtokError(f"{path}: crf {crf} is outside 0..51; pass e.g. --crf 18")


@dataclass
class _Scan:
    """One pass over a stream's packets."""

    packets: int = 0  # non-empty packets, edit-list discards included (what a header counts)
    frames: int = 0  # frames that will be shown: packets minus edit-list discards
    starts: list[int] | None = None  # presentation times of shown frames (stream ticks), sorted
    latest: int = 0  # the latest presentation time seen so far
    last_duration: int = 0  # duration of the frame shown last (0: unknown)
    first: tuple[int, int, int] | None = None  # first decoded frame: stored width, height, rotation


def _scan(container, stream, path: Path) -> _Scan:
    scan = _Scan(starts=[])
    for packet in container.demux(stream):
        if scan.first is None:  # decode only until the first frame: for its size and rotation
            frames = stream.decode(packet)
            if frames:
                frame = frames[0]
                scan.first = (frame.width, frame.height, round(frame.rotation / 90) % 4 * 90)
        if packet.size == 0:
            if packet.pts is not None or packet.dts is not None:
                scan.packets += 1  # a dropped frame (avi): in the header's count, never shown
            continue  # else the empty packet PyAV adds at the end to flush the decoder
        if packet.is_corrupt:
            raise MmtokError(f"{path}: corrupt or truncated data at frame {scan.packets}; re-export the file")
        scan.packets += 1
        if packet.is_discard:  # before an edit list's start: decoded for reference, never shown
            continue
        scan.frames += 1
        start = packet.pts if packet.pts is not None else packet.dts
        if start is not None:
            if not scan.starts or start >= scan.latest:
                scan.latest, scan.last_duration = start, packet.duration or 0
            scan.starts.append(start)
    scan.starts.sort()
    return scan


def _duration(scan: _Scan, time_base, stream_duration, container_duration, rate) -> float:
    """Seconds from the first frame's start to the last frame's end, best source first.

    The stream's own duration (mp4, mov, gif, avi) is exact and follows edit lists; only
    without it are packets used (mkv, webm), whose durations are presentation durations there
    (in mp4 they are decode-order deltas, wrong for the last frame shown once B-frames reorder).
    """
    if stream_duration and time_base:
        return float(stream_duration * time_base)
    starts = scan.starts
    if time_base and starts and len(starts) == scan.frames:
        typical = float(np.median(np.diff(starts))) if len(starts) > 1 else 0.0
        end = starts[-1] + (scan.last_duration or typical)  # unknown last duration: a typical one
        if end > starts[0]:
            return float((end - starts[0]) * time_base)
    if container_duration:
        return container_duration / av.time_base
    return scan.frames / float(rate) if rate else 0.0


def _variable_rate(starts: list[int]) -> bool:
    """Frame durations differ by more than `_VFR_SPREAD`, beyond one tick of timestamp rounding."""
    if len(starts) < 3:
        return False
    intervals = np.diff(starts)
    return float(intervals.max() - intervals.min()) > max(_VFR_SPREAD * float(np.median(intervals)), 1.0)


def _open(path: Path):
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as err:
        raise MmtokError(f"{path}: not a readable video file ({_reason(err)}); the file is corrupt, truncated or not a video") from None


def _video_stream(container, path: Path):
    """The first video stream that is not an attached picture (cover art)."""
    streams = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not streams:
        has = "only a cover image" if container.streams.video else "audio-only file?" if container.streams.audio else "the file has no streams"
        raise MmtokError(f"{path}: no video stream ({has}); pass a video file")
    if streams[0].codec_context is None:
        raise MmtokError(f"{path}: the video codec is not supported by this FFmpeg build; re-encode to H.264")
    return streams[0]


def _check_source_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_SOURCE_PIXELS:
        raise MmtokError(f"{path}: {width}x{height} frames are over the {MAX_SOURCE_PIXELS}-pixel limit for a stored frame; "
                         "downscale the file first (e.g. ffmpeg -i in.mp4 -vf scale=-2:2160 out.mp4)")


def _decoded_frames(container, stream, path: Path) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order; decoder and container errors become MmtokError."""
    index = 0
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                raise MmtokError(f"{path}: corrupt or truncated data near frame {index}; re-export the file")
            for frame in stream.decode(packet):
                if frame.is_corrupt:
                    raise MmtokError(f"{path}: frame {index} is corrupt; re-export the file")
                index += 1
                yield frame
    except av.FFmpegError as err:
        raise MmtokError(f"{path}: cannot decode frame {index} ({_reason(err)}); the file is corrupt or truncated") from None


def _frame_time(frame: av.VideoFrame, index: int, fps: float) -> float:
    """Presentation time in seconds (index / fps for frames without a timestamp)."""
    if frame.pts is None or frame.time_base is None:
        return index / fps
    return float(frame.pts * frame.time_base)


def _has_alpha(frame: av.VideoFrame) -> bool:
    return any(component.is_alpha for component in frame.format.components)


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """`[n,H,W,3]` uint8 -> contiguous `[3,n,H,W]` float32 in [-1,1] (one copy)."""
    x = torch.from_numpy(rgb).permute(3, 0, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    return x.div_(127.5).sub_(1.0)


def _yuv(rgb: np.ndarray) -> av.VideoFrame:
    """`[H,W,3]` uint8 -> a yuv420p frame, BT.709 limited range (matching the stream's tags)."""
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG, interpolation=_SCALE)


def _reason(err: Exception) -> str:
    """The gist of an exception, without FFmpeg's errno and repeated file name."""
    if isinstance(err, av.FFmpegError) and err.strerror:
        return err.strerror
    return first_line(err)
