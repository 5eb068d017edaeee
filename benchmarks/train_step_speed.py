"""Training steps per second on CPU: the shipped recipe's patchify-stem architecture vs. a
naive full-resolution conv VQ-VAE with the same downsampling factor and codebook.

    python benchmarks/train_step_speed.py --recipe tokenizers_trained/mmtok-image-f8/recipe.yaml

Both models train on the same random batches (batch and crop size from the recipe) with
the same optimizer and loss as `mmtok train`; the script prints the median step time of each
after warm-up, measured alternately in one run, and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from mmtok.image import ImageVQ
from mmtok.train.recipe import load_recipe


def naive_config(config):
    """Same widths and f, but no pixel-unshuffle: every conv runs at full resolution."""
    levels = config.downsample.bit_length() - 1  # f = 2**levels
    mults = (1,) * (levels + 1 - len(config.channel_mult)) + tuple(config.channel_mult)
    return dataclasses.replace(config, patch_size=1, channel_mult=mults)


def step_time(model: ImageVQ, opt: torch.optim.Optimizer, batch: torch.Tensor) -> float:
    start = time.perf_counter()
    out = model(batch)
    loss = F.l1_loss(out["recon"], batch) + F.mse_loss(out["recon"], batch) + out["aux_loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=Path("tokenizers_trained/mmtok-image-f8/recipe.yaml"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # random-init convs otherwise run 10-30x slower on CPU
    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe, "image")
    cfg = recipe.train
    torch.manual_seed(0)
    models = {"patchify stem (recipe)": ImageVQ(recipe.model), "naive full-resolution": ImageVQ(naive_config(recipe.model))}
    opts = {name: torch.optim.AdamW(m.parameters(), lr=cfg.lr) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.warmup + args.steps):
        batch = torch.rand(cfg.batch_size, 3, cfg.crop_size, cfg.crop_size) * 2 - 1
        for name, model in models.items():  # alternate, so load changes hit both alike
            t = step_time(model, opts[name], batch)
            if i >= args.warmup:
                times[name].append(t)
    print(f"batch {cfg.batch_size} x {cfg.crop_size}x{cfg.crop_size}, {args.threads} threads, median of {args.steps} steps\n")
    print("| model | parameters | downsample | s / step | steps / s |")
    print("|---|---:|---:|---:|---:|")
    for name, model in models.items():
        med = statistics.median(times[name])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {params:.2f} M | {model.downsample} | {med:.3f} | {1 / med:.2f} |")
    a, b = (statistics.median(v) for v in times.values())
    print(f"\nnaive / patchify step time: {b / a:.1f}x")


if __name__ == "__main__":
    main()
