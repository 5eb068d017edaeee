"""Video files <-> token files, in temporal windows so video length does not matter.

    written = encode_video_files(tok, ["clips/"], Path("tokens/"), fps=12, short_side=256)
    decode_video_files(tok, ["tokens/"], Path("recon/"))

Encoding reads blocks of frames (optionally resampled to `fps` and resized to `short_side`
on the way in, see `mmtok.media.video.VideoFrames`) into a `StreamingVideoEncoder`;
decoding feeds a `StreamingVideoDecoder` into a `VideoWriter` (inside `atomic_write`): an
H.264 yuv420p mp4 at the recorded fps, cropped to the recorded frame count and size. Peak
memory is one window of frames plus the model's activations for it, not the video.

The token file's `original` records `fps`, `num_frames`, `height`, `width` (what was
encoded, after the options) and the source's `source_fps`, `source_height`,
`source_width`, `rotation`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from mmtok.errors import MmtokError
from mmtok.files import Progress, Transaction, atomic_write, collect, output_paths, start_progress
from mmtok.media.video import BLOCK_FRAMES, VIDEO_SUFFIXES, WRITE_SUFFIXES, VideoFrames, VideoWriter, check_write_suffix
from mmtok.tokens_file import SUFFIX, TokenFile, smallest_dtype
from mmtok.video.base import VideoTokenizer

WINDOW = 4   # latent frames per window (16 frames for a temporal factor of 4); files are read BLOCK_FRAMES at a time


def encode_video(
    tok: VideoTokenizer, path: str | Path, fps: float | None = None, short_side: int | None = None,
    window: int = WINDOW, on_progress: Callable[[int], None] | None = None,
) -> TokenFile:
    """Encode one video file to a `TokenFile` (codes `[t,h,w]`); `on_progress(frames)` is
    called after each block with the number of frames it held."""
    frames = VideoFrames(path, fps=fps, short_side=short_side, block_frames=BLOCK_FRAMES)
    return encode_frames(tok, frames, window, on_progress)


def encode_frames(
    tok: VideoTokenizer, frames: VideoFrames, window: int = WINDOW, on_progress: Callable[[int], None] | None = None,
) -> TokenFile:
    """`encode_video` for a file already opened (and checked) as `VideoFrames`."""
    codes = encode_blocks(tok, frames, window, on_progress)
    info = frames.info
    original = {
        "fps": frames.fps, "num_frames": frames.frames_read, "height": frames.height, "width": frames.width,
        "source_fps": info.fps, "source_height": info.height, "source_width": info.width, "rotation": info.rotation,
    }
    return TokenFile.from_codes(tok, codes, original, frames.path.name)


def encode_blocks(
    tok: VideoTokenizer, blocks: Iterable[torch.Tensor], window: int = WINDOW, on_progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Codes `[t,h,w]` (CPU, the smallest unsigned dtype that holds them) of frames given as
    blocks `[3,n,H,W]` in [-1,1], in order: the one streaming encoder every video goes through."""
    stream = tok.stream_encoder(window)
    dtype = smallest_dtype(tok.codebook_size - 1)  # int64 codes of an hour of 720p would be GBs
    parts = []
    for block in blocks:
        parts.append(stream.push(block[None])[0].to("cpu", dtype))
        if on_progress:
            on_progress(block.shape[1])
    parts.append(stream.flush()[0].to("cpu", dtype))
    return torch.cat(parts)


def decode_video(
    tok: VideoTokenizer, tf: TokenFile, out: Path, source: str = "codes", window: int = WINDOW,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Decode a `TokenFile` to an mp4 at its recorded fps, frame count and size, atomically;
    `on_progress(frames)` is called with the frames each window adds."""
    out = Path(out)
    fps, num_frames, height, width = _original(tf, source)
    check_write_suffix(out)

    def write(tmp: Path) -> None:
        decoder = tok.stream_decoder(window)
        written = 0
        with VideoWriter(tmp, fps, width, height) as writer:
            for i in range(0, tf.codes.shape[0], window):
                frames = decoder.push(tf.codes[None, i : i + window])[0]
                frames = frames[:, : num_frames - written, :height, :width].cpu()  # drop padding
                writer.write(frames)
                written += frames.shape[1]
                if on_progress:
                    on_progress(frames.shape[1])

    atomic_write(out, write)
    return out


def _original(tf: TokenFile, source: str) -> tuple[float, int, int, int]:
    o = tf.checked_original(source)
    return float(o["fps"]), o["num_frames"], o["height"], o["width"]


def check_video_codes(tok: VideoTokenizer, tf: TokenFile, source: str) -> None:
    """Refuse token files whose grid does not match the recorded video (before writing)."""
    tf.check_tokenizer(tok, source)
    _, num_frames, height, width = _original(tf, source)
    expected = tok.grid_shape(num_frames, height, width)
    if tuple(tf.codes.shape) != expected:
        raise MmtokError(
            f"{source}: codes have shape {tuple(tf.codes.shape)} but a {num_frames}x{height}x{width} video "
            f"needs {expected}; re-encode the video"
        )


def encode_video_files(
    tok: VideoTokenizer, inputs: Iterable[str | Path], out: Path, fps: float | None = None,
    short_side: int | None = None, progress: Progress | None = None, window: int = WINDOW,
) -> list[Path]:
    """Encode video files/folders to `.mmtok` files under `out` (or to `out` for one file).

    Every file is opened and checked (stream, size, frame count) before any output is
    written; if one turns out corrupt mid-way, everything this call wrote is removed.
    `progress` (e.g. a tqdm bar) gets its `total` set to the frames to encode.
    """
    files, roots = collect(inputs, VIDEO_SUFFIXES, "video")
    targets = output_paths(files, roots, out, SUFFIX, single_file_ok=out.suffix == SUFFIX)
    readers = [VideoFrames(f, fps=fps, short_side=short_side, block_frames=BLOCK_FRAMES) for f in files]
    update = start_progress(progress, sum(r.num_frames for r in readers))
    with Transaction() as tx:
        for frames, target in zip(readers, targets):
            tx.add(encode_frames(tok, frames, window, update).save(target))
    return targets


def decode_video_files(
    tok: VideoTokenizer, inputs: Iterable[str | Path], out: Path, progress: Progress | None = None, window: int = WINDOW,
) -> list[Path]:
    """Decode `.mmtok` files/folders to mp4 under `out` (or to `out` for one file). Every
    token file is checked before any video is written. `progress` counts frames."""
    if out.suffix.lower() in VIDEO_SUFFIXES:
        check_write_suffix(out)  # OUT.avi is a wish for an avi file, not a folder name
    files, roots = collect(inputs, {SUFFIX}, "token")
    targets = output_paths(files, roots, out, ".mp4", single_file_ok=out.suffix.lower() in WRITE_SUFFIXES)
    loaded = [TokenFile.load(f) for f in files]
    for tf, f in zip(loaded, files):
        check_video_codes(tok, tf, str(f))
    update = start_progress(progress, sum(_original(tf, str(f))[1] for tf, f in zip(loaded, files)))
    with Transaction() as tx:
        for tf, f, target in zip(loaded, files, targets):
            tx.add(decode_video(tok, tf, target, str(f), window, update))
    return targets
