"""Speed and memory of an image tokenizer on CPU.

1. Throughput: encode and decode images/s at 256x256 for batch sizes 1 and 16 (median of
   --repeats timed runs after --warmup untimed ones).
2. Peak memory of a 4000x3000 image: `encode_image` / `decode_image` (tiled above 1 MP) vs. a
   naive `tok.encode` / `tok.decode` of the whole image. Each measurement runs in a fresh
   subprocess and reports the RSS high-water mark (`resource.getrusage`) minus the RSS after
   the tokenizer and the input were loaded.

    python benchmarks/image_speed.py --tokenizer runs/mmtok-image-f8 --threads 2

This driver imports only the standard library: a child process inherits its parent's
ru_maxrss across fork/exec on Linux, so a driver holding torch and a model would inflate
every child's high-water mark. All torch work happens in the children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

MEMORY_MODES = ("encode_tiled", "encode_naive", "decode_tiled", "decode_naive")
MODE_LABELS = {
    "encode_tiled": ("encode", "encode_image (tiled)"),
    "encode_naive": ("encode", "tok.encode whole image"),
    "decode_tiled": ("decode", "decode_image (tiled)"),
    "decode_naive": ("decode", "tok.decode whole image"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every measurement")
    p.add_argument("--size", type=int, default=256, help="side of the square throughput images")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per throughput figure (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    p.add_argument("--big", default="4000x3000", help="WIDTHxHEIGHT of the memory test image")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-naive", action="store_true", help="measure only the tiled paths (the naive ones need GBs)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--child", choices=("throughput", *MEMORY_MODES), help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- children (torch lives here) -----------------------------------------------------------
def _setup(args: argparse.Namespace):
    import torch

    import mmtok

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    return torch, mmtok.load(args.tokenizer)


def child_throughput(args: argparse.Namespace) -> dict:
    torch, tok = _setup(args)
    g = torch.Generator().manual_seed(0)
    rows = []
    for batch in args.batch_sizes:
        x = torch.rand(batch, 3, args.size, args.size, generator=g) * 2 - 1
        codes = tok.encode(x)
        # Default arguments bind this batch's tensors (a bare closure would see the loop variable).
        for op, fn in (("encode", lambda x=x: tok.encode(x)), ("decode", lambda c=codes: tok.decode(c))):
            for _ in range(args.warmup):
                fn()
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            rows.append({"op": op, "batch": batch, "median_s": median, "images_per_s": batch / median,
                         "min_s": min(times), "max_s": max(times)})
    return {"rows": rows, "torch": torch.__version__, "threads": torch.get_num_threads()}


def _rss_kib() -> int | None:
    """Current resident set size in KiB (Linux), or None where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def child_memory(args: argparse.Namespace, mode: str) -> dict:
    import gc
    import resource

    torch, tok = _setup(args)
    from mmtok.image.files import decode_image, encode_image
    from mmtok.media.image import from_model, to_model
    from mmtok.tokens_file import TokenFile

    width, height = map(int, args.big.lower().split("x"))
    g = torch.Generator().manual_seed(0)
    # Content does not change the memory of a convolutional model; noise avoids reading a file.
    if mode.startswith("encode"):
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g)
        run = ((lambda: encode_image(tok, image)) if mode == "encode_tiled"
               else (lambda: tok.encode(to_model(image)[None])))
    else:
        codes = torch.randint(0, tok.codebook_sizes[0], tok.grid_shape(height, width), generator=g)
        tokens = TokenFile.from_codes(tok, codes, {"height": height, "width": width})
        run = ((lambda: decode_image(tok, tokens)) if mode == "decode_tiled"
               else (lambda: from_model(tok.decode(codes[None], (height, width))[0])))
    gc.collect()
    high_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    baseline = _rss_kib() or high_before
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    high_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode, "seconds": seconds, "baseline_mib": baseline / 1024,
        "peak_above_baseline_mib": (high_after - baseline) / 1024,
        # If loading peaked higher than the operation, the high-water mark did not move and the
        # figure is only an upper bound of the operation's own peak.
        "exact": high_after > high_before,
    }


# -- driver (standard library only) ----------------------------------------------------------
def spawn(args: argparse.Namespace, child: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child, "--tokenizer", str(args.tokenizer),
           "--threads", str(args.threads), "--size", str(args.size), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--big", args.big, "--batch-sizes", *map(str, args.batch_sizes)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"error: measurement '{child}' failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child == "throughput":
        print(json.dumps(child_throughput(args)))
        return 0
    if args.child:
        print(json.dumps(child_memory(args, args.child)))
        return 0
    if not (args.tokenizer / "config.json").is_file():
        raise SystemExit(f"error: {args.tokenizer}: no config.json; pass a tokenizer folder saved with save_pretrained")

    print(f"{args.tokenizer}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"threads={args.threads}, load average {os.getloadavg()[0]:.2f} (other jobs skew absolute times)")
    results: dict = {"tokenizer": str(args.tokenizer), "threads": args.threads, "load_average": os.getloadavg()[0]}

    start = time.perf_counter()
    speed = spawn(args, "throughput")
    results["throughput"] = speed
    print(f"\nThroughput at {args.size}x{args.size} (torch {speed['torch']}, {speed['threads']} threads, "
          f"median of {args.repeats} after {args.warmup} warm-up; {time.perf_counter() - start:.0f}s)\n")
    print("| operation | batch | images/s | ms/image | min-max ms/batch |")
    print("|---|---:|---:|---:|---:|")
    for r in speed["rows"]:
        print(f"| {r['op']} | {r['batch']} | {r['images_per_s']:.2f} | {1000 * r['median_s'] / r['batch']:.1f} "
              f"| {1000 * r['min_s']:.0f}-{1000 * r['max_s']:.0f} |")

    if not args.skip_memory:
        modes = [m for m in MEMORY_MODES if not (args.skip_naive and m.endswith("naive"))]
        memory = {}
        for mode in modes:
            print(f"measuring {mode} at {args.big} ...", file=sys.stderr, flush=True)
            memory[mode] = spawn(args, mode)
        results["memory"] = memory
        print(f"\nPeak memory above baseline, {args.big} image (fresh process each; baseline = RSS after "
              f"loading tokenizer and input, {memory[modes[0]]['baseline_mib']:.0f} MiB for {modes[0]})\n")
        print("| operation | path | peak above baseline (MiB) | time (s) |")
        print("|---|---|---:|---:|")
        for mode in modes:
            m = memory[mode]
            op, path = MODE_LABELS[mode]
            bound = "" if m["exact"] else " (upper bound)"
            print(f"| {op} | {path} | {m['peak_above_baseline_mib']:.0f}{bound} | {m['seconds']:.1f} |")
        for op in ("encode", "decode"):
            tiled, naive = memory.get(f"{op}_tiled"), memory.get(f"{op}_naive")
            if tiled and naive and tiled["peak_above_baseline_mib"] > 0:
                print(f"{op}: naive / tiled peak memory = "
                      f"{naive['peak_above_baseline_mib'] / tiled['peak_above_baseline_mib']:.1f}x, "
                      f"time = {naive['seconds'] / tiled['seconds']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(args.json)  # no half-written results file
    return 0


if __name__ == "__main__":
    sys.exit(main())
