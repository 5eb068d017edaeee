"""What `mmtok eval` measures for audio (`mmtok.eval.audio_eval` runs it, `audio_report` shows
it): every tokenizer at each of its bitrates, and Opus at the same rates, on the user's files.

What is measured is what a user gets: each file read whole (resampled to the tokenizer's
rate and channels as `mmtok encode` does), coded with the streaming path `mmtok encode` /
`mmtok decode` use (`encode_chunked` / `decode_chunked`: the same codes as whole-signal
coding, model memory bounded by the chunk). Each file is encoded once with the most levels
asked for; a lower bitrate decodes the first k levels, which is the k-level code (residual
quantisation: level k never depends on levels after it).

Everything is compared as mono at one evaluation rate: the tokenizers' rate when they share
one, else the lowest of them (so each is judged on the band all of them can carry).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import torch

from mmtok.audio.base import AudioTokenizer
from mmtok.errors import MmtokError
from mmtok.eval.audio_metrics import clip_scores
from mmtok.eval.baselines.opus import APPLICATION, MIN_KBPS, opus_roundtrip
from mmtok.eval.dnsmos import EVAL_HOP_SECONDS, dnsmos
from mmtok.eval.selection import spread
from mmtok.media.audio import read_audio
from mmtok.metrics import codebook_usage

DEFAULT_MAX_KBPS = 6.0         # without --kbps: every bitrate up to this
OPUS = "opus"
EXAMPLE_SECONDS = 4.0          # length of the spectrogram excerpts
AGREEMENT_ITEMS = 32           # determinism: this many 1 s windows
AGREEMENT_SECONDS = 1.0
SHOWN_RATES = 3                # spectrogram columns: lowest, middle and highest bitrate


@dataclass
class Plan:
    """How one tokenizer is run: `levels[i]` residual levels for the bitrate asked `asked[i]`."""

    tok: AudioTokenizer
    levels: list[int]
    asked: list[float]

    @property
    def most(self) -> int:
        return max(self.levels)


@dataclass
class Measurements:
    """Everything `evaluate_audio` measured. `rows`: one dict per (file, method, bitrate):
    tokens per second (None for Opus, which makes no tokens) and kbps first, then the scores;
    `original_dnsmos[file]`: DNSMOS of the original (the ceiling the codings are judged
    against; empty without DNSMOS); `counts[name]`: code histograms `[levels, codebook]`; `examples[file]`:
    {"original": [1,n], (method, kbps asked): ([1,n], row)} excerpts at `rate`."""

    rate: int
    files: list[Path]
    plans: dict[str, Plan]
    opus_kbps: list[float]
    with_pesq: bool
    with_dnsmos: bool = False
    opus_skipped: list[float] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    original_dnsmos: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, torch.Tensor] = field(default_factory=dict)
    examples: dict[str, dict] = field(default_factory=dict)
    agreement_items: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    agreement: dict[str, dict] = field(default_factory=dict)
    alignment: dict[str, Any] | None = None
    seconds: float = 0.0
    timings: dict[str, Any] = field(default_factory=dict)


def opus_rates(asked: list[float]) -> tuple[list[float], list[float]]:
    """The asked bitrates Opus runs at, and those below its `MIN_KBPS` (where it would only make silence)."""
    return [k for k in asked if k >= MIN_KBPS - 1e-9], [k for k in asked if k < MIN_KBPS - 1e-9]


def evaluation_rate(tokenizers: dict[str, AudioTokenizer]) -> int:
    """The tokenizers' common sample rate, else the lowest of them."""
    return min(tok.sample_rate for tok in tokenizers.values())


def plan_bitrates(name: str, tok: AudioTokenizer, kbps: tuple[float, ...] | None) -> Plan:
    """Levels for each asked bitrate (`--kbps`), or every bitrate the tokenizer offers up to
    `DEFAULT_MAX_KBPS` (its lowest if even that is higher). Duplicates are dropped."""
    if getattr(tok, "modality", None) != "audio":
        raise MmtokError(f"-t {name}: not an audio tokenizer")
    if kbps:
        levels, asked = [], []
        for k in kbps:
            try:
                n = tok.levels_for(kbps=k)
            except MmtokError as err:
                raise MmtokError(f"--kbps {k:g}: {name}: {err}") from None
            if n not in levels:
                levels.append(n)
                asked.append(k)
        return Plan(tok, levels, asked)
    offered = tok.bitrates()
    levels = [k for k, rate in offered.items() if rate <= DEFAULT_MAX_KBPS + 1e-9] or [min(offered)]
    return Plan(tok, levels, [round(offered[k], 3) for k in levels])


def to_evaluation(y: torch.Tensor, rate_in: int, rate: int) -> torch.Tensor:
    """`[C,T]` at `rate_in` -> mono `[1,T']` at `rate` (soxr, linear phase, no delay)."""
    y = y.float().mean(0, keepdim=True).cpu()
    if rate_in == rate:
        return y
    return torch.from_numpy(soxr.resample(y[0].numpy(), rate_in, rate, quality="HQ")[None].copy())


def loudest_window(x: torch.Tensor, length: int) -> int:
    """Start of the `length`-sample window of `x [C,T]` with the most energy (0.25 s steps)."""
    if x.shape[-1] <= length:
        return 0
    power = x.double().pow(2).mean(0)
    cumulative = torch.cat([torch.zeros(1, dtype=power.dtype), power.cumsum(0)])
    step = max(1, length // 16)
    starts = torch.arange(0, x.shape[-1] - length + 1, step)
    return int(starts[(cumulative[starts + length] - cumulative[starts]).argmax()])


def agreement_windows(x: torch.Tensor, length: int, count: int) -> list[torch.Tensor]:
    """Up to `count` non-overlapping windows `[C,length]` spread over `x [C,T]` (one,
    zero-padded, when `x` is shorter than a window)."""
    if x.shape[-1] < length:
        return [torch.nn.functional.pad(x, (0, length - x.shape[-1]))]
    n = min(count, x.shape[-1] // length)
    starts = np.linspace(0, x.shape[-1] - length, num=n).round().astype(int)
    return [x[..., s : s + length].clone() for s in starts.tolist()]


def spent_kbps(tok: AudioTokenizer, frames: int, levels: int, seconds: float) -> float:
    """Bits the codes of a clip really take (frames x levels x log2 codebook size, the last
    partial frame included) per second of audio, in kbit/s."""
    bits = frames * sum(math.log2(size) for size in tok.codebook_sizes[:levels])
    return bits / seconds / 1000


def measure(m: Measurements, examples: list[Path], progress: bool) -> None:
    """Fill `m` by coding every file with every plan (and Opus)."""
    from tqdm.auto import tqdm

    per_file = math.ceil(AGREEMENT_ITEMS / len(m.files))
    for name, plan in m.plans.items():
        m.counts[name] = torch.zeros(plan.most, max(plan.tok.codebook_sizes[: plan.most]), dtype=torch.long)
        m.agreement_items[name] = []
    timings = {"encode": {n: 0.0 for n in m.plans}, "decode": {n: 0.0 for n in m.plans}, "opus": 0.0, "metrics": 0.0}
    shown = shown_rates(m)
    example_names = {f.name for f in examples}
    for path in tqdm(m.files, desc="audio eval", unit="file", disable=not progress):
        reference = read_audio(path, m.rate, 1)
        seconds = reference.shape[-1] / m.rate
        m.seconds += seconds
        keep = None
        if path.name in example_names:
            length = round(EXAMPLE_SECONDS * m.rate)
            start = loudest_window(reference, length)
            keep = slice(start, start + length)
            m.examples[path.name] = {"original": reference[..., keep], "start_seconds": start / m.rate}
        if m.with_dnsmos:
            m.original_dnsmos[path.name] = dnsmos(reference, m.rate, EVAL_HOP_SECONDS)
        extra = {"folder": path.parent.name, "seconds": seconds}
        for name, plan in m.plans.items():
            tok = plan.tok
            x = reference if (tok.sample_rate, tok.channels) == (m.rate, 1) else read_audio(path, tok.sample_rate, tok.channels)
            start = time.perf_counter()
            codes = tok.encode_chunked(x[None], num_quantizers=plan.most)
            timings["encode"][name] += time.perf_counter() - start
            for level in range(plan.most):
                m.counts[name][level] += torch.bincount(codes[0, level].cpu(), minlength=m.counts[name].shape[1])
            if len(m.agreement_items[name]) < AGREEMENT_ITEMS:
                m.agreement_items[name] += agreement_windows(x, round(AGREEMENT_SECONDS * tok.sample_rate), per_file)
            for levels, asked in zip(plan.levels, plan.asked):
                start = time.perf_counter()
                y = tok.decode_chunked(codes[:, :levels], length=x.shape[-1])[0]
                timings["decode"][name] += time.perf_counter() - start
                y = to_evaluation(y, tok.output_sample_rate, m.rate)
                start = time.perf_counter()
                row = {"file": path.name, "method": name, "tokens_per_second": tok.tokens_per_second(levels),
                       "kbps_spent": spent_kbps(tok, codes.shape[-1], levels, x.shape[-1] / tok.sample_rate), "kbps_asked": asked,
                       **extra, "baseline": False, "levels": levels, "kbps_nominal": tok.kbps(levels),
                       **clip_scores(y, reference, m.rate, m.with_pesq, m.with_dnsmos)}
                timings["metrics"] += time.perf_counter() - start
                m.rows.append(row)
                if keep is not None and asked in shown.get(name, ()):
                    m.examples[path.name][(name, asked)] = (y[..., keep], row)
        for kbps in m.opus_kbps:
            start = time.perf_counter()
            out = opus_roundtrip(reference, m.rate, kbps)
            timings["opus"] += time.perf_counter() - start
            start = time.perf_counter()
            row = {"file": path.name, "method": OPUS, "tokens_per_second": None, "kbps_spent": out.kbps_spent, "kbps_asked": kbps,
                   **extra, "baseline": True, "bitrate_set_kbps": out.bitrate_set / 1000, "payload_bytes": out.payload_bytes,
                   "packets": out.packets, "codec_rate": out.codec_rate, "application": APPLICATION,
                   **clip_scores(out.audio, reference, m.rate, m.with_pesq, m.with_dnsmos)}
            timings["metrics"] += time.perf_counter() - start
            m.rows.append(row)
            if keep is not None and kbps in shown.get(OPUS, ()):
                m.examples[path.name][(OPUS, kbps)] = (out.audio[..., keep], row)
    m.timings = timings
    for name in m.agreement_items:
        m.agreement_items[name] = m.agreement_items[name][:AGREEMENT_ITEMS]


def shown_rates(m: Measurements) -> dict[str, list[float]]:
    """The asked bitrates the spectrograms show per method: up to `SHOWN_RATES` columns
    (lowest, middle, highest over all methods); each method shows its bitrate nearest to each."""
    every = sorted({a for p in m.plans.values() for a in p.asked} | set(m.opus_kbps))
    columns = spread(every, SHOWN_RATES)
    asked = {name: plan.asked for name, plan in m.plans.items()}
    if m.opus_kbps:
        asked[OPUS] = m.opus_kbps
    return {name: [min(options, key=lambda a: abs(math.log(a / c))) for c in columns] for name, options in asked.items()}


def level_stats(counts: torch.Tensor, sizes: list[int]) -> list[dict[str, float]]:
    """Per level: `codes` counted, distinct codes `used`, `usage` (fraction of the codebook), `perplexity`, `codebook_size`."""
    out = []
    for level, size in enumerate(sizes[: counts.shape[0]]):
        hist = counts[level, :size]
        out.append({"level": level + 1, "codes": int(hist.sum()), "used": int((hist > 0).sum()), "codebook_size": size,
                    **codebook_usage(hist)})
    return out
