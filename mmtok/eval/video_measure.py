"""What `mmtok eval` measures for video (`mmtok.eval.video_eval` runs it, `video_report` shows
it): each tokenizer on each clip, H.264 at the bits each tokenizer spends there and along a
CRF sweep.

Per clip (see `mmtok.eval.video_clips` for the frames measured: the first `MAX_FRAMES`, fewer
for large frames) and method: PSNR and SSIM per frame, temporal flicker per transition
(`mmtok.eval.video_metrics.clip_scores`), bits per pixel. Tokenizers code a clip as
`mmtok encode` / `mmtok decode` do (`mmtok.eval.video_coding`; image tokenizers frame by
frame, as the baseline a video tokenizer must beat). H.264 is
`mmtok.eval.baselines.h264`. Then the numbers over clips (`summarize`, `sweep_means`) and
the determinism of each tokenizer on crops cut from the clips.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmtok.eval.baselines.h264 import decode_h264, encode_h264, match_bits, yuv_frames
from mmtok.eval.determinism import BATCH, code_agreement
from mmtok.eval.options import EvalOptions
from mmtok.eval.selection import spread
from mmtok.eval.video_clips import MAX_FRAMES, MAX_PIXELS, cut_crops, frames_to_read, open_clip, read_clip
from mmtok.eval.video_coding import code_clip
from mmtok.eval.video_metrics import clip_scores
from mmtok.media.image import to_model
from mmtok.video.base import VideoTokenizer

SWEEP_CRFS = (14, 20, 26, 32, 38, 44, 51)   # H.264 curve: near-transparent down to x264's coarsest
STRIP_FRAMES = 5                            # frames per example clip in the strips
CROP = 64                                   # determinism crops: CROP x CROP pixels, 1 + ft frames


def h264_label(name: str) -> str:
    return f"H.264 at {name} bits"


# -- one clip -------------------------------------------------------------------------------------
def measure_clip(
    x: torch.Tensor, fps: float, tokenizers: Mapping[str, VideoTokenizer], h264: bool, threads: int,
    keep: list[int] | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Every method on uint8 clip `x [3,T,H,W]`. Returns (`methods`: label -> facts and
    `clip_scores`, plus `sweep`: H.264 at each of `SWEEP_CRFS`) and, for the frame indices
    `keep`, each method's frames there (label -> uint8 `[3,len(keep),H,W]`)."""
    _, frames, height, width = x.shape
    pixels = frames * height * width
    methods: dict[str, Any] = {}
    kept: dict[str, torch.Tensor] = {}
    yuv = yuv_frames(x) if h264 else []
    for name, tok in tokenizers.items():
        rt = code_clip(tok, x)
        bits = rt.codes.numel() * math.log2(tok.codebook_size)
        methods[name] = {"tokens_per_second": rt.codes.numel() * fps / frames, "bpp": bits / pixels, "kind": "tokenizer",
                         "grid": list(rt.codes.shape), "codes": rt.codes.numel(), "bits": bits, "encode_s": rt.encode_s, "decode_s": rt.decode_s, **clip_scores(x, rt.recon)}
        if keep:
            kept[name] = rt.recon[:, keep].clone()
        if h264:
            match = match_bits(yuv, fps, bits, threads=threads)
            recon = decode_h264(match.chosen.data, (frames, height, width))
            methods[h264_label(name)] = {"tokens_per_second": None, "bpp": match.chosen.bits / pixels, "kind": "h264",
                                         "matches": name, **match.facts(), **clip_scores(x, recon)}   # H.264 makes no tokens
            if keep:
                kept[h264_label(name)] = recon[:, keep].clone()
    sweep = []
    for crf in SWEEP_CRFS if h264 else ():
        encoded = encode_h264(yuv, fps, crf, threads=threads)
        scores = clip_scores(x, decode_h264(encoded.data, (frames, height, width)))
        sweep.append({"crf": crf, "tokens_per_second": None, "bpp": encoded.bits / pixels, "bits": encoded.bits,
                      **{k: scores[k] for k in ("psnr", "ssim", "flicker")}})
    return {"methods": methods, "sweep": sweep}, kept


# -- every clip -----------------------------------------------------------------------------------
@dataclass
class Measurements:
    """Everything `evaluate_videos` measured on `files`. `rows`: one dict per clip (file,
    frames, size, fps, and `measure_clip`'s `methods` and `sweep`); `strips`: per example clip
    (its row, the frame indices shown, each method's frames there, the original's);
    `items`: the determinism crops, uint8 `[N,3,L,crop,crop]` (`lengths[name]`: the frames a
    tokenizer's crops take); `methods`: the labels in order; `summary`, `sweep`: `summarize`
    and `sweep_means` of the rows; `determinism`: `measure_determinism` per tokenizer."""

    files: list[Path]
    examples: list[Path]
    h264: bool
    threads: int
    max_frames: int
    max_pixels: int
    lengths: dict[str, int]
    crop: int
    rows: list[dict[str, Any]]
    strips: list[tuple[dict, list[int], dict[str, torch.Tensor], torch.Tensor]]
    items: torch.Tensor
    methods: list[str]
    summary: list[dict]
    sweep: list[dict]
    determinism: dict[str, dict | None]


def measure(
    tokenizers: dict[str, VideoTokenizer], files: list[Path], options: EvalOptions, max_frames: int = MAX_FRAMES,
    max_pixels: int = MAX_PIXELS,
) -> Measurements:
    """Measure `tokenizers` (and H.264 if "h264" is in `options.baselines`) on video `files`."""
    from tqdm.auto import tqdm

    h264 = "h264" in options.baselines
    threads = torch.get_num_threads()
    readers = [open_clip(f) for f in files]  # every file checked before minutes of work
    examples = spread(list(files), options.examples)
    lengths = {name: 1 + tok.temporal_downsample for name, tok in tokenizers.items()}
    crop = min(CROP, *(min(r.height, r.width) for r in readers))
    rng = random.Random(options.seed)
    crops_per_clip = math.ceil(BATCH / len(files))

    rows: list[dict[str, Any]] = []
    strips: list[tuple[dict, list[int], dict[str, torch.Tensor], torch.Tensor]] = []
    crops = []
    bar = tqdm(list(zip(files, readers)), desc="video eval", unit="clip", disable=not options.progress)
    for path, reader in bar:
        bar.set_postfix_str(path.name, refresh=False)
        count = frames_to_read(reader, max_frames, max_pixels, min_frames=max(lengths.values()))
        x = read_clip(reader, count)
        _, frames, height, width = x.shape
        keep = picks(frames, STRIP_FRAMES) if path in examples else None
        measured, kept = measure_clip(x, reader.fps, tokenizers, h264, threads, keep)
        row = {"file": path.name, "path": str(path), "frames": frames, "source_frames": reader.num_frames,
               "height": height, "width": width, "fps": reader.fps, **measured}
        rows.append(row)
        if keep:
            strips.append((row, keep, kept, x[:, keep].clone()))
        crops.append(cut_crops(x, max(lengths.values()), crop, crops_per_clip, rng))
    items = torch.cat(crops)[:BATCH]

    methods = list(rows[0]["methods"])
    summary = summarize(rows, methods)
    sweep = sweep_means(rows)
    for s in summary:
        if s["kind"] == "tokenizer" and sweep:
            s["h264_bpp_at_same_psnr"] = h264_bpp_at(s["psnr_mean"], sweep)
    determinism = {name: measure_determinism(tok, items[:, :, : lengths[name]]) for name, tok in tokenizers.items()}
    return Measurements(files, examples, h264, threads, max_frames, max_pixels, lengths, crop, rows, strips, items,
                        methods, summary, sweep, determinism)


def picks(frames: int, count: int) -> list[int]:
    """`count` frame indices evenly spaced over `frames` (first and last included)."""
    return sorted({round(i * (frames - 1) / max(count - 1, 1)) for i in range(count)})


def measure_determinism(tok: VideoTokenizer, items: torch.Tensor) -> dict | None:
    """`code_agreement` of `tok.encode` on uint8 crops `[N,3,L,s,s]` (None if there are none)."""
    if items.shape[0] == 0:
        return None
    stats = code_agreement(lambda v: tok.encode(v), to_model(items))
    return {**stats, "item_shape": list(items.shape[1:])}


# -- numbers --------------------------------------------------------------------------------------
def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    """Per method: means and medians over clips of tokens per second (None for H.264, which
    makes no tokens), bpp, PSNR, SSIM, flicker, in that order; for H.264 the CRF and bits
    spent against the target (worst case included)."""
    out = []
    for label in methods:
        ms = [r["methods"][label] for r in rows]
        s: dict[str, Any] = {"method": label}
        for key in ("tokens_per_second", "bpp", "psnr", "ssim", "flicker"):
            values = [m[key] for m in ms if m[key] is not None]
            s[f"{key}_mean"] = statistics.fmean(values) if values else None
            s[f"{key}_median"] = statistics.median(values) if values else None
        s.update(kind=ms[0]["kind"], clips=len(ms))
        if ms[0]["kind"] == "h264":
            over = [m["bits_over_target"] for m in ms]
            s.update(matches=ms[0]["matches"], crf_median=statistics.median(m["crf"] for m in ms),
                     bits_over_target_min=min(over), bits_over_target_max=max(over),
                     reached=sum(m["reached_target"] for m in ms))
        else:
            s.update(encode_s=sum(m["encode_s"] for m in ms), decode_s=sum(m["decode_s"] for m in ms))
        out.append(s)
    return out


def sweep_means(rows: list[dict]) -> list[dict]:
    """The H.264 CRF sweep: per CRF, means over clips of bpp, PSNR, SSIM and flicker."""
    if not rows[0]["sweep"]:
        return []
    out = []
    for i, crf in enumerate(s["crf"] for s in rows[0]["sweep"]):
        point = {"crf": crf, "tokens_per_second": None}
        for key in ("bpp", "psnr", "ssim", "flicker"):
            values = [r["sweep"][i][key] for r in rows if r["sweep"][i][key] is not None]
            point[key] = statistics.fmean(values) if values else None
        out.append(point)
    return out


def h264_bpp_at(psnr: float, sweep: list[dict]) -> float | None:
    """The bits per pixel at which the H.264 sweep reaches `psnr` (interpolated linearly in
    log bpp between neighbouring CRFs); None outside the sweep's range."""
    points = sorted((p["bpp"], p["psnr"]) for p in sweep)
    for (b0, p0), (b1, p1) in zip(points, points[1:]):
        if min(p0, p1) <= psnr <= max(p0, p1) and p0 != p1:
            return math.exp(math.log(b0) + (psnr - p0) / (p1 - p0) * (math.log(b1) - math.log(b0)))
    return None
