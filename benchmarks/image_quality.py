"""Reconstruction quality of an image tokenizer vs. patch k-means at the same bit rate.

Evaluates the tokenizer on the held-out images of its recipe (files matching the recipe's
`exclude` globs, at their native size), fits `PatchKMeans` on the training images with the
tokenizer's codebook size and downsampling factor (same token grid, same bits per pixel),
evaluates it on the same images, and writes results.json, recon_grid.png and
codebook_usage.png into --out.

    python benchmarks/image_quality.py --tokenizer runs/mmtok-image-f8 \
        --data ../shared/corpus/images \
        --recipe tokenizers_trained/mmtok-image-f8/recipe.yaml --out runs/bench-quality
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import mmtok
from mmtok.errors import MmtokError
from mmtok.eval.image_report import (
    evaluate_image_tokenizer,
    save_codebook_usage_plot,
    save_reconstruction_grid,
)
from mmtok.eval.kmeans_baseline import PatchKMeans
from mmtok.eval.selection import heldout_in, spread
from mmtok.files import atomic_write
from mmtok.media.image import IMAGE_SUFFIXES, read_image
from mmtok.train.image_data import training_files
from mmtok.train.recipe import load_recipe

BASELINE = "patch k-means"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokenizer", required=True, type=Path, help="tokenizer folder (config.json, model.safetensors)")
    p.add_argument("--data", required=True, type=Path, help="image folder the recipe was trained on")
    p.add_argument("--recipe", required=True, type=Path, help="recipe.yaml; its `exclude` globs are the held-out set")
    p.add_argument("--out", required=True, type=Path, help="folder for results.json and the pictures")
    p.add_argument("--limit", type=int, default=None, help="evaluate only N held-out images (evenly spread)")
    p.add_argument("--kmeans-patches", type=int, default=200_000, help="training patches sampled for k-means")
    p.add_argument("--kmeans-iters", type=int, default=20, help="Lloyd iterations")
    p.add_argument("--kmeans-init", choices=["k-means++", "random"], default="k-means++")
    p.add_argument("--grid-images", type=int, default=4, help="rows of recon_grid.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return p.parse_args(argv)


def split(data: Path, recipe: Path) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files), by the same exclude rule the training loop used."""
    heldout = heldout_in(data, recipe, "image", IMAGE_SUFFIXES)
    train = training_files(data, load_recipe(recipe, "image").train.exclude)
    return train, heldout


def grid_choice(files: list[Path], n: int) -> list[Path]:
    """Up to `n` images for the picture, one per source, whole images first."""
    def source(f: Path) -> str:
        return f.stem.rsplit("_", 1)[0]

    chosen: list[Path] = []
    for f in sorted(files, key=lambda f: not f.stem.endswith("_full")):
        if len(chosen) < n and source(f) not in {source(c) for c in chosen}:
            chosen.append(f)
    return chosen


def table(reports: dict[str, dict]) -> str:
    lines = [
        "| method | PSNR median (dB) | PSNR mean (dB) | SSIM median | SSIM mean | usage | perplexity | bpp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in reports.items():
        lines.append(
            f"| {name} | {s['psnr_median']:.2f} | {s['psnr_mean']:.2f} | {s['ssim_median']:.4f} | {s['ssim_mean']:.4f} "
            f"| {s['usage']:.1%} | {s['perplexity']:.0f} | {s['bpp']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_flush_denormal(True)  # denormals make CPU convolutions erratically slow
    if args.threads:
        torch.set_num_threads(args.threads)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    tok = mmtok.load(args.tokenizer)
    if tok.modality != "image":
        raise MmtokError(f"{args.tokenizer}: a {tok.modality} tokenizer; this benchmark needs an image tokenizer")
    train, heldout = split(args.data, args.recipe)
    evaluated = spread(heldout, args.limit)
    timings["load"] = time.perf_counter() - start
    k, f = tok.codebook_sizes[0], tok.downsample
    name = args.tokenizer.resolve().name
    print(f"{name}: K={k}, f={f}; {len(train)} training images, {len(heldout)} held out, evaluating {len(evaluated)}")

    keep = [p.name for p in grid_choice(evaluated, args.grid_images)]
    start = time.perf_counter()
    tok_report = evaluate_image_tokenizer(tok, evaluated, keep=keep, desc=name)
    timings["evaluate_tokenizer"] = time.perf_counter() - start

    start = time.perf_counter()
    train_images = [read_image(p) for p in tqdm(train, desc="read training images", unit="img")]
    timings["read_training_images"] = time.perf_counter() - start
    start = time.perf_counter()
    km = PatchKMeans(k, f).fit(train_images, max_patches=args.kmeans_patches, iters=args.kmeans_iters,
                               seed=args.seed, init=args.kmeans_init)
    del train_images
    timings["fit_kmeans"] = time.perf_counter() - start
    print(f"k-means: {args.kmeans_iters} iterations, mean squared patch error "
          f"{km.inertia[0]:.4f} -> {km.inertia[-1]:.4f}" if km.inertia else "k-means: no iterations")
    start = time.perf_counter()
    km_report = evaluate_image_tokenizer(km, evaluated, keep=keep, desc=BASELINE)
    timings["evaluate_kmeans"] = time.perf_counter() - start

    summaries = {name: tok_report.summary, BASELINE: km_report.summary}
    diffs = [a["psnr"] - b["psnr"] for a, b in zip(tok_report.per_image, km_report.per_image, strict=True)]
    comparison = {
        "psnr_diff_median": statistics.median(diffs), "psnr_diff_mean": statistics.fmean(diffs),
        "tokenizer_better_on": sum(d > 0 for d in diffs), "images": len(diffs),
    }
    print()
    print(table(summaries))
    print(f"\nPSNR {name} - {BASELINE}: median {comparison['psnr_diff_median']:+.2f} dB, "
          f"mean {comparison['psnr_diff_mean']:+.2f} dB; {name} better on "
          f"{comparison['tokenizer_better_on']}/{comparison['images']} images")

    start = time.perf_counter()
    out = args.out
    originals = [read_image(p) for p in evaluated if p.name in keep]
    names = [p.name for p in evaluated if p.name in keep]
    save_reconstruction_grid(originals, {name: [tok_report.kept[n] for n in names],
                                         BASELINE: [km_report.kept[n] for n in names]},
                             out / "recon_grid.png", row_titles=names)
    save_codebook_usage_plot({name: tok_report.counts, BASELINE: km_report.counts}, out / "codebook_usage.png")
    results = {
        "tokenizer": {"path": str(args.tokenizer), "kind": tok.kind, "fingerprint": tok.fingerprint,
                      "codebook_size": k, "downsample": f},
        "data": str(args.data), "recipe": str(args.recipe),
        "training_images": len(train), "heldout_images": len(heldout), "evaluated": [p.name for p in evaluated],
        "kmeans": {"patches": args.kmeans_patches, "iters": args.kmeans_iters, "init": args.kmeans_init,
                   "seed": args.seed, "inertia": km.inertia},
        "methods": {name: tok_report.to_dict(), BASELINE: km_report.to_dict()},
        "comparison": comparison, "timings_seconds": timings, "threads": torch.get_num_threads(),
    }
    atomic_write(out / "results.json", lambda tmp: tmp.write_text(json.dumps(results, indent=2)))
    timings["write_outputs"] = time.perf_counter() - start
    print("\ntimings: " + ", ".join(f"{key} {value:.1f}s" for key, value in timings.items()))
    print(f"wrote {out / 'results.json'}, {out / 'recon_grid.png'}, {out / 'codebook_usage.png'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MmtokError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
