"""Audio files <-> tensors, whole or in blocks (soundfile for I/O, soxr for resampling).

Tensors are `[C,T]` float32 in [-1,1]. Reading converts to what a tokenizer takes:
- sample rate: resampled with soxr (high quality), from any rate in `MIN_RATE..MAX_RATE`;
- channels: to mono by averaging all channels; to stereo by duplicating mono (files with
  more than two channels cannot become stereo without a mixing convention: error);
- float files with samples beyond [-1,1] are clipped to it, with a warning (integer PCM
  cannot exceed it); NaN / infinite samples, empty files and unreadable files are errors;
- a file whose container promises more samples than decode is an error: WAV and OGG are
  checked from the container before reading (`audio_container`: libsndfile clamps their
  counts), FLAC and MP3 by comparing libsndfile's count with the samples that decode;
- libmpg123's own notes on stderr are silenced unless MMTOK_DEBUG is set.

`AudioBlocks` reads a file of any length in blocks with a streaming resampler, so an hour of
audio never sits in memory; `AudioWriter` writes blocks the same way. Callers wrap it in
`files.atomic_write` (as `write_audio` does), so a failed decode leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from mmtok.errors import MmtokError, first_line
from mmtok.files import atomic_write, require_regular_file
from mmtok.media.audio_container import check_container

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
WRITE_SUFFIXES = {".wav", ".flac"}
MIN_RATE, MAX_RATE = 4_000, 384_000
BLOCK_SECONDS = 10.0


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds before conversion."""

    sample_rate: int
    channels: int
    num_samples: int

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Header facts of `path`, validated; raises MmtokError with a one-line reason."""
    path = Path(path)
    require_regular_file(path)
    try:
        with quiet_native_stderr(path):
            info = sf.info(str(path))
    except Exception as err:
        raise MmtokError(f"{path}: not a readable audio file ({first_line(err)}); use wav, flac, ogg or mp3") from None
    if info.frames <= 0:
        raise MmtokError(f"{path}: the file has no samples (zero length); nothing to encode")
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise MmtokError(f"{path}: sample rate {info.samplerate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz; resample the file first")
    try:
        check_container(path, info.format, info.channels)
    except OSError as err:
        raise MmtokError(f"{path}: cannot read the file ({err.strerror}); check it") from None
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames))


def convert_channels(x: np.ndarray, channels: int, path: Path) -> np.ndarray:
    """`[n,C_in]` -> `[n,channels]` (mean to mono, duplicate mono to stereo)."""
    have = x.shape[1]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(axis=1, keepdims=True)
    if have == 1:
        return np.repeat(x, channels, axis=1)
    raise MmtokError(f"{path}: has {have} channels; this tokenizer takes {channels}: mix the file down first")


class AudioBlocks:
    """Iterate over `path` as `[channels, n]` float32 tensors at `sample_rate`, `block_seconds` at a time.

    After the loop, `samples_in` is the number of samples the file really held (a header
    can claim more) and `samples_out` the number of converted samples produced.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, block_seconds: float = BLOCK_SECONDS):
        self.path = Path(path)
        self.info = audio_info(self.path)
        self.sample_rate, self.channels, self.block_seconds = sample_rate, channels, block_seconds
        self.samples_in = self.samples_out = 0
        self.clipped = 0

    def __iter__(self):
        info, path = self.info, self.path
        block = max(1, round(self.block_seconds * info.sample_rate))
        resampler = None
        if info.sample_rate != self.sample_rate:
            resampler = soxr.ResampleStream(info.sample_rate, self.sample_rate, self.channels, dtype="float32", quality="HQ")
        read = 0
        try:
            with quiet_native_stderr(path), sf.SoundFile(str(path)) as f:
                while True:
                    data = f.read(block, dtype="float32", always_2d=True)
                    last = data.shape[0] < block
                    read += data.shape[0]
                    if data.shape[0]:
                        self._check_values(data)
                    data = convert_channels(data, self.channels, path)
                    if resampler is not None:
                        data = resampler.resample_chunk(np.ascontiguousarray(data), last=last)
                    if data.shape[0]:
                        self.samples_out += data.shape[0]
                        yield torch.from_numpy(np.ascontiguousarray(data.T))
                    if last:
                        break
        except MmtokError:
            raise
        except Exception as err:
            raise MmtokError(f"{path}: cannot decode audio after {read} samples ({first_line(err)}); the file is corrupt or truncated") from None
        if read == 0:
            raise MmtokError(f"{path}: the file has no samples (zero length); nothing to encode")
        if read < 0.99 * info.num_samples:  # mp3 headers estimate the length; allow 1 %
            raise MmtokError(f"{path}: truncated: the header promises {info.num_samples} samples but only {read} decode; re-export the file")
        self.samples_in = read
        if self.clipped:
            print(f"warning: {path}: {self.clipped} samples outside [-1, 1] were clipped", file=sys.stderr)

    def _check_values(self, data: np.ndarray) -> None:
        if not np.isfinite(data).all():
            raise MmtokError(f"{self.path}: contains NaN or infinite samples; repair or re-export the file")
        over = np.abs(data) > 1.0
        if over.any():
            self.clipped += int(over.sum())
            np.clip(data, -1.0, 1.0, out=data)


def read_audio(path: str | Path, sample_rate: int, channels: int) -> torch.Tensor:
    """Read the whole of `path` as `[channels, T]` float32 at `sample_rate`."""
    parts = list(AudioBlocks(path, sample_rate, channels, block_seconds=60.0))
    return torch.cat(parts, dim=-1)


def check_write_suffix(path: Path) -> None:
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise MmtokError(f"{path}: can only write {sorted(WRITE_SUFFIXES)} audio; change the output suffix")


class AudioWriter:
    """Write `[C,n]` blocks at `rate_in` to `path` at `rate_out` (wav or flac by suffix, 16-bit).

        atomic_write(out, lambda tmp: ...)   # around it, for all-or-nothing output
        with AudioWriter(tmp, 24000, 44100, channels=1, num_samples=N) as w:
            w.write(block)
    `num_samples` (at `rate_out`) pads or trims the end to restore an original length exactly.
    """

    def __init__(self, path: str | Path, rate_in: int, rate_out: int, channels: int, num_samples: int | None = None):
        self.path = Path(path)
        self.rate_in, self.rate_out, self.channels, self.num_samples = rate_in, rate_out, channels, num_samples
        self.written = 0

    def __enter__(self) -> AudioWriter:
        self.file = sf.SoundFile(str(self.path), "w", self.rate_out, self.channels, subtype="PCM_16")
        self.resampler = None
        if self.rate_in != self.rate_out:
            self.resampler = soxr.ResampleStream(self.rate_in, self.rate_out, self.channels, dtype="float32", quality="HQ")
        return self

    def write(self, block: torch.Tensor, last: bool = False) -> None:
        data = block.detach().cpu().float().numpy().T
        if self.resampler is not None:
            data = self.resampler.resample_chunk(np.ascontiguousarray(data), last=last)
        if self.num_samples is not None:
            data = data[: max(self.num_samples - self.written, 0)]
        self.file.write(np.clip(data, -1.0, 1.0))
        self.written += data.shape[0]

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.resampler is not None:
                    self.write(torch.zeros(self.channels, 0), last=True)
                if self.num_samples is not None and self.written < self.num_samples:
                    self.file.write(np.zeros((self.num_samples - self.written, self.channels), dtype=np.float32))
        finally:
            self.file.close()


def write_audio(path: str | Path, x: torch.Tensor, sample_rate: int) -> Path:
    """Write `[C,T]` float in [-1,1] to `path` (wav or flac, 16-bit), atomically."""
    path = Path(path)
    check_write_suffix(path)

    def write(tmp: Path) -> None:
        with AudioWriter(tmp, sample_rate, sample_rate, x.shape[0]) as w:
            w.write(x)

    atomic_write(path, write)
    return path


@contextlib.contextmanager
def quiet_native_stderr(path: Path):
    """For MP3 files, send file descriptor 2 to /dev/null inside the block: libmpg123 prints
    notes ("Xing stream size off by more than 1%") from C, past Python's sys.stderr. Our
    own check of the decoded length reports what matters. Kept when MMTOK_DEBUG is set."""
    if path.suffix.lower() != ".mp3" or os.environ.get("MMTOK_DEBUG", "") not in ("", "0"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
