"""The video evaluation report: what `mmtok.eval.video_measure.measure` found, as sections
(what was measured, quality and rate with the rate-distortion picture, per clip, quality per
frame, frame strips and determinism), tables, figures (`video_figures`) and
`report.results["video"]`. Each section function adds one `Section` to a `Report` and draws
its figures into the report's figures folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import torch

from mmtok.eval.baselines.h264 import ITERATIONS, PRESET, TOLERANCE
from mmtok.eval.determinism import BATCH
from mmtok.eval.report import Report
from mmtok.eval.video_figures import RatePoint, StripClip, method_colors, save_frame_strip, save_quality_per_frame, save_rate_distortion
from mmtok.eval.video_measure import SWEEP_CRFS, Measurements
from mmtok.video.base import VideoTokenizer

TOKENS_AT = (256, 24)   # the setup table's tokens/s: a 256x256 video at 24 fps


def write_video_report(report: Report, tokenizers: Mapping[str, VideoTokenizer], m: Measurements) -> None:
    """The report's sections and figures, and every number in `report.results["video"]`."""
    files, examples, h264, threads, max_frames, max_pixels = m.files, m.examples, m.h264, m.threads, m.max_frames, m.max_pixels
    rows, strips, items, crop, lengths = m.rows, m.strips, m.items, m.crop, m.lengths
    methods, summary, sweep, determinism = m.methods, m.summary, m.sweep, m.determinism
    colors = method_colors(methods)

    setup_section(report, tokenizers, rows, SWEEP_CRFS if h264 else (), threads, max_frames, max_pixels)
    quality_section(report, summary, tokenizers, colors, sweep)
    clips_section(report, rows, methods)
    if strips:
        per_frame_section(report, strips[0][0], methods, tokenizers, colors)
        strips_section(report, strips, methods)
    determinism_section(report, determinism, items, crop, lengths, len(files))

    report.results["video"] = {
        "tokenizers": {name: tokenizer_facts(tok) for name, tok in tokenizers.items()},
        "files": [str(f) for f in files], "max_frames": max_frames, "max_pixels": max_pixels,
        "h264": h264_settings(threads) if h264 else None,
        "summary": summary, "sweep": sweep, "per_clip": rows, "determinism": determinism,
        "examples": [p.name for p in examples],
    }


def tokenizer_facts(tok: VideoTokenizer) -> dict[str, Any]:
    return {**tok.describe(), "kind": tok.kind, "fingerprint": tok.fingerprint, "codebook_size": tok.codebook_size,
            "spatial_downsample": tok.spatial_downsample, "temporal_downsample": tok.temporal_downsample,
            "first_frame_alone": tok.first_frame_alone}


def h264_settings(threads: int) -> dict[str, Any]:
    return {"encoder": "libx264 via PyAV", "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "preset": PRESET, "pix_fmt": "yuv420p (BT.709, limited range)", "threads": threads,
            "matched": f"CRF bisected per clip ({ITERATIONS} trials at most) to spend at most +{TOLERANCE:.0%} of the "
                       "tokenizer's bits", "sweep_crfs": list(SWEEP_CRFS),
            "bits": "sum of packet sizes: every coded frame, no mp4 container, no SPS/PPS header (header_bytes)"}


def h264_note(s: dict[str, Any]) -> str:
    """For an H.264 row of the summary: its CRF and the bits it spent against the target; "" otherwise."""
    if s["kind"] != "h264":
        return ""
    note = f"CRF {s['crf_median']:.1f} (median); bits vs target {s['bits_over_target_min']:+.1%} .. {s['bits_over_target_max']:+.1%}"
    if s["reached"] < s["clips"]:
        note += f"; CRF 51 still above the target on {s['clips'] - s['reached']} clip(s)"
    return note


def na(value: float | None) -> float:
    """None (a classic codec's tokens) shows as n/a."""
    return math.nan if value is None else value


def setup_section(report: Report, tokenizers: Mapping[str, VideoTokenizer], rows: list[dict], sweep_crfs: Sequence[float],
                  threads: int, max_frames: int, max_pixels: int) -> None:
    """What was measured and how bits are counted; `sweep_crfs` empty: H.264 was not run."""
    section = report.section("What was measured")
    cut = [r for r in rows if r["frames"] < r["source_frames"]]
    frames = sum(r["frames"] for r in rows)
    section.text(
        f"{len(rows)} clip{'s' * (len(rows) != 1)}, {frames:,} frames, each at its own size and frame rate. Long clips are "
        f"measured on their first {max_frames} frames (fewer for large frames: at most {max_pixels / 1e6:.0f} M pixels "
        f"per clip, since a clip is held in memory while measured); "
        + (f"{len(cut)} clip{'s were' if len(cut) != 1 else ' was'} cut so." if cut else "no clip was cut.")
    )
    section.text(
        "Tokenizers code each clip as `mmtok encode` / `mmtok decode` do (windows of latent frames with carried state); "
        "the decoded frames are rounded to 8 bits and cropped to the original size, and the tokenizer's bits are "
        "codes x log2(codebook size), padding included, over the original pixels (bpp)."
    )
    size, fps = TOKENS_AT
    section.table(["tokenizer", f"tokens/s ({size}x{size}, {fps} fps)", "bpp (nominal)", "kind", "pixels per code",
                   "frames per code", "codebook"],
                  [[name, tok.tokens_per_second(fps, size, size),
                    math.log2(tok.codebook_size) / (tok.spatial_downsample ** 2 * tok.temporal_downsample), tok.kind,
                    f"{tok.spatial_downsample}x{tok.spatial_downsample}", tok.temporal_downsample, tok.codebook_size]
                   for name, tok in tokenizers.items()],
                  caption="tokens/s: LLM tokens per second of a long video of that size and frame rate (the tables below "
                          "give what each clip really costs, at its own size and frame rate)")
    if sweep_crfs:
        section.text(
            f"**H.264** (libx264, preset {PRESET}, yuv420p, {threads} thread{'s' * (threads != 1)}): per clip and "
            f"tokenizer, the CRF is bisected so H.264 spends as close as possible to the tokenizer's bits on that clip and "
            f"never more than +{TOLERANCE:.0%}; also a sweep over CRF {', '.join(map(str, sweep_crfs))}. Bits counted "
            "for H.264: every coded frame (the sum of the packet sizes), not the mp4 container nor the few dozen bytes of "
            "stream header. Decoded back with mmtok's video reader, as `mmtok compare` reads a file."
        )
    else:
        section.text("No classic codec was run (`--baseline h264` adds H.264 at the same bits).")


def quality_section(report: Report, summary: list[dict], tokenizers: Mapping, colors: dict[str, str], sweep: list[dict]) -> None:
    section = report.section("Quality and rate")
    headline = []
    for name in tokenizers:
        own = next(s for s in summary if s["method"] == name)
        line = f"**{name}**: {own['psnr_mean']:.2f} dB PSNR, SSIM {own['ssim_mean']:.3f} at {own['bpp_mean']:.4f} bpp"
        h = next((s for s in summary if s.get("matches") == name), None)
        if h:
            line += f"; H.264 at the same bits: {h['psnr_mean']:.2f} dB, SSIM {h['ssim_mean']:.3f} ({h['bpp_mean']:.4f} bpp)"
        if sweep:
            line += "; " + equal_quality(own, sweep)
        headline.append(line + ".")
    section.text(" ".join(headline))
    section.text("How to read this: PSNR (dB) and SSIM per frame on the [0,1] scale, averaged over the frames of a clip, "
                 "then over clips (higher is better); flicker = mean |(r[t+1]-r[t]) - (x[t+1]-x[t])| on [0,1], changes "
                 "between frames that the original does not have (lower is better). H.264 rows spend the bits of the "
                 "tokenizer they name, clip by clip.")
    rows = [[s["method"], na(s["tokens_per_second_mean"]), s["bpp_mean"], s["clips"], s["psnr_mean"], s["psnr_median"],
             s["ssim_mean"], s["ssim_median"], s["flicker_mean"], h264_note(s)] for s in summary]
    section.table(["method", "tokens/s", "bpp", "clips", "PSNR mean", "PSNR median", "SSIM mean", "SSIM median", "flicker mean", "H.264"],
                  rows, caption="means and medians over clips; tokens/s: LLM tokens per second of each clip at its own size "
                                "and frame rate (n/a for H.264, which makes no tokens)")
    points = [RatePoint(s["method"], s["bpp_mean"], s["psnr_mean"], s["ssim_mean"], s.get("matches")) for s in summary]
    path = save_rate_distortion(report.figure_path("rate_distortion.png"), points, sweep, colors)
    section.figure(path, "PSNR and SSIM against bits per pixel: tokenizers (stars), H.264 at each tokenizer's bits "
                         "(hollow squares) and H.264 over a range of CRFs (curve)")
    if sweep:
        section.table(["H.264 CRF", "tokens/s", "bpp", "PSNR", "SSIM", "flicker"],
                      [[p["crf"], "n/a", p["bpp"], p["psnr"], p["ssim"], p["flicker"]] for p in sweep],
                      caption="H.264 CRF sweep: means over clips")


def equal_quality(own: dict, sweep: list[dict]) -> str:
    """Where the H.264 sweep reaches the tokenizer's mean PSNR (`own`: its summary), in words."""
    bpp = own["h264_bpp_at_same_psnr"]
    if bpp is not None:
        return f"H.264 reaches the same mean PSNR at about {bpp:.4f} bpp ({own['bpp_mean'] / bpp:.1f}x fewer bits)"
    coarsest = max(sweep, key=lambda p: p["crf"])
    if own["psnr_mean"] < coarsest["psnr"]:
        return (f"even H.264 at CRF {coarsest['crf']:g} is better ({coarsest['psnr']:.2f} dB at {coarsest['bpp']:.4f} bpp, "
                f"{own['bpp_mean'] / coarsest['bpp']:.1f}x fewer bits)")
    return "H.264 needs more bits than the sweep's finest CRF for the same PSNR"


def clips_section(report: Report, rows: list[dict], methods: list[str]) -> None:
    section = report.section("Per clip")
    tokenizers = [m for m in methods if rows[0]["methods"][m]["kind"] == "tokenizer"]
    columns = (["clip", "frames", "size", "fps"] + [f"{m} tokens/s" for m in tokenizers] + [f"{m} bpp" for m in methods]
               + [f"{m} PSNR" for m in methods] + [f"{m} SSIM" for m in methods])
    table = []
    for r in rows:
        cut = f" of {r['source_frames']}" if r["frames"] < r["source_frames"] else ""
        table.append([r["file"], f"{r['frames']}{cut}", f"{r['width']}x{r['height']}", r["fps"]]
                     + [r["methods"][m]["tokens_per_second"] for m in tokenizers] + [r["methods"][m]["bpp"] for m in methods]
                     + [r["methods"][m]["psnr"] for m in methods] + [r["methods"][m]["ssim"] for m in methods])
    section.table(columns, table, caption="tokens per second and bits per pixel of every clip, then PSNR (dB) and SSIM, means "
                                          "over each clip's frames")


def per_frame_section(report: Report, row: dict, methods: list[str], tokenizers: Mapping[str, VideoTokenizer],
                      colors: dict[str, str]) -> None:
    section = report.section("Quality per frame")
    first = next(iter(tokenizers.values()))
    starts = [first.first_frame_of(j) for j in range(first.latent_frames(row["frames"]))]
    title = f"{row['file']}: {row['frames']} frames, {row['width']}x{row['height']}, {row['fps']:g} fps"
    path = save_quality_per_frame(report.figure_path("quality_per_frame.png"), title,
                                  {m: row["methods"][m] for m in methods}, starts, colors)
    section.text(f"How to read this: one clip frame by frame. Dotted lines mark where a latent frame of "
                 f"{next(iter(tokenizers))} starts (frame 0 alone, then groups of {first.temporal_downsample}); a tokenizer whose "
                 "quality dips inside each group, or whose flicker peaks at group borders, shows its temporal compression.")
    section.figure(path, f"PSNR, SSIM and flicker per frame of {row['file']}")


def strips_section(report: Report, strips: list, methods: list[str]) -> None:
    section = report.section("Frames")
    section.text("Frames evenly spaced through each example clip: the original on top, then each method (PSNR and bpp of "
                 "the whole clip in the label). Open a picture for full size.")
    for i, (row, keep, kept, original) in enumerate(strips):
        rows = [("original", original)] + [(f"{m}\n{row['methods'][m]['psnr']:.2f} dB, {row['methods'][m]['bpp']:.4f} bpp",
                                            kept[m]) for m in methods]
        title = f"{row['file']} ({row['frames']} frames, {row['width']}x{row['height']})"
        path = save_frame_strip(report.figure_path(f"frames_{i + 1}_{Path(row['file']).stem}.jpg"), [StripClip(title, keep, rows)])
        section.figure(path, title)


def determinism_section(report: Report, determinism: dict, items: torch.Tensor, crop: int, lengths: dict[str, int],
                        clips: int) -> None:
    section = report.section("Determinism")
    if items.shape[0] == 0:
        section.text(f"Not measured: no clip has the {max(lengths.values())} frames a crop needs.")
        return
    section.text(
        f"{items.shape[0]} crops of {crop}x{crop} pixels and 1 + (frames per code) frames, cut at random times and places "
        f"from the {clips} evaluated clip{'s' * (clips != 1)}, encoded with `tok.encode` as a batch of {BATCH} twice "
        "(repeat) and one by one (alone vs batch). How to read this: 1.0 means every code came out the same; lower means "
        "codes on a quantizer's decision boundary flip with the batch's float rounding."
    )
    section.table(["tokenizer", "frames per crop", "repeat", "alone vs batch", "positions compared"],
                  [[name, lengths[name], d["repeat"], d["alone_vs_batch"], d["positions"]]
                   for name, d in determinism.items() if d is not None])
