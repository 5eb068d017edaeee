"""What `mmtok eval` was asked to do, shared by the image, audio and video evaluators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalOptions:
    """`baselines`: names of the classic codecs to run next to the tokenizers (each evaluator
    ignores names that are not its modality's; empty = none). `kbps`: audio bitrates (None:
    every bitrate each codec offers up to 6 kbps). `limit`: evaluate at most this many files, spread
    over the sorted list. `examples`: how many files the pictures show. `baseline_train`:
    files to fit trained baselines (k-means) on; empty = fit on the evaluated files, which
    favours the baseline (the report says so)."""

    baselines: tuple[str, ...] = ()
    kbps: tuple[float, ...] | None = None
    limit: int | None = None
    examples: int = 4
    seed: int = 0
    progress: bool = True
    baseline_train: tuple[str, ...] = ()
