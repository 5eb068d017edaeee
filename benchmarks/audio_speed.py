"""Speed and memory of an audio tokenizer on CPU, against EnCodec at the same bitrate.

1. Speed: encode and decode of --seconds of audio (default 10 s) by our codec at 6 kbps
   (`levels_for(kbps=6)`) and by transformers' `EncodecModel(EncodecConfig())` (the 24 kHz
   architecture, random weights: speed does not depend on them) with `bandwidth=6.0` passed
   explicitly. Same audio, same process, the four operations interleaved in every repeat so
   machine load hits both alike; --warmup untimed rounds, then the median of --repeats.
   Reported as x real-time (seconds of audio per second of compute) and ours / EnCodec.
2. Peak memory of the streamed file path: `encode_audio` of a --hours long FLAC (default 1 h,
   written in blocks from repeated corpus clips) to a token file, `decode_audio` of that token
   file back to a WAV; also the same path on --whole-minutes (1 and 2 min), and for contrast
   the whole-signal `tok.encode` / `tok.decode` of those short lengths, which grows with
   length. Each measurement runs in a fresh subprocess: peak RSS (VmHWM, reset with
   /proc/self/clear_refs after loading) minus the RSS after imports + model load (+ input).

    python benchmarks/audio_speed.py --tokenizer tokenizers_trained/mmtok-audio-24k --threads 2

This driver imports only the standard library: a child process inherits its parent's
ru_maxrss across fork/exec on Linux, so a driver holding torch and a model would inflate
every child's high-water mark. All torch work happens in the children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import measure_peak

FILE_RATE = 24_000   # the long test files are written at this rate (the tokenizer resamples if it differs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="audio tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every measurement")
    p.add_argument("--kbps", type=float, default=6.0, help="bitrate of both codecs (EnCodec: one of its target bandwidths)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the speed-test audio")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before timing")
    p.add_argument("--hours", type=float, default=1.0, help="length of the long file for the file-path memory test")
    p.add_argument("--whole-minutes", type=float, nargs="*", default=[1.0, 2.0],
                   help="short lengths for the whole-signal contrast (and the file path at the same lengths)")
    p.add_argument("--data", type=Path, default=Path("../shared/corpus/audio/speech"),
                   help="clips the long files are made of (repeated); a synthetic signal if the folder is missing")
    p.add_argument("--tmp-dir", type=Path, default=None, help="where the long audio / token / decoded files go (deleted after)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--length", type=float, help=argparse.SUPPRESS)   # seconds, for the children
    return p.parse_args(argv)


# -- children (torch lives here) -----------------------------------------------------------
def _setup(args: argparse.Namespace):
    import torch

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    import mmtok

    tok = mmtok.load(args.tokenizer)
    if tok.modality != "audio":
        raise SystemExit(f"error: {args.tokenizer}: a {tok.modality} tokenizer; this benchmark needs an audio tokenizer")
    return torch, tok


def test_signal(torch, seconds: float, rate: int, channels: int = 1, seed: int = 0):
    """`[1,C,T]` in [-1,1]: gliding harmonics under a syllable-rate envelope, plus a little noise
    (content barely changes the compute of a convolutional codec; no file needed)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    f0 = 150 + 50 * torch.sin(2 * torch.pi * 0.3 * t)
    phase = 2 * torch.pi * torch.cumsum(f0, 0) / rate
    voice = sum(torch.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * torch.sin(2 * torch.pi * 4 * t).clamp(min=0)
    x = 0.2 * envelope * voice + 0.01 * torch.randn(t.shape, generator=g, dtype=torch.float64)
    return x.clamp(-1, 1).float().expand(1, channels, -1).contiguous()


def child_speed(args: argparse.Namespace) -> dict:
    torch, tok = _setup(args)
    from transformers import EncodecConfig, EncodecModel

    config = EncodecConfig()
    if args.kbps not in config.target_bandwidths:
        raise SystemExit(f"error: EnCodec supports {config.target_bandwidths} kbps, not {args.kbps:g}")
    torch.manual_seed(0)
    encodec = EncodecModel(config).eval()
    levels = tok.levels_for(kbps=args.kbps)
    x = test_signal(torch, args.seconds, tok.sample_rate, tok.channels)
    x_encodec = test_signal(torch, args.seconds, config.sampling_rate, config.audio_channels)

    with torch.inference_mode():
        codes = tok.encode(x, num_quantizers=levels)
        encoded = encodec.encode(x_encodec, bandwidth=args.kbps)   # never None: that silently means 1.5 kbps
    encodec_books = encoded.audio_codes.shape[-2]
    encodec_kbps = config.frame_rate * encodec_books * (config.codebook_size.bit_length() - 1) / 1000
    if abs(encodec_kbps - args.kbps) > 1e-6:
        raise SystemExit(f"error: EnCodec coded {encodec_books} codebooks = {encodec_kbps:g} kbps, not the {args.kbps:g} kbps asked for")

    def run_encodec_decode():
        return encodec.decode(encoded.audio_codes, encoded.audio_scales, last_frame_pad_length=encoded.last_frame_pad_length)

    def run_stream_encode():
        # What a real-time client does: 80 ms pieces (6 frames at 75 Hz) as they arrive; each
        # push recomputes the encoder's history, so this is slower than one whole-signal call.
        stream = tok.stream_encoder(num_quantizers=levels)
        piece = round(0.08 * tok.sample_rate)
        for i in range(0, x.shape[-1], piece):
            stream.push(x[..., i : i + piece])
        return stream.flush()

    ops = {
        ("ours", "encode"): lambda: tok.encode(x, num_quantizers=levels),
        ("ours", "stream-encode 80 ms"): run_stream_encode,
        ("ours", "decode"): lambda: tok.decode(codes, length=x.shape[-1]),
        ("encodec", "encode"): lambda: encodec.encode(x_encodec, bandwidth=args.kbps),
        ("encodec", "decode"): run_encodec_decode,
    }
    times: dict[tuple[str, str], list[float]] = {key: [] for key in ops}
    with torch.inference_mode():
        for round_ in range(args.warmup + args.repeats):
            for key, fn in ops.items():
                start = time.perf_counter()
                fn()
                if round_ >= args.warmup:
                    times[key].append(time.perf_counter() - start)
    rows = []
    for (model, op), ts in times.items():
        median = statistics.median(ts)
        rows.append({"model": model, "op": op, "median_s": median, "min_s": min(ts), "max_s": max(ts),
                     "x_realtime": args.seconds / median})
    return {
        "rows": rows, "seconds": args.seconds, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "ours": {"levels": levels, "kbps": tok.kbps(levels), "parameters": sum(p.numel() for p in tok.parameters())},
        "encodec": {"bandwidth": args.kbps, "codebooks": encodec_books, "kbps": encodec_kbps,
                    "parameters": sum(p.numel() for p in encodec.parameters())},
    }


def child_make_audio(args: argparse.Namespace) -> dict:
    """Write `--length` seconds to `--path` (FLAC, 16-bit) block by block: corpus clips from
    --data one after another, repeated; synthetic audio when there are none."""
    import numpy as np
    import soundfile as sf

    clips = sorted(args.data.glob("*.flac")) if args.data.is_dir() else []
    clips = [c for c in clips if (i := sf.info(str(c))).samplerate == FILE_RATE and i.channels == 1]
    total, written, n = round(args.length * FILE_RATE), 0, 0
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(args.path), "w", FILE_RATE, 1, subtype="PCM_16", format="FLAC") as f:
        while written < total:
            if clips:
                block = sf.read(str(clips[n % len(clips)]), dtype="float32")[0]
            else:
                t = np.arange(10 * FILE_RATE) / FILE_RATE
                block = (0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(0.6 * np.pi * t)) * t) + 0.01 * rng.standard_normal(t.shape))
            block = block[: total - written].astype("float32")
            f.write(block)
            written += block.shape[0]
            n += 1
    return {"path": str(args.path), "seconds": written / FILE_RATE, "bytes": args.path.stat().st_size,
            "source": f"{len(clips)} clips of {args.data}, repeated" if clips else "synthetic"}


def child_memory(args: argparse.Namespace, mode: str) -> dict:
    torch, tok = _setup(args)
    from mmtok.audio.files import decode_audio, encode_audio
    from mmtok.tokens_file import TokenFile

    levels = tok.levels_for(kbps=args.kbps)
    g = torch.Generator().manual_seed(0)
    seconds = args.length
    if mode == "baseline":
        def run():
            return None
    elif mode == "encode_file":
        def run():
            encode_audio(tok, args.path, levels).save(args.tokens)
    elif mode == "decode_file":
        def run():
            decode_audio(tok, TokenFile.load(args.tokens), args.path)
    elif mode == "encode_whole":
        x = test_signal(torch, seconds, tok.sample_rate, tok.channels)

        def run():
            tok.encode(x, num_quantizers=levels)
    elif mode == "decode_whole":
        frames = tok.num_frames(round(seconds * tok.sample_rate))
        codes = torch.randint(0, tok.codebook_size, (1, levels, frames), generator=g)

        def run():
            tok.decode(codes, length=round(seconds * tok.sample_rate))
    else:
        raise SystemExit(f"error: unknown measurement {mode}")
    return {"mode": mode, "seconds_audio": seconds, **measure_peak(run)}


# -- driver (standard library only) ----------------------------------------------------------
def spawn(args: argparse.Namespace, child: str, **extra) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child, "--tokenizer", str(args.tokenizer),
           "--threads", str(args.threads), "--kbps", str(args.kbps), "--seconds", str(args.seconds),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--data", str(args.data)]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"error: measurement '{child}' failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def run_speed(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    speed = spawn(args, "speed")
    ours, encodec = speed["ours"], speed["encodec"]
    print(f"\nSpeed on {args.seconds:g} s of audio (torch {speed['torch']}, {speed['threads']} threads, median of {args.repeats} "
          f"after {args.warmup} warm-up, interleaved; {time.perf_counter() - start:.0f}s): ours {ours['levels']} levels = "
          f"{ours['kbps']:g} kbps, {ours['parameters'] / 1e6:.2f} M parameters; EnCodec bandwidth={encodec['bandwidth']:g} -> "
          f"{encodec['codebooks']} codebooks = {encodec['kbps']:g} kbps, {encodec['parameters'] / 1e6:.2f} M parameters\n")
    print("| model | operation | x real-time | ms per s of audio | min-max s |")
    print("|---|---|---:|---:|---:|")
    by = {(r["model"], r["op"]): r for r in speed["rows"]}
    for r in speed["rows"]:
        name = args.tokenizer.resolve().name if r["model"] == "ours" else "EnCodec 24 kHz (transformers)"
        print(f"| {name} | {r['op']} | {r['x_realtime']:.1f} | {1000 * r['median_s'] / args.seconds:.1f} "
              f"| {r['min_s']:.3f}-{r['max_s']:.3f} |")
    speed["ratio_ours_over_encodec"] = {}
    for op in ("encode", "decode"):
        ratio = by[("ours", op)]["x_realtime"] / by[("encodec", op)]["x_realtime"]
        speed["ratio_ours_over_encodec"][op] = ratio
        print(f"{op}: ours / EnCodec speed = {ratio:.2f}x")
    return speed


def run_memory(args: argparse.Namespace) -> dict:
    lengths = [60 * m for m in args.whole_minutes] + [3600 * args.hours]
    tmp = Path(tempfile.mkdtemp(prefix="mmtok-audio-speed-", dir=args.tmp_dir))
    results: list[dict] = []
    try:
        print("measuring baseline ...", file=sys.stderr, flush=True)
        results.append({"label": "baseline: imports + model load", **spawn(args, "memory_baseline", length=0)})
        for seconds in lengths:
            audio, tokens, decoded = tmp / f"long_{seconds:g}.flac", tmp / f"long_{seconds:g}.mmtok", tmp / f"long_{seconds:g}_decoded.wav"
            print(f"writing {describe(seconds)} of audio to {audio} ...", file=sys.stderr, flush=True)
            made = spawn(args, "make_audio", length=seconds, path=audio)
            print(f"measuring encode_audio / decode_audio on {describe(seconds)} ...", file=sys.stderr, flush=True)
            results.append({"label": f"encode_audio (file path), {describe(seconds)}", "file_bytes": made["bytes"], "audio_source": made["source"],
                            **spawn(args, "memory_encode_file", length=seconds, path=audio, tokens=tokens)})
            audio.unlink()
            results.append({"label": f"decode_audio (file path), {describe(seconds)}", "token_file_bytes": tokens.stat().st_size,
                            **spawn(args, "memory_decode_file", length=seconds, path=decoded, tokens=tokens)})
            tokens.unlink()
            decoded.unlink()
        for seconds in lengths[:-1]:
            print(f"measuring whole-signal encode / decode on {describe(seconds)} ...", file=sys.stderr, flush=True)
            results.append({"label": f"tok.encode (whole signal), {describe(seconds)}", **spawn(args, "memory_encode_whole", length=seconds)})
            results.append({"label": f"tok.decode (whole signal), {describe(seconds)}", **spawn(args, "memory_decode_whole", length=seconds)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = results[0]
    print(f"\nPeak memory at {args.kbps:g} kbps (fresh process each; baseline = RSS after imports + model load (+ the input "
          f"tensor for the whole-signal rows), {base['baseline_mib']:.0f} MiB; load itself peaked at {base['load_peak_mib']:.0f} MiB)\n")
    print("| operation | peak RSS (MiB) | peak above baseline (MiB) | wall time (s) | x real-time |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {base['label']} | {base['load_peak_mib']:.0f} | - | - | - |")
    for r in results[1:]:
        bound = "" if r["exact"] else " (upper bound)"
        print(f"| {r['label']} | {r['peak_mib']:.0f} | {r['peak_above_baseline_mib']:.0f}{bound} | {r['wall_s']:.1f} "
              f"| {r['seconds_audio'] / r['wall_s']:.1f} |")
    return {"lengths_seconds": lengths, "rows": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "speed":
        print(json.dumps(child_speed(args)))
        return 0
    if args.child == "make_audio":
        print(json.dumps(child_make_audio(args)))
        return 0
    if args.child:
        print(json.dumps(child_memory(args, args.child.removeprefix("memory_"))))
        return 0
    if not (args.tokenizer / "config.json").is_file():
        raise SystemExit(f"error: {args.tokenizer}: no config.json; pass a tokenizer folder saved with save_pretrained")

    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"command: {command}")
    print(f"{args.tokenizer}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, threads={args.threads}, "
          f"load average {os.getloadavg()[0]:.2f} (other jobs skew absolute times)")
    results: dict = {"command": command, "tokenizer": str(args.tokenizer), "threads": args.threads, "kbps": args.kbps,
                     "load_average": os.getloadavg()[0]}
    if not args.skip_speed:
        results["speed"] = run_speed(args)
    if not args.skip_memory:
        results["memory"] = run_memory(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(args.json)  # no half-written results file
    return 0


if __name__ == "__main__":
    sys.exit(main())
