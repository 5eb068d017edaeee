"""H.264 at a chosen number of bits: the classic codec a video tokenizer is compared with.

    frames = yuv_frames(x)                          # x: uint8 [3,T,H,W] -> yuv420p frames
    match = match_bits(frames, fps, target_bits)    # CRF bisected to spend <= 1.05 x target
    recon = decode_h264(match.chosen.data, x.shape[1:])   # uint8 [3,T,H,W]
    sweep = [encode_h264(frames, fps, crf) for crf in (20, 30, 40)]

libx264 through PyAV (no ffmpeg program needed), yuv420p with BT.709 limited range as
mmtok's `VideoWriter` writes it, into an in-memory mp4. **Bits counted**: the sum of the
packet sizes, i.e. every coded frame; not the mp4 boxes around them nor the stream header
(SPS/PPS, a few dozen bytes, recorded as `header_bytes`). Decoding goes through mmtok's own
video reader, as `mmtok compare` reads a file, so the numbers are the ones a user reproduces.

Encodes are reproducible: x264's AVX-512 code reads memory it has not initialised (the same
frames then encode ~1 % larger or smaller from one process to the next), so it runs with the
CPU capabilities x264 detects, minus AVX-512 (`x264_cpu`); the output equals what its AVX2
code makes.
"""

from __future__ import annotations

import functools
import io
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.logging
import numpy as np
import torch

from mmtok.errors import MmtokError
from mmtok.eval.video_clips import read_clip
from mmtok.media.video import _yuv, frame_rate  # _yuv: the RGB -> yuv420p conversion VideoWriter uses

PRESET = "medium"
TOLERANCE = 0.05   # the baseline may spend at most this fraction more bits than the target
ITERATIONS = 12    # CRF trials per bisection
MAX_CRF = 51.0     # x264's coarsest quantiser: the fewest bits H.264 can spend


@dataclass(frozen=True)
class H264Encoding:
    """One libx264 encode: `crf`, `payload_bytes` (sum of packet sizes), `header_bytes`
    (SPS/PPS extradata), `data` (the whole mp4 file)."""

    crf: float
    payload_bytes: int
    header_bytes: int
    data: bytes = field(repr=False)

    @property
    def bits(self) -> int:
        return 8 * self.payload_bytes


@dataclass(frozen=True)
class H264Match:
    """Result of `match_bits`: the `chosen` encode, every `trials` (crf, payload bytes), and
    whether the target was `reached` (False: even CRF 51 spends more; `chosen` is CRF 51)."""

    chosen: H264Encoding
    target_bits: float
    trials: list[tuple[float, int]]
    reached: bool
    preset: str

    def facts(self) -> dict:
        """JSON-able summary (no mp4 bytes)."""
        c = self.chosen
        return {
            "crf": c.crf, "payload_bytes": c.payload_bytes, "header_bytes": c.header_bytes, "file_bytes": len(c.data),
            "bits": c.bits, "target_bits": self.target_bits, "bits_over_target": c.bits / self.target_bits - 1,
            "reached_target": self.reached, "trials": [{"crf": crf, "payload_bytes": p} for crf, p in self.trials],
            "preset": self.preset,
        }


def yuv_frames(x: torch.Tensor) -> list[av.VideoFrame]:
    """uint8 `[3,T,H,W]` -> yuv420p frames, BT.709 limited range; an odd width / height is
    padded by repeating the last column / row (yuv420p needs even sizes)."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"expected a uint8 video [3,T,H,W], got {x.dtype} {tuple(x.shape)}")
    _, _, height, width = x.shape
    rgb = x.permute(1, 2, 3, 0).numpy()
    rgb = np.pad(rgb, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return [_yuv(np.ascontiguousarray(image)) for image in rgb]


def encode_h264(frames: list[av.VideoFrame], fps: float, crf: float, preset: str = PRESET, threads: int = 1) -> H264Encoding:
    """Encode `frames` at constant quality `crf` (a float, 0..51) into an in-memory mp4.

    x264's output depends on its thread count (frame threads change the lookahead), so pass
    the same `threads` to reproduce an encode byte for byte."""
    buffer = io.BytesIO()
    payload = 0
    rate = frame_rate(fps)
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        codec = stream.codec_context
        codec.time_base = 1 / rate
        codec.options = {"crf": f"{crf:.4f}", "preset": preset, "threads": str(threads)}
        if x264_cpu():
            codec.options = {**codec.options, "x264-params": f"asm={x264_cpu()}"}
        codec.colorspace = codec.color_primaries = codec.color_trc = 1  # BT.709, as the frames were converted
        codec.color_range = 1  # limited
        for index, frame in enumerate([*frames, None]):
            if frame is not None:
                frame.pts, frame.time_base = index, codec.time_base
            for packet in stream.encode(frame):
                payload += packet.size
                container.mux(packet)
        header = codec.extradata_size
    return H264Encoding(crf, payload, header, buffer.getvalue())


@functools.cache
def x264_cpu() -> str | None:
    """x264's own CPU detection without AVX-512, as its `asm` parameter ("MMX2,SSE2Fast,...,AVX2"),
    or None where there is nothing to drop (or x264 does not say): then x264 keeps its default.

    Read from the line x264 logs when it opens ("using cpu capabilities: ..."), so no
    capability is ever forced on a CPU that lacks it."""
    frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    level = av.logging.get_level()
    try:
        with av.logging.Capture(local=False) as logs:
            av.logging.set_level(av.logging.INFO)
            with av.open(io.BytesIO(), "w", format="mp4") as container:
                stream = container.add_stream("libx264", rate=25)
                stream.width = stream.height = 16
                stream.pix_fmt = "yuv420p"
                for packet in [*stream.encode(frame), *stream.encode(None)]:
                    container.mux(packet)
    finally:
        av.logging.set_level(level)
    found = next((m for *_, line in logs if (m := re.search(r"using cpu capabilities: (.+)", line))), None)
    if found is None:
        return None
    names = found.group(1).split()
    kept = [n for n in names if not n.upper().startswith("AVX512")]
    return ",".join(kept) if kept != names else None


def match_bits(
    frames: list[av.VideoFrame], fps: float, target_bits: float, preset: str = PRESET, threads: int = 1,
    iterations: int = ITERATIONS,
) -> H264Match:
    """H.264 at (close to) `target_bits`: bisect the CRF (bits fall as it rises) and keep the
    trial closest to the target among those spending at most `1 + TOLERANCE` times it; stop
    early within 1 % of the target."""
    if target_bits <= 0:
        raise ValueError(f"target_bits must be positive, got {target_bits}")
    limit = target_bits * (1 + TOLERANCE)
    trials: list[H264Encoding] = []

    def trial(crf: float) -> int:
        trials.append(encode_h264(frames, fps, crf, preset, threads))
        return trials[-1].bits

    low, high = 0.0, MAX_CRF
    reached = trial(high) <= limit  # the most H.264 can save
    if reached:
        for _ in range(max(iterations - 1, 0)):
            crf = (low + high) / 2
            bits = trial(crf)
            if abs(bits / target_bits - 1) < 0.01:
                break
            low, high = (crf, high) if bits > target_bits else (low, crf)
    fitting = [t for t in trials if t.bits <= limit]
    chosen = min(fitting, key=lambda t: abs(t.bits - target_bits)) if fitting else trials[0]
    return H264Match(chosen, target_bits, [(t.crf, t.payload_bytes) for t in trials], reached, preset)


def decode_h264(data: bytes, size: tuple[int, int, int]) -> torch.Tensor:
    """An mp4 from `encode_h264` -> uint8 `[3,T,H,W]`, read by mmtok's video reader and
    cropped to `size = (T, H, W)` (yuv420p made odd sizes one pixel larger)."""
    frames, height, width = size
    with tempfile.TemporaryDirectory(prefix="mmtok-h264-") as tmp:
        path = Path(tmp) / "h264.mp4"
        path.write_bytes(data)
        decoded = read_clip(path)
    if decoded.shape[1] != frames:
        raise MmtokError(f"H.264 round trip gave {decoded.shape[1]} frames for {frames}; the baseline is broken")
    return decoded[:, :, :height, :width].contiguous()
