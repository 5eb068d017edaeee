"""The training loop shared by every tokenizer kind, on HuggingFace accelerate.

`train_tokenizer(recipe, data, out)` runs on CPU, one GPU, or data-parallel through
`accelerate launch` with no change. Output folder layout:

    OUT/config.json, model.safetensors, README.md   the trained tokenizer (save_pretrained)
    OUT/recipe.yaml                                 the recipe that produced it
    OUT/train_log.jsonl                             one line of figures every `log_every` steps
    OUT/checkpoints/last/                           exact-resume state (see train/state.py)
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from torch.nn import functional as F
from tqdm.auto import tqdm

from mmtok.errors import MmtokError
from mmtok.eval.metrics import codebook_usage, psnr
from mmtok.tokenizer import KINDS
from mmtok.train.image_data import crop_loader, training_files
from mmtok.train.losses import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from mmtok.train.recipe import Recipe
from mmtok.train.state import load_train_state, save_train_state


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def train_tokenizer(
    recipe: Recipe, data: Path, out: Path, resume: bool = False, progress: bool = True, stop_after: int | None = None,
) -> bool:
    """Train `recipe` on the images under `data`, saving the tokenizer to `out` when done.

    `stop_after=N` ends this run after N more steps with a checkpoint (for time-limited
    jobs); `resume=True` continues it exactly. Returns True once training is complete.
    """
    import mmtok.kinds  # noqa: F401

    cfg = recipe.train
    # cpu=True when there is no GPU: it is what lets `accelerate launch --multi_gpu` run
    # several CPU processes (gloo); on GPU machines it is False and nothing changes.
    acc = Accelerator(cpu=not torch.cuda.is_available())
    rank = acc.process_index
    seed = cfg.seed + rank
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)

    model = KINDS[recipe.kind](recipe.model)
    files = training_files(data, cfg.exclude)
    if cfg.crop_size % model.downsample:
        raise MmtokError(f"recipe crop_size {cfg.crop_size} must be a multiple of the downsample factor {model.downsample}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    models, optimizers = {"model": model}, {"model": opt}
    disc = d_opt = None
    if cfg.adv_weight > 0:
        disc = PatchDiscriminator()
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        models["disc"], optimizers["disc"] = disc, d_opt

    ckpt = out / "checkpoints" / "last"
    start = 0
    if resume:
        start = load_train_state(ckpt, models, optimizers, rank)["step"]
    schedule = lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)

    ddp_model, opt = acc.prepare(model, opt)
    if disc is not None:
        disc, d_opt = acc.prepare(disc, d_opt)
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    loader = crop_loader(files, cfg.crop_size, cfg.batch_size, cfg.seed, rank, start, end, cfg.num_workers)

    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(recipe.to_yaml())
    log_file = out / "train_log.jsonl"
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and acc.is_main_process), desc=f"train {recipe.kind}", unit="step")
    counts = torch.zeros(model.codebook_sizes[0], dtype=torch.long)
    window: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=start):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * schedule(step)
        batch = batch.to(acc.device)
        result = ddp_model(batch, step / cfg.steps)
        recon = result["recon"]
        loss = cfg.l1_weight * F.l1_loss(recon, batch) + cfg.l2_weight * F.mse_loss(recon, batch) + result["aux_loss"]
        adv_on = disc is not None and step >= cfg.adv_start
        if adv_on:
            loss = loss + cfg.adv_weight * hinge_g_loss(disc(recon))
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(ddp_model.parameters(), cfg.grad_clip)
        opt.step()
        d_loss = torch.zeros(())  # logged as 0 without a discriminator
        if adv_on:
            d_loss = hinge_d_loss(disc(batch), disc(recon.detach()))
            d_opt.zero_grad(set_to_none=True)
            acc.backward(d_loss)
            d_opt.step()

        counts += torch.bincount(result["ids"].detach().reshape(-1).cpu(), minlength=counts.numel())
        window.append({"loss": loss.item(), "psnr": psnr(recon.detach(), batch).mean().item(), "d_loss": d_loss.item()})
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            row.update(codebook_usage(counts), step=done, lr=opt.param_groups[0]["lr"],
                       steps_per_s=len(window) / (time.perf_counter() - t0))
            bar.set_postfix(loss=f"{row['loss']:.4f}", psnr=f"{row['psnr']:.2f}", usage=f"{row['usage']:.2f}")
            if acc.is_main_process:
                with log_file.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            window, t0 = [], time.perf_counter()
            counts.zero_()
        bar.update(1)
        if done % cfg.checkpoint_every == 0 and done < end:  # the last one is written below
            _checkpoint(acc, ckpt, done, models, optimizers, rank)
    bar.close()
    _checkpoint(acc, ckpt, end, models, optimizers, rank)
    if end == cfg.steps and acc.is_main_process:
        model.eval()
        model.save_pretrained(out)
    acc.wait_for_everyone()
    acc.end_training()
    return end == cfg.steps


def _checkpoint(acc: Accelerator, folder: Path, step: int, models, optimizers, rank: int) -> None:
    unwrapped = {name: acc.unwrap_model(m) for name, m in models.items()}
    save_train_state(folder, step, unwrapped, optimizers, acc.is_main_process, rank)
