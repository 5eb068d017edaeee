"""The training loop shared by every tokenizer kind, on HuggingFace accelerate.

`train_tokenizer(recipe, data, out)` runs on CPU, one GPU, or data-parallel through
`accelerate launch` with no change. Output folder layout:

    OUT/config.json, model.safetensors, README.md   the trained tokenizer (save_pretrained)
    OUT/recipe.yaml                                 the recipe that produced it
    OUT/train_log.jsonl                             one line of figures every `log_every` steps
    OUT/checkpoints/last/                           exact-resume state (see train/state.py)

The log gets exactly one line per logged step, even across kill -9 and `--resume`: a line is
appended before the checkpoint that covers it, so a resume first drops the lines of steps
after its checkpoint (they are made again). A run that fails before its first checkpoint
removes what it wrote (the recipe, the log, a folder it created).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from mmtok.configs import KINDS, build_checked
from mmtok.files import atomic_write, check_output_dir, make_dirs
from mmtok.metrics import codebook_usage
from mmtok.train.audio_task import AudioTask
from mmtok.train.image_task import ImageTask
from mmtok.train.recipe import Recipe
from mmtok.train.state import check_resume, load_train_state, save_train_state, trim_log
from mmtok.train.video_task import VideoTask

# Per modality: data, losses, progress figure and discriminator (see the *_task modules).
TASKS = {"image": ImageTask, "audio": AudioTask, "video": VideoTask}


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup then cosine decay to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def train_tokenizer(
    recipe: Recipe, data: Path, out: Path, resume: bool = False, progress: bool = True, stop_after: int | None = None,
) -> bool:
    """Train `recipe` on the media under `data`, saving the tokenizer to `out` when done.

    `stop_after=N` ends this run after N more steps with a checkpoint (for time-limited
    jobs); `resume=True` continues it exactly. Returns True once training is complete.
    """
    check_output_dir(out)
    ckpt = out / "checkpoints" / "last"
    if resume:
        check_resume(out, ckpt, recipe)
    fresh = not out.exists()
    try:
        return _train(recipe, data, out, ckpt, resume, progress, stop_after)
    except Exception:
        if not resume and not ckpt.exists():  # nothing worth keeping was made: leave no trace
            if fresh:
                shutil.rmtree(out, ignore_errors=True)
            else:
                for name in ("recipe.yaml", "train_log.jsonl"):
                    (out / name).unlink(missing_ok=True)
        raise


def _train(recipe: Recipe, data: Path, out: Path, ckpt: Path, resume: bool, progress: bool, stop_after: int | None) -> bool:
    cfg = recipe.train
    # cpu=True when there is no GPU: it is what lets `accelerate launch --multi_gpu` run
    # several CPU processes (gloo); on GPU machines it is False and nothing changes.
    acc = Accelerator(cpu=not torch.cuda.is_available())
    rank = acc.process_index
    seed = cfg.seed + rank
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)

    model = build_checked(KINDS[recipe.kind], recipe.model, recipe.source)
    task = TASKS[model.modality](model, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    models, optimizers = {"model": model}, {"model": opt}
    disc = d_opt = None
    if cfg.adv_weight > 0:
        disc = task.discriminator()
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        models["disc"], optimizers["disc"] = disc, d_opt

    start = 0
    if resume:
        start = load_train_state(ckpt, models, optimizers, rank, cfg.steps)["step"]
    schedule = lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio)

    ddp_model, opt = acc.prepare(model, opt)
    if disc is not None:
        disc, d_opt = acc.prepare(disc, d_opt)
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    loader = task.loader(data, rank, start, end)

    log_file = out / "train_log.jsonl"
    if acc.is_main_process:
        make_dirs(out)
        text = recipe.to_yaml()
        atomic_write(out / "recipe.yaml", lambda tmp: tmp.write_text(text))
        trim_log(log_file, start)  # lines of steps after the checkpoint are made again
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and acc.is_main_process), desc=f"train {recipe.kind}", unit="step")
    sizes = model.codebook_sizes
    counts = torch.zeros(len(sizes), max(sizes), dtype=torch.long)  # per code stream
    window: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=start):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * schedule(step)
        batch = batch.to(acc.device)
        result = ddp_model(batch, step / cfg.steps)
        recon = result["recon"]
        adv_on = disc is not None and step >= cfg.adv_start
        loss, figures = task.generator_loss(recon, batch, disc if adv_on else None)
        loss = loss + result["aux_loss"]
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(ddp_model.parameters(), cfg.grad_clip)
        opt.step()
        d_loss = torch.zeros(())  # logged as 0 without a discriminator
        if adv_on:
            d_loss = task.discriminator_loss(disc, recon, batch)
            d_opt.zero_grad(set_to_none=True)
            acc.backward(d_loss)
            d_opt.step()

        for stream, ids in enumerate(task.streams(result["ids"].detach().cpu())):
            ids = ids[ids >= 0]  # quantizer dropout marks removed levels with -1
            counts[stream] += torch.bincount(ids, minlength=counts.shape[1])
        window.append({"loss": loss.item(), task.quality_name: task.quality(recon, batch), "d_loss": d_loss.item(), **figures})
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            row = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
            row.update(_usage(counts, sizes), step=done, lr=opt.param_groups[0]["lr"],
                       steps_per_s=len(window) / (time.perf_counter() - t0))
            quality = task.quality_name
            bar.set_postfix({"loss": f"{row['loss']:.4f}", quality: f"{row[quality]:.2f}", "usage": f"{row['usage']:.2f}"})
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


def _usage(counts: torch.Tensor, sizes: list[int]) -> dict:
    """Codebook usage and perplexity: of the single stream, or mean over streams plus per stream."""
    per = [codebook_usage(c[:n]) for c, n in zip(counts, sizes)]
    if len(per) == 1:
        return per[0]
    return {
        "usage": sum(p["usage"] for p in per) / len(per), "perplexity": sum(p["perplexity"] for p in per) / len(per),
        "usage_per_stream": [round(p["usage"], 4) for p in per],
    }


def _checkpoint(acc: Accelerator, folder: Path, step: int, models, optimizers, rank: int) -> None:
    unwrapped = {name: acc.unwrap_model(m) for name, m in models.items()}
    save_train_state(folder, step, unwrapped, optimizers, acc.is_main_process, rank)
