"""End-to-end encode throughput of the shipped tokenizers, before and after a change, in one run.

    python benchmarks/encode_throughput.py --before 708bb2a --threads 2

"before" is the package as it was at git revision `--before` (exported with `git archive`
into a temp folder), "after" the working tree. Both encode the same files with the same
tokenizer folders through the public file API that `mmtok encode` uses
(`encode_image_files`, `encode_audio_files` at `--kbps`, `encode_video_files`): reading and
decoding the media, encoding, writing token files. Each measurement is a fresh Python process
(imports and model loading are not timed; one untimed warm-up pass, then the mean of
`--passes` passes over the files), and the rounds
alternate before / after so machine load hits both alike; the median of `--repeats` rounds is
reported as images/s, x real time (seconds of audio per second) and video frames/s, and the
token files of both sides are checked to hold identical codes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("image", "audio", "video")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="708bb2a", help="git revision to compare with (default: before issue 6)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--image-tokenizer", type=Path, default=ROOT / "tokenizers_trained/mmtok-image-f8")
    p.add_argument("--audio-tokenizer", type=Path, default=ROOT / "tokenizers_trained/mmtok-audio-24k")
    p.add_argument("--video-tokenizer", type=Path, default=ROOT / "tokenizers_trained/mmtok-video-f8t4")
    p.add_argument("--images", type=Path, default=ROOT / "tests/media/images")
    p.add_argument("--audio", type=Path, default=ROOT / "tests/media/audio")
    p.add_argument("--video", type=Path, default=ROOT / "tests/media/video")
    p.add_argument("--kbps", type=float, default=6.0, help="audio bitrate (6 = all 8 levels of the shipped codec)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="alternating rounds (fresh processes)")
    p.add_argument("--passes", type=int, default=10, help="timed passes over the files per process (short inputs time poorly)")
    p.add_argument("--json", type=Path, help="also write the results here")
    # internal: one measurement in a child process
    p.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--package-root", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- child: one timed pass ---------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(args.package_root))
    import time

    import torch

    import mmtok

    assert Path(mmtok.__file__).resolve().is_relative_to(args.package_root.resolve()), mmtok.__file__
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    kind = args.child
    tok = mmtok.load(getattr(args, f"{kind}_tokenizer"))
    data = {"image": args.images, "audio": args.audio, "video": args.video}[kind]
    if kind == "image":
        from mmtok.image.files import encode_image_files as encode
        run = lambda out: encode(tok, [data], out)  # noqa: E731
    elif kind == "audio":
        from mmtok.audio.files import encode_audio_files as encode
        levels = tok.levels_for(kbps=args.kbps)
        run = lambda out: encode(tok, [data], out, levels=levels)  # noqa: E731
    else:
        from mmtok.video.files import encode_video_files as encode
        run = lambda out: encode(tok, [data], out)  # noqa: E731
    run(args.out / "warmup")
    start = time.perf_counter()
    for i in range(args.passes):
        written = run(args.out / f"timed{i}")
    seconds = (time.perf_counter() - start) / args.passes
    units = 0.0
    codes = {}
    from mmtok.tokens_file import TokenFile

    for path in written:
        tokens = TokenFile.load(path)
        codes[path.name] = tokens.codes.reshape(-1).tolist()
        if kind == "image":
            units += 1
        elif kind == "audio":
            units += tokens.original["num_samples"] / tokens.original["sample_rate"]
        else:
            units += tokens.original["num_frames"]
    print(json.dumps({"seconds": seconds, "units": units, "files": len(written), "codes": codes}))


# -- driver ------------------------------------------------------------------------------------
def measure(kind: str, package_root: Path, args: argparse.Namespace, tmp: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [sys.executable, __file__, "--child", kind, "--package-root", str(package_root), "--out", str(out),
           "--threads", str(args.threads), "--kbps", str(args.kbps), "--passes", str(args.passes),
           f"--{kind}-tokenizer", str(getattr(args, f"{kind}_tokenizer")),
           {"image": "--images", "audio": "--audio", "video": "--video"}[kind],
           str({"image": args.images, "audio": args.audio, "video": args.video}[kind])]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(package_root)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child ({package_root}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args)
        return 0
    unit = {"image": "images/s", "audio": "x real time", "video": "frames/s"}
    with tempfile.TemporaryDirectory(prefix="mmtok-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        before_root = tmp / "before"
        before_root.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before, "mmtok"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before_root)], input=archive.stdout, check=True)
        sides = {"before": before_root, "after": ROOT}
        report = {}
        print(f"encode throughput, {args.threads} threads, median of {args.repeats} alternating rounds; "
              f"before = {args.before}, after = working tree")
        for kind in args.kinds:
            rates: dict[str, list[float]] = {"before": [], "after": []}
            codes = {}
            for _ in range(args.repeats):
                for side, root in sides.items():
                    result = measure(kind, root, args, tmp)
                    rates[side].append(result["units"] / result["seconds"])
                    codes[side] = result["codes"]
            before, after = (statistics.median(rates[s]) for s in ("before", "after"))
            positions = sum(len(c) for c in codes["after"].values())
            same = sum(sum(a == b for a, b in zip(codes["before"][name], c)) for name, c in codes["after"].items())
            report[kind] = {"unit": unit[kind], "before": before, "after": after, "speedup": after / before,
                            "all": rates, "files": len(codes["after"]), "codes_identical": same / positions}
            print(f"{kind:6s} {before:8.2f} -> {after:8.2f} {unit[kind]:12s} ({after / before:.2f}x); "
                  f"{len(codes['after'])} files, codes identical on {same}/{positions} positions")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
