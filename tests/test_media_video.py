"""Video files <-> tensors (`mmtok.media.video`): round trips through real MP4 files, frame-rate
conversion checked frame by frame, rotation, variable frame rate, webm / gif input, and
every kind of bad input giving MmtokError with the file's name.

Inputs are made here with PyAV directly (not with the module under test), small (48x32,
a few dozen frames) so the whole file runs in seconds. Most frames carry their index as the
position of a white bar, which survives compression, resizing and gif's 256 colours.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from mmtok.errors import MmtokError
from mmtok.media import video
from mmtok.media.video import VideoFrames, VideoWriter, read_video, video_info, write_video

H, W = 32, 48


def bar_frames(n: int, height: int = H, width: int = W) -> np.ndarray:
    """`[n,H,W,3]` uint8: dark background, white 2-pixel bar at column 2*i in frame i."""
    frames = np.full((n, height, width, 3), 40, dtype=np.uint8)
    for i in range(n):
        frames[i, :, 2 * i : 2 * i + 2] = 255
    return frames


def bar_index(frame: torch.Tensor) -> int:
    """Which `bar_frames` frame a decoded `[3,H,W]` frame is."""
    return int(frame.mean(dim=(0, 1)).argmax()) // 2


def colour_frames(n: int, height: int = H, width: int = W) -> torch.Tensor:
    """`[3,n,H,W]` float in [-1,1]: smooth colour waves drifting over time (what codecs like)."""
    t, y, x = torch.meshgrid(torch.arange(n).float(), torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([torch.sin(6 * x + 0.3 * t), torch.cos(5 * y - 0.2 * t), torch.sin(3 * (x + y) + 0.1 * t)]) * 0.8


def encode(path, frames: np.ndarray, codec: str = "libx264", rate=Fraction(30), pts=None, time_base=None,
           pix_fmt: str = "yuv420p", rotation: int | None = None, container_options=None, sample_aspect=None):
    """Write `[n,H,W,3]` uint8 frames with PyAV; `pts` (in `time_base`, default 1/rate) for irregular timing."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.codec_context.time_base = time_base or 1 / Fraction(rate)
        if codec == "libx264":
            stream.codec_context.options = {"crf": "16"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if sample_aspect is not None:
            stream.codec_context.sample_aspect_ratio = sample_aspect
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = (i if pts is None else pts[i]), stream.codec_context.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def raises_for(path, call=video_info, match: str = "") -> str:
    """Run `call(path)`, expect MmtokError naming `path` (and containing `match`); return the message."""
    with pytest.raises(MmtokError) as err:
        call(path)
    message = str(err.value)
    assert str(path) in message and match in message, message
    assert "\n" not in message
    return message


# --- writing and reading back -------------------------------------------------------------


@pytest.mark.parametrize("fps, rate", [(12.5, Fraction(25, 2)), (30000 / 1001, Fraction(30000, 1001)), (29.97, Fraction(30000, 1001))])
def test_roundtrip_keeps_size_rate_count_and_pixels(tmp_path, fps, rate):
    frames = colour_frames(10)
    path = write_video(tmp_path / "clip.mp4", frames, fps)
    info = video_info(path)
    assert (info.width, info.height, info.num_frames, info.rotation, info.codec) == (W, H, 10, 0, "h264")
    assert info.fps == float(rate) and not info.variable_frame_rate
    assert info.duration == pytest.approx(10 / rate)
    with av.open(str(path)) as container:  # what players see: H.264, yuv420p, the exact fraction
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt, stream.average_rate) == ("h264", "yuv420p", rate)
    back = read_video(path)
    assert back.shape == (3, 10, H, W) and back.dtype == torch.float32
    assert -1 <= back.min() and back.max() <= 1
    assert (back - frames).abs().mean() < 0.03  # ~2 levels of 255: crf 18 plus chroma subsampling
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temp file left


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path):
    frames = colour_frames(4, height=31, width=47)
    with VideoWriter(tmp_path / "odd.mp4", 8, width=47, height=31) as writer:
        writer.write(frames[:, :2])
        writer.write(frames[:, 2:])
    info = video_info(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.num_frames, info.fps) == (48, 32, 4, 8.0)
    back = read_video(tmp_path / "odd.mp4")
    assert (back[:, :, :31, :47] - frames).abs().mean() < 0.03
    assert (back[:, :, 31, :47] - frames[:, :, 30]).abs().mean() < 0.05  # padded row ~ the last row
    assert (back[:, :, :31, 47] - frames[:, :, :, 46]).abs().mean() < 0.05


def test_writer_checks_shape_and_rate(tmp_path):
    with pytest.raises(ValueError, match="expected frames"):
        with VideoWriter(tmp_path / "a.mp4", 8, width=W, height=H) as writer:
            writer.write(torch.zeros(3, 2, H + 2, W))
    raises_for(tmp_path / "b.mp4", lambda p: write_video(p, colour_frames(2), fps=0), match="frame rate")
    raises_for(tmp_path / "c.mkv", lambda p: write_video(p, colour_frames(2), fps=8), match=".mp4")
    assert not any(p.name.endswith((".mkv", "b.mp4")) for p in tmp_path.iterdir())


def test_failure_midway_leaves_no_file(tmp_path, monkeypatch):
    raises_for(tmp_path / "nan.mp4", lambda p: write_video(p, colour_frames(4) / 0, fps=8), match="NaN")
    converted = []

    def fail_on_the_30th_frame(rgb):  # e.g. the disk filling up after two blocks went out
        converted.append(1)
        if len(converted) == 30:
            raise MmtokError("disk full")
        return yuv(rgb)

    yuv = video._yuv
    monkeypatch.setattr(video, "_yuv", fail_on_the_30th_frame)
    with pytest.raises(MmtokError, match="disk full"):
        write_video(tmp_path / "out.mp4", colour_frames(40), fps=8)
    assert len(converted) == 30 and list(tmp_path.iterdir()) == []


# --- frame rate, size, timing ---------------------------------------------------------------


def test_fps_picks_the_frame_on_screen(tmp_path):
    path = encode(tmp_path / "bars.mp4", bar_frames(21), rate=30)
    assert [bar_index(f) for f in read_video(path).unbind(1)] == list(range(21))
    for fps, expected in [(10, list(range(0, 21, 3))), (15, list(range(0, 21, 2))), (60, [i // 2 for i in range(42)])]:
        frames = VideoFrames(path, fps=fps, block_frames=4)
        blocks = list(frames)
        assert all(b.shape[1] <= 4 for b in blocks)
        got = [bar_index(f) for f in torch.cat(blocks, dim=1).unbind(1)]
        assert got == expected and frames.num_frames == frames.frames_read == len(expected), fps
        assert frames.frames_decoded == 21


def test_short_side_resizes_keeping_aspect(tmp_path):
    path = encode(tmp_path / "bars.mp4", bar_frames(6), rate=30)
    for short_side, shape in [(16, (16, 24)), (20, (20, 30)), (64, (64, 96))]:  # down, rounded, up
        frames = VideoFrames(path, short_side=short_side)
        assert (frames.height, frames.width) == shape
        x = torch.cat(list(frames), dim=1)
        assert x.shape == (3, 6, *shape)
        # the bar is where it was, scaled
        assert [round(int(f.mean(dim=(0, 1)).argmax()) * W / shape[1] / 2) for f in x.unbind(1)] == list(range(6))


def test_variable_frame_rate_is_regularised(tmp_path):
    pts = [0, 1, 2, 4, 5, 9, 10, 11, 12, 15, 16, 17]  # in 1/30 s; ends at 18/30 = 0.6 s
    path = encode(tmp_path / "vfr.mp4", bar_frames(12), rate=30, pts=pts, time_base=Fraction(1, 30))
    info = video_info(path)
    assert info.variable_frame_rate and info.num_frames == 12
    assert info.fps == pytest.approx(20) and info.duration == pytest.approx(0.6)
    # each output time k/20 shows the latest frame that started at or before it
    expected = [max(i for i, p in enumerate(pts) if p / 30 <= k / 20 + 1e-9) for k in range(12)]
    assert expected == [0, 1, 2, 3, 4, 4, 5, 6, 8, 8, 9, 10]
    assert [bar_index(f) for f in read_video(path).unbind(1)] == expected
    assert not video_info(encode(tmp_path / "cfr.mp4", bar_frames(12), rate=30)).variable_frame_rate


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied(tmp_path, rotation):
    stored = np.full((4, H, W, 3), 40, dtype=np.uint8)
    stored[:, :8, :8] = 255  # white corner at the stored top-left
    stored[:, :8, 20:28, 0] = 255  # red patch at the top edge
    path = encode(tmp_path / "rot.mp4", stored, rotation=rotation)
    info = video_info(path)
    size = (H, W) if rotation in (90, 270) else (W, H)
    assert (info.rotation, (info.width, info.height)) == (rotation, size)
    back = read_video(path)
    # np.rot90 turns counter-clockwise, as FFmpeg's own autorotation does (checked with ffmpeg)
    expected = torch.from_numpy(np.rot90(stored[0], rotation // 90).copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert back.shape == (3, 4, size[1], size[0])
    assert (back[:, 0] - expected).abs().mean() < 0.03
    frames = VideoFrames(path, short_side=16)
    assert (frames.width, frames.height) == ((16, 24) if rotation in (90, 270) else (24, 16))
    assert next(iter(frames)).shape == (3, 4, frames.height, frames.width)


def test_non_square_pixels_are_made_square(tmp_path):
    path = encode(tmp_path / "sar.mp4", bar_frames(3), sample_aspect=Fraction(2, 1))
    info = video_info(path)
    assert (info.width, info.height) == (2 * W, H)
    assert [bar_index(f) for f in read_video(path, short_side=H).unbind(1)] == [0, 2, 4]  # bar twice as far


def test_webm_vp9(tmp_path):
    path = encode(tmp_path / "clip.webm", bar_frames(12), codec="libvpx-vp9", rate=10)
    info = video_info(path)
    assert (info.codec, info.num_frames, info.fps, info.width, info.height) == ("vp9", 12, 10.0, W, H)
    assert [bar_index(f) for f in read_video(path, fps=5).unbind(1)] == list(range(0, 12, 2))


def test_mkv_millisecond_timestamps_and_avi(tmp_path):
    # mkv rounds times to 1 ms: 29.97 fps frames land up to 0.5 ms off the grid, and must not
    # be mistaken for a variable rate or picked twice
    path = encode(tmp_path / "clip.mkv", bar_frames(21), rate=Fraction(30000, 1001))
    info = video_info(path)
    assert (info.num_frames, info.fps, info.variable_frame_rate) == (21, 30000 / 1001, False)
    assert [bar_index(f) for f in read_video(path).unbind(1)] == list(range(21))
    path = encode(tmp_path / "clip.avi", bar_frames(10), codec="mpeg4", rate=25)
    info = video_info(path)
    assert (info.num_frames, info.fps, info.codec) == (10, 25.0, "mpeg4")
    assert [bar_index(f) for f in read_video(path).unbind(1)] == list(range(10))


def test_gif(tmp_path):
    path = encode(tmp_path / "clip.gif", bar_frames(12), codec="gif", rate=10, pix_fmt="rgb8")
    info = video_info(path)
    assert (info.codec, info.num_frames, info.fps, info.duration, info.variable_frame_rate) == ("gif", 12, 10.0, 1.2, False)
    assert [bar_index(f) for f in read_video(path).unbind(1)] == list(range(12))
    # gif delays in 1/100 s: 10, 20, 10, 30, ... make a variable-rate gif
    pts = [0, 10, 30, 40, 70, 80]
    path = encode(tmp_path / "vfr.gif", bar_frames(6), codec="gif", rate=10, pix_fmt="rgb8", pts=pts, time_base=Fraction(1, 100))
    info = video_info(path)
    assert info.variable_frame_rate and info.num_frames == 6
    assert [bar_index(f) for f in read_video(path, fps=10).unbind(1)] == [0, 1, 1, 2, 3, 3, 3, 4, 5]


def test_one_frame_video(tmp_path):
    path = encode(tmp_path / "one.mp4", bar_frames(1), rate=25)
    info = video_info(path)
    assert (info.num_frames, info.fps) == (1, 25.0) and info.duration == pytest.approx(0.04)
    assert read_video(path).shape == (3, 1, H, W)
    assert read_video(path, fps=5).shape == (3, 1, H, W)


# --- bad input --------------------------------------------------------------------------------


def test_missing_and_not_a_video(tmp_path):
    raises_for(tmp_path / "missing.mp4", match="no such video file")
    random = tmp_path / "random.mp4"
    random.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    raises_for(random, match="not a readable video file")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    raises_for(empty, read_video)


def test_truncated_files(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (40, H, W, 3), dtype=np.uint8)  # big packets
    for name, options in [("moov_at_end.mp4", None), ("faststart.mp4", {"movflags": "+faststart"})]:
        data = encode(tmp_path / name, noise, container_options=options).read_bytes()
        cut = tmp_path / f"cut_{name}"
        cut.write_bytes(data[: len(data) // 2])
        raises_for(cut, read_video)
    data = encode(tmp_path / "clip.avi", noise, codec="mpeg4").read_bytes()  # AVI: a frame count in the header
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    raises_for(tmp_path / "cut.avi", read_video, match="truncated")


def test_corrupt_data_in_the_middle(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, (30, H, W, 3), dtype=np.uint8)
    data = bytearray(encode(tmp_path / "clip.mp4", noise, container_options={"movflags": "+faststart"}).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.mp4").write_bytes(bytes(data))
    raises_for(tmp_path / "corrupt.mp4", read_video)


def test_audio_only_file(tmp_path):
    path = tmp_path / "speech.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    raises_for(path, match="no video stream (audio-only file?)")


def test_zero_frames(tmp_path):
    for name, codec in [("empty.avi", "mpeg4"), ("empty.mkv", "libx264"), ("empty.mp4", "libx264")]:
        path = tmp_path / name
        with av.open(str(path), "w") as container:  # a header and an empty video track
            stream = container.add_stream(codec, rate=30)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            container.start_encoding()
        # avi keeps the empty track; mkv cannot be opened; mp4 drops the track
        raises_for(path, match={"empty.avi": "no frames", "empty.mkv": "not a readable", "empty.mp4": "no video stream"}[name])


def test_frame_size_limits(tmp_path, monkeypatch):
    path = encode(tmp_path / "clip.mp4", bar_frames(2))
    monkeypatch.setattr(video, "MAX_PIXELS", 20 * 30)
    message = raises_for(path, VideoFrames, match="--short-side 20")  # 20x30 is the largest that fits
    assert VideoFrames(path, short_side=20).width == 30
    monkeypatch.setattr(video, "MAX_SOURCE_PIXELS", W * H - 1)
    raises_for(path, match="downscale the file")
    assert "600-pixel limit" in message


def test_bad_options(tmp_path):
    path = encode(tmp_path / "clip.mp4", bar_frames(2))
    raises_for(path, lambda p: VideoFrames(p, fps=0), match="--fps")
    raises_for(path, lambda p: VideoFrames(p, short_side=0), match="--short-side")


def test_stopping_early_closes_the_file(tmp_path):
    path = encode(tmp_path / "clip.mp4", bar_frames(20))
    frames = VideoFrames(path, block_frames=2)
    for block in frames:
        assert block.shape[1] == 2
        break
    assert frames.frames_read == 2
    assert read_video(path).shape[1] == 20  # still readable, nothing left open or locked
