"""Throughput of `mmtok pretokenize` (the whole pipeline) vs. the tokenizer's raw encode on the
same items, and a kill -9 / resume run.

    python benchmarks/pretokenize_speed.py --threads 2 --out runs/bench-pretokenize

Items (made under `--out/data`, from files every clone has):
- images: `--crops-per-size` random crops of each `--sizes` (default 256x256, 192x256,
  256x192; 32 each) from `--images` (default tests/media/images, 4 photos), saved as JPEG q95;
- audio: `--clips` clips of `--clip-seconds` cut from `--audio` (default tests/media/audio),
  saved as FLAC; left out with `--audio-tokenizer none`.
An extended LLM: the tiny Llama of `mmtok.llm.tiny` extended with the tokenizers.

Each measurement runs in a fresh process (`torch.set_num_threads(--threads)`,
`set_flush_denormal`), as `mmtok pretokenize` does; imports and loading the vocab,
tokenizers and LLM tokenizer are not timed. Every run once per round, in turn (a busy moment
of the machine hits all alike); the median of `--repeats` rounds:
- raw: the tokenizer alone on already-decoded tensors, after one warm-up call: images
  grouped by size and encoded `--batch-size` at a time (`encode_batch`, what the pipeline
  calls), audio item by item through `encode_chunked` (the chunked path);
- decode only: reading the files into tensors as the pipeline's workers do (`ItemReader`),
  for scale: what `--workers` can take off the main process;
- pipeline: `mmtok.llm.pretokenize.pretokenize` into a fresh folder with `--workers` 0, 1, 2
  decoding processes: listing, decoding, encoding, building ids (BOS / EOS included),
  writing shards and state; no warm-up (the command has none either).
- kill / resume: `mmtok pretokenize` on the images as a subprocess (`--shard-items 4`,
  `--workers 1`, OMP_NUM_THREADS=--threads), SIGKILLed once its state records a committed
  shard, then run again; item counts before and after, duplicates, and whether every item's
  ids equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image-tokenizer", type=Path, default=REPO / "tokenizers_trained/mmtok-image-f8")
    p.add_argument("--audio-tokenizer", default=str(REPO / "tokenizers_trained/mmtok-audio-24k"), help="folder, or 'none'")
    p.add_argument("--images", type=Path, default=REPO / "tests/media/images", help="photos to crop items from")
    p.add_argument("--audio", type=Path, default=REPO / "tests/media/audio", help="audio files to cut clips from")
    p.add_argument("--sizes", nargs="+", default=["256x256", "192x256", "256x192"], help="HxW of the image crops")
    p.add_argument("--crops-per-size", type=int, default=32)
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--clip-seconds", type=float, default=3.0)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="rounds; each run is timed once per round")
    p.add_argument("--skip-kill", action="store_true")
    p.add_argument("--out", type=Path, default=Path("runs/bench-pretokenize"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--modality", help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--vocab-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--run-out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- items ----------------------------------------------------------------------------------------
def make_images(args: argparse.Namespace, folder: Path) -> None:
    from mmtok.media.image import IMAGE_SUFFIXES, read_image, write_image

    photos = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        h, w = map(int, size.lower().split("x"))
        for i in range(args.crops_per_size):
            photo = read_image(photos[i % len(photos)])
            if photo.shape[1] < h or photo.shape[2] < w:
                raise SystemExit(f"error: {photos[i % len(photos)]} is smaller than the {size} crop; pick smaller --sizes")
            top, left = rng.integers(0, photo.shape[1] - h + 1), rng.integers(0, photo.shape[2] - w + 1)
            write_image(photo[:, top : top + h, left : left + w].contiguous(), folder / f"{size}_{i:03d}.jpg")


def make_clips(args: argparse.Namespace, folder: Path, tok) -> None:
    from mmtok.media.audio import AUDIO_SUFFIXES, read_audio, write_audio

    sources = [read_audio(p, tok.sample_rate, tok.channels) for p in sorted(args.audio.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES]
    length = round(args.clip_seconds * tok.sample_rate)
    pieces = [(s, start) for s in sources for start in range(0, s.shape[-1] - length + 1, length)]
    if not pieces:
        raise SystemExit(f"error: no audio in {args.audio} is {args.clip_seconds} s long; lower --clip-seconds")
    for i in range(args.clips):
        source, start = pieces[i % len(pieces)]
        write_audio(folder / f"clip_{i:03d}.flac", source[:, start : start + length], tok.sample_rate)


# -- measurements: each in a fresh process, as `mmtok pretokenize` runs ---------------------------
def child(args: argparse.Namespace) -> dict:
    """One timed measurement (`--child`): `raw`, `decode` or `wN` (the pipeline, N workers).

    Imports and loading the vocab, tokenizers and LLM tokenizer are not timed (the kill /
    resume run shows the command's start-up). A fresh process matters for the pipeline:
    forking DataLoader workers from a process whose heap is already large (earlier encodes)
    makes every page it touches afterwards a copy-on-write fault, a one-off cost a real run
    does not pay at that size."""
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    from mmtok.llm.item_reader import ItemReader
    from mmtok.llm.items import load_dataset
    from mmtok.llm.pretokenize import pretokenize
    from mmtok.llm.vocab import MediaVocab
    from mmtok.modalities import named

    vocab = MediaVocab.load(args.vocab_dir)
    tok = vocab.tokenizer(args.modality)
    readings = {s.name: named(s.modality).reading(vocab.tokenizer(s.name)) for s in vocab.streams}
    reader = ItemReader(load_dataset(args.folder, vocab).items, 0, readings)
    if args.child == "decode":
        run = lambda: [reader[i] for i in range(len(reader))]
    elif args.child == "raw":
        decoded = [reader[i].parts[0].held.data for i in range(len(reader))]
        run = raw_encode(tok, decoded, args.batch_size, vocab.stream(args.modality).options.levels)
        run()  # warm-up: the tokenizer's steady state
    else:
        vocab.text_tokenizer  # noqa: B018 -- loaded at start-up by the command too
        shutil.rmtree(args.run_out, ignore_errors=True)
        run = lambda: pretokenize(args.folder, vocab, args.run_out, workers=int(args.child[1:]), batch_size=args.batch_size,
                                  progress=False)
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    if args.child.startswith("w"):
        assert result.failed == 0 and result.tokenized == result.items, result
    return {"seconds": seconds, "items": len(reader)}


def raw_encode(tok, decoded: list[torch.Tensor], batch_size: int, levels: int | None):
    """The tokenizer alone: images `[3,H,W]` uint8 in same-size batches (`encode_batch`, what
    the pipeline calls), audio `[C,T]` item by item through `encode_chunked`."""
    if tok.modality == "audio":
        return lambda: [tok.encode_chunked(x[None], levels) for x in decoded]
    from mmtok.image.files import encode_batch, same_size_batches

    groups = list(same_size_batches([tuple(im.shape[-2:]) for im in decoded], batch_size))
    return lambda: [encode_batch(tok, torch.stack([decoded[j] for j in g])) for g in groups]


def spawn(args: argparse.Namespace, run: str, modality: str, folder: Path, run_out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", run, "--modality", modality, "--folder", str(folder),
           "--vocab-dir", str(args.out / "vocab"), "--run-out", str(run_out), "--threads", str(args.threads),
           "--batch-size", str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TQDM_DISABLE="1"))
    if proc.returncode != 0:
        raise SystemExit(f"error: measurement {run} ({modality}) failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def kill_and_resume(args: argparse.Namespace, folder: Path, vocab_dir: Path, reference: Path, out: Path) -> dict:
    from mmtok.llm.shards import RankState, TokenShards

    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "mmtok"), "pretokenize", str(folder), "--vocab", str(vocab_dir), "-o", str(out),
           "--shard-items", "4", "--workers", "1", "--batch-size", str(args.batch_size)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    done = lambda: (RankState.load(out, 0).done if (out / "rank00000.state.json").is_file() else 0)
    while proc.poll() is None and done() == 0:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the command and its decoding worker
    proc.communicate()
    at_kill = TokenShards(out)
    killed = {"killed": proc.returncode == -signal.SIGKILL, "committed_at_kill": len(at_kill),
              "leftovers_at_kill": sorted(p.name for p in out.iterdir() if p.name.startswith("."))}
    start = time.perf_counter()
    resumed = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if resumed.returncode != 0:
        raise SystemExit(f"error: the resumed run failed: {resumed.stderr.strip().splitlines()[-1:]}")
    after, ref = TokenShards(out), TokenShards(reference)
    names = after.item_ids()
    ref_ids = {name: ref[i][0] for i, name in enumerate(ref.item_ids())}
    same = all(np.array_equal(after[i][0], ref_ids.get(name, np.zeros(0))) for i, name in enumerate(names))
    return {**killed, "resume_wall_s": time.perf_counter() - start, "resume_stdout": resumed.stdout.strip(),
            "items_after": len(after), "unique_after": len(set(names)), "items_expected": len(ref),
            "identical_to_uninterrupted": same and sorted(names) == sorted(ref_ids),
            "leftovers_after": sorted(p.name for p in out.iterdir() if p.name.startswith("."))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    import mmtok
    from mmtok.llm.extend import extend_llm
    from mmtok.llm.tiny import save_tiny_llm

    out = args.out
    for name in ("data", "llm", "vocab", "runs"):
        shutil.rmtree(out / name, ignore_errors=True)
    toks = {"image": mmtok.load(args.image_tokenizer)}
    if args.audio_tokenizer != "none":
        toks["audio"] = mmtok.load(args.audio_tokenizer)
    datasets = {"image": out / "data" / "images"}
    make_images(args, datasets["image"])
    if "audio" in toks:
        datasets["audio"] = out / "data" / "audio"
        make_clips(args, datasets["audio"], toks["audio"])
    extend_llm(save_tiny_llm(out / "llm"), toks, out / "vocab", allow_drift=True)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, threads={args.threads}, torch "
          f"{torch.__version__}, load average {os.getloadavg()[0]:.2f} (other jobs skew absolute times)")
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": []}
    names = {"raw": "raw encode (decoded tensors)", "decode": "decode only (no encode)",
             **{f"w{w}": f"pipeline, {w} workers" for w in args.workers}}
    for modality, folder in datasets.items():
        items = len(list(folder.iterdir()))
        print(f"measuring {modality}: {items} items, {len(names)} runs x {args.repeats} rounds ...", file=sys.stderr, flush=True)
        times: dict[str, list[float]] = {run: [] for run in names}
        for _ in range(args.repeats):  # every run once per round, in turn: a busy moment hits all alike
            for run in names:
                times[run].append(spawn(args, run, modality, folder, out / "runs" / f"{modality}-{run}")["seconds"])
        raw_rate = items / statistics.median(times["raw"])
        what = ", ".join(args.sizes) if modality == "image" else f"{args.clip_seconds:g} s clips"
        print(f"\n{modality}: {items} items ({what}), batch size {args.batch_size}, median of {args.repeats} (fresh process each)\n")
        print("| run | items/s | vs raw encode | min-max s |")
        print("|---|---:|---:|---:|")
        for run, spent in times.items():
            rate = items / statistics.median(spent)
            print(f"| {names[run]} | {rate:.2f} | {rate / raw_rate:.2f}x | {min(spent):.2f}-{max(spent):.2f} |")
            results["rows"].append({"modality": modality, "run": names[run], "items": items, "items_per_s": rate,
                                    "vs_raw": rate / raw_rate, "seconds": spent})

    if not args.skip_kill:
        print("measuring kill / resume ...", file=sys.stderr, flush=True)
        reference = out / "runs" / f"image-w{args.workers[0]}"
        kill = kill_and_resume(args, datasets["image"], out / "vocab", reference, out / "runs" / "kill")
        results["kill_resume"] = kill
        print(f"\nkill -9 / resume (`mmtok pretokenize`, --shard-items 4, --workers 1): killed={kill['killed']} with "
              f"{kill['committed_at_kill']} of {kill['items_expected']} items committed (leftovers {kill['leftovers_at_kill']}); "
              f"after resume: {kill['items_after']} items, {kill['unique_after']} unique, identical to the uninterrupted run: "
              f"{kill['identical_to_uninterrupted']}, leftovers {kill['leftovers_after']}; resume took {kill['resume_wall_s']:.1f} s "
              f"wall (start-up included)\n  {kill['resume_stdout']}")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
