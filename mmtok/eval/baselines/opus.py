"""Opus (libopus through PyAV's FFmpeg, in memory: no ffmpeg program, no files), the classic
audio codec tokenizers are compared with at the same bit rate.

    out = opus_roundtrip(x, rate=24000, kbps=6.0)   # x [C,T] float32 in [-1,1]
    out.audio        # [C,T] decoded, sample-aligned with x, at `rate`, in [-1,1]
    out.kbps_spent   # packet payload bits / duration of x

Choices, and why:
- Hard CBR (`vbr off`), 20 ms frames: every packet has the same size, so the rate is fixed in
  advance, as a tokenizer's is. libopus rounds its packet size *up* to whole bytes (3 kbps at
  20 ms would be 7.5 -> 8 bytes = 3.2 kbps), so we ask for the whole-byte rate at or below the
  target (7 bytes = 2.8 kbps). Below `MIN_KBPS` (2-byte packets, 0.8 kbps) a packet would be
  its 1-byte header alone and decode to silence: evaluators do not run Opus there. What
  counts is measured after the fact from the packets.
- Bits counted: packet payload (the Opus TOC byte included), no container. An Ogg `.opus`
  file adds its page headers on top (about 0.75 kbps at 20 ms frames); token counts carry
  no container either.
- `application`: "audio" (libopus's general-purpose mode; it still picks its speech coder,
  SILK, by itself at low rates). "voip" differs by under 0.02 in mel distance on our speech.
- Sample rates: libopus codes at 48 / 24 / 16 / 12 / 8 kHz. Another rate is resampled (soxr,
  high quality) to the next Opus rate above it, at most 48 kHz. FFmpeg's libopus decoder always
  outputs 48 kHz, resampled (soxr) back to `rate`.
- Alignment: given the stream header (extradata), the decoder drops the encoder's look-ahead
  (the header's pre-skip); soxr is linear-phase with its delay removed; the padding of the last
  frame is cropped. The output lines up with the input sample for sample (`opus_alignment`
  measures it; the tests check it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
import torch

from mmtok.errors import MmtokError
from mmtok.eval.audio_metrics import best_lag, shifted
from mmtok.metrics import si_sdr

OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
DECODER_RATE = 48000          # FFmpeg's libopus decoder always outputs 48 kHz
FRAME_MS = 20.0
MIN_BITRATE = 500             # libopus refuses less (bit/s)
MIN_KBPS = 2 * 8 / FRAME_MS   # 2-byte packets: below, a packet is its 1-byte header alone and decodes to silence
APPLICATION = "audio"
ALIGN_KBPS = 64.0             # transparent enough that a one-sample offset shows in SI-SDR
ALIGN_MAX_LAG_MS = 50.0


@dataclass
class OpusResult:
    """`audio [C,T]` at the caller's rate; `payload_bytes` summed over `packets`;
    `bitrate_set` the bit/s libopus was given; `codec_rate` the rate Opus coded at."""

    audio: torch.Tensor
    payload_bytes: int
    packets: int
    seconds: float
    bitrate_set: int
    codec_rate: int

    @property
    def kbps_spent(self) -> float:
        return self.payload_bytes * 8 / self.seconds / 1000


def check_opus() -> None:
    """MmtokError unless PyAV's FFmpeg has the libopus encoder and decoder."""
    try:
        import av
    except ImportError:
        raise MmtokError("the opus baseline needs PyAV (pip install av); or pass --no-baselines") from None
    if "libopus" not in av.codecs_available:
        raise MmtokError("this PyAV's FFmpeg has no libopus codec; install PyAV's wheels (they bundle it) or pass --no-baselines")


def opus_rate(rate: int) -> int:
    """The rate Opus codes a `rate` Hz signal at: `rate` itself if Opus has it, else the next above (48 kHz at most)."""
    return next((r for r in OPUS_RATES if r >= rate), OPUS_RATES[-1])


def cbr_bitrate(kbps: float, frame_ms: float = FRAME_MS) -> int:
    """The bit/s to give libopus so that its CBR packets (whole bytes) do not exceed `kbps`."""
    frame_bytes = max(1, math.floor(kbps * 1000 * frame_ms / 1000 / 8 + 1e-9))
    return max(MIN_BITRATE, round(frame_bytes * 8 * 1000 / frame_ms))


def opus_roundtrip(
    x: torch.Tensor, rate: int, kbps: float, application: str = APPLICATION, frame_ms: float = FRAME_MS, vbr: str = "off",
) -> OpusResult:
    """Encode `x [C,T]` (float in [-1,1], C = 1 or 2, at `rate` Hz) with libopus at `kbps`
    (see `cbr_bitrate`; `vbr` "off" = hard CBR, "constrained" or "on"), decode, and return the
    decoded audio `[C,T]` at `rate`, aligned with `x`, and the bits spent."""
    import av

    channels, length = x.shape
    layout = {1: "mono", 2: "stereo"}[channels]
    codec_rate = opus_rate(rate)
    pcm = x.detach().cpu().float().numpy()
    if codec_rate != rate:
        pcm = soxr.resample(pcm.T, rate, codec_rate, quality="HQ").T
    pcm = np.ascontiguousarray(pcm, dtype=np.float32)

    bitrate = cbr_bitrate(kbps, frame_ms) if vbr == "off" else max(MIN_BITRATE, round(kbps * 1000))
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = codec_rate, layout, "flt", bitrate
    encoder.options = {"application": application, "vbr": vbr, "frame_duration": f"{frame_ms:g}"}
    encoder.open()
    packets = []
    step = encoder.frame_size
    for start in range(0, pcm.shape[-1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, start : start + step].T.reshape(1, -1)), format="flt",
                                           layout=layout)
        frame.sample_rate, frame.pts = codec_rate, start
        packets += encoder.encode(frame)
    packets += encoder.encode(None)

    decoder = av.CodecContext.create("libopus", "r")
    decoder.extradata = encoder.extradata   # the OpusHead: pre-skip, so the decoder drops the look-ahead
    decoder.options = {"request_sample_fmt": "flt"}
    resampler = None if rate == DECODER_RATE else soxr.ResampleStream(DECODER_RATE, rate, channels, dtype="float32", quality="HQ")
    pieces = []
    for packet in [*packets, None]:
        for frame in decoder.decode(packet):
            # packed `flt` is [1, n*C], interleaved
            data = frame.to_ndarray().reshape(-1, channels)
            pieces.append(data if resampler is None else resampler.resample_chunk(data))
    if resampler is not None:
        pieces.append(resampler.resample_chunk(np.zeros((0, channels), np.float32), last=True))
    y = torch.from_numpy(np.concatenate(pieces)[:length].T.copy())
    y = torch.nn.functional.pad(y, (0, length - y.shape[-1])).clamp(-1, 1)
    return OpusResult(y, sum(p.size for p in packets), len(packets), length / rate, bitrate, codec_rate)


def opus_alignment(x: torch.Tensor, rate: int, name: str = "") -> dict:
    """Is Opus's output sample-aligned with its input? At `ALIGN_KBPS` (CELT, which keeps the
    waveform) SI-SDR is high at lag 0 and drops sharply one sample away, so an offset cannot
    hide. Returns the best cross-correlation lag and SI-SDR (dB) at lags -2..+2."""
    y = opus_roundtrip(x, rate, ALIGN_KBPS).audio
    max_lag = round(ALIGN_MAX_LAG_MS * rate / 1000)
    check = {"file": name, "kbps": ALIGN_KBPS, "samples": x.shape[-1], "best_lag": best_lag(y, x, max_lag), "searched_lag": max_lag}
    for lag in (-2, -1, 0, 1, 2):
        check[f"si_sdr_lag{lag:+d}"] = float(si_sdr(shifted(y, lag)[None], x[None])[0])
    return check
