"""The audio media type: audio files <-> token files, streamed (`mmtok.audio.files`), mel
distance / SI-SDR / STOI.

    AUDIO.encode_files(tok, ["speech/"], Path("tokens/"), kbps=3.0)
    AUDIO.decode_files(tok, ["tokens/"], Path("recon/"), fmt="flac")

Token files record the source's `sample_rate`, `channels`, `num_samples` and the
`codec_samples` at the tokenizer's rate (codes `[levels,t]`); files are coded
`CHUNK_SECONDS` at a time, so their length does not matter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.audio.files import CHUNK_SECONDS, decode_audio, decode_audio_files, encode_audio, encode_audio_files, encode_blocks
from mmtok.errors import MmtokError
from mmtok.eval.audio_eval import evaluate_audio
from mmtok.eval.audio_metrics import clip_scores
from mmtok.files import Progress
from mmtok.layout import FrameMajorLayout
from mmtok.media.audio import AUDIO_SUFFIXES, AudioBlocks, audio_info, read_audio
from mmtok.media.modality import Held, Modality
from mmtok.tokens_file import TokenFile


class AudioModality(Modality):
    name = "audio"
    suffixes = frozenset(AUDIO_SUFFIXES)
    formats = ("wav", "flac")
    encode_options = frozenset({"kbps", "num_quantizers"})
    progress_unit, progress_unit_scale = "s", True   # seconds of audio
    baselines = ("opus",)
    chunk_seconds = CHUNK_SECONDS
    max_held_seconds = 600.0   # longer files are streamed, not held whole: 10 min of 48 kHz stereo float32 is 230 MB

    def progress_label(self, tok: AudioTokenizer, kbps: float | None = None, num_quantizers: int | None = None) -> str:
        return f"encode {tok.kbps(tok.levels_for(kbps=kbps, num_quantizers=num_quantizers)):g} kbps"

    def encode_file(self, tok: AudioTokenizer, path: str | Path, levels: int | None = None) -> TokenFile:
        return encode_audio(tok, path, levels)

    def encode_files(
        self, tok: AudioTokenizer, inputs: Iterable[str | Path], out: Path, progress: Progress | None = None,
        kbps: float | None = None, num_quantizers: int | None = None,
    ) -> list[Path]:
        """At the most residual levels that fit `kbps`, or `num_quantizers` of them (default all)."""
        levels = tok.levels_for(kbps=kbps, num_quantizers=num_quantizers)
        return encode_audio_files(tok, inputs, out, levels, progress)

    def decode_files(
        self, tok: AudioTokenizer, inputs: Iterable[str | Path], out: Path, fmt: str | None = None,
        progress: Progress | None = None,
    ) -> list[Path]:
        return decode_audio_files(tok, inputs, out, f".{fmt or self.default_format}", progress)

    def reading(self, tok: AudioTokenizer) -> dict[str, int]:
        return {"sample_rate": tok.sample_rate, "channels": tok.channels}

    def coding_options(self, stream_options) -> dict[str, int | None]:
        return {"levels": stream_options.levels}

    def hold(self, path: str | Path, sample_rate: int, channels: int) -> Held | None:
        """`[C,T]` at the tokenizer's rate and channels, read in the blocks `encode_audio` reads."""
        blocks = AudioBlocks(path, sample_rate, channels, block_seconds=self.chunk_seconds)
        if blocks.info.seconds > self.max_held_seconds:
            return None
        pieces = list(blocks)
        return Held(torch.cat(pieces, dim=-1), tuple(p.shape[-1] for p in pieces))

    def encode_held(self, tok: AudioTokenizer, held: Held, levels: int | None = None) -> torch.Tensor:
        return encode_blocks(tok, torch.split(held.data, list(held.blocks), dim=-1), levels, self.chunk_seconds).cpu()

    def stream_options(self, name: str, tok: AudioTokenizer, options):
        levels = options.levels or len(tok.codebook_sizes)
        if not 1 <= levels <= len(tok.codebook_sizes):
            raise MmtokError(f"{name}: --audio-levels must be 1..{len(tok.codebook_sizes)}, got {levels}")
        return dataclasses.replace(options, row_separator=False, frame_separator=False, levels=levels), {"levels": levels}

    def implied_layout(self, codebook_sizes: tuple[int, ...], options) -> FrameMajorLayout:
        return FrameMajorLayout(tuple(codebook_sizes[: options.levels or len(codebook_sizes)]))

    def write_codes(self, tok: AudioTokenizer, codes: torch.Tensor, path: Path, fps: float) -> bool:
        """Codes `[K,t]` -> `t * output_hop_length` samples at the decoder's `output_sample_rate`
        (generated codes have no original, so nothing is resampled); False for `t = 0`."""
        samples = codes.shape[1] * tok.hop_length
        if not samples:
            return False
        original = {"sample_rate": tok.output_sample_rate, "channels": tok.channels,
                    "num_samples": codes.shape[1] * tok.output_hop_length, "codec_samples": samples}
        decode_audio(tok, TokenFile.from_codes(tok, codes, original), path)
        return True

    def grid_text(self, grid: tuple[int, ...]) -> str:
        return f"{grid[0]} frames"

    def scores(self, original: Path, reconstruction: Path) -> dict[str, float]:
        """Compared as mono at the original's sample rate."""
        rate = audio_info(original).sample_rate
        x, y = read_audio(original, rate, 1), read_audio(reconstruction, rate, 1)
        if abs(x.shape[-1] - y.shape[-1]) > 0.01 * x.shape[-1]:
            raise MmtokError(
                f"{reconstruction}: length {y.shape[-1] / rate:.2f} s differs from {original} {x.shape[-1] / rate:.2f} s")
        n = min(x.shape[-1], y.shape[-1])
        s = clip_scores(y[:, :n], x[:, :n], rate)
        return {"mel": s["mel_distance"], "SI-SDR": s["si_sdr"], "STOI": s["stoi"]}

    def evaluate(self, tokenizers, files, report, options) -> None:
        evaluate_audio(tokenizers, files, report, options)


AUDIO = AudioModality()
