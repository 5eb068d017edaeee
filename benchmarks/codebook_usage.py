"""Codebook usage of an image tokenizer over its training images and its held-out images.

A held-out set is often too small to show usage: 80 images at f16 hold ~21k codes, a third
of a 64,000-code codebook. So this counts usage on both sides of the recipe's split, with the
share a uniform draw of as many codes would reach (1 - exp(-n / K)) as the ceiling to read it
against.

    python benchmarks/codebook_usage.py --tokenizer tokenizers_trained/mmtok-image-f16 \
        --data ../shared/corpus/images --recipe tokenizers_trained/mmtok-image-f16/recipe.yaml
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

import mmtok
from mmtok.eval.selection import heldout_files
from mmtok.files import expand_inputs
from mmtok.media.image import IMAGE_SUFFIXES, read_image, to_model


def usage(tok, files: list[Path]) -> dict[str, float]:
    """Codes drawn, distinct codes, usage, perplexity and the uniform-draw ceiling over `files`."""
    size = tok.codebook_sizes[0]
    counts = torch.zeros(size, dtype=torch.long)
    with torch.no_grad():
        for f in files:
            codes = tok.encode(to_model(read_image(f))[None]).flatten()
            counts += torch.bincount(codes, minlength=size)
    n = int(counts.sum())
    p = counts[counts > 0].double() / n
    return {"images": len(files), "codes": n, "used": int((counts > 0).sum()), "usage": float((counts > 0).float().mean()),
            "perplexity": float(torch.exp(-(p * p.log()).sum())), "uniform_ceiling": 1 - math.exp(-n / size)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--data", type=Path, required=True, help="the image folder the recipe was trained on")
    p.add_argument("--recipe", type=Path, required=True, help="recipe.yaml; its `exclude` globs are the held-out set")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    tok = mmtok.load(args.tokenizer).eval()
    files = sorted(expand_inputs([args.data], IMAGE_SUFFIXES, "image"))
    held = set(heldout_files(files, args.recipe, "image"))
    print("| images | count | codes | codes used | usage | uniform draw would reach | perplexity |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, part in (("training", [f for f in files if f not in held]), ("held-out", sorted(held))):
        u = usage(tok, part)
        print(f"| {name} | {u['images']} | {u['codes']:,} | {u['used']:,} / {tok.codebook_sizes[0]:,} | {u['usage']:.1%} | "
              f"{u['uniform_ceiling']:.1%} | {u['perplexity']:,.0f} |")


if __name__ == "__main__":
    main()
