"""Audio training step time on CPU, recipe against recipe: the SEANet + RVQ codec (layers at
24 kHz) vs. the frame-rate FSQ codec (ConvNeXt at 75 Hz + iSTFT head), at the same batch.

    python benchmarks/audio_train_step.py --threads 2
    python benchmarks/audio_train_step.py --batch 32 --device cuda      # on a GPU machine

Each recipe's model is trained on the same random real-audio segments (cut from
tests/media/audio) with the loss `mmtok train` uses (`AudioTask.generator_loss`), with and
without its kind's discriminator (generator step + discriminator step, as in the loop).
Models and modes are measured alternately in one run so machine load hits all alike; the
median step time after warm-up is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from mmtok.media.audio import read_audio
from mmtok.configs import KINDS
from mmtok.train.audio_task import AudioTask
from mmtok.train.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("tokenizers_trained/mmtok-audio-24k/recipe.yaml", "tokenizers_trained/mmtok-audio-vocos-fsq/recipe.yaml")


def segments(rate: int, n: int, length: int, seed: int) -> torch.Tensor:
    """`[n,1,length]` random segments of the sample clips."""
    clips = [read_audio(p, rate, 1) for p in sorted((ROOT / "tests/media/audio").glob("*.flac"))]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        clip = clips[i % len(clips)]
        start = int(torch.randint(0, clip.shape[-1] - length, (1,), generator=g))
        out.append(clip[:, start : start + length])
    return torch.stack(out)


def step(task: AudioTask, opt, batch: torch.Tensor, disc=None, d_opt=None, device: str = "cpu") -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = task.model(batch)
    loss, _ = task.generator_loss(out["recon"], batch, disc)
    opt.zero_grad(set_to_none=True)
    (loss + out["aux_loss"]).backward()
    opt.step()
    if disc is not None:
        d_loss = task.discriminator_loss(disc, out["recon"], batch)
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", action="append", type=Path, help="audio recipes to compare (default: the two shipped ones)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=1.0, help="segment length")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model and mode")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    rows = {}
    for path in args.recipe or [ROOT / r for r in RECIPES]:
        recipe = load_recipe(path, "audio")
        torch.manual_seed(0)
        model = KINDS[recipe.kind](recipe.model).to(args.device).train()
        task = AudioTask(model, dataclasses.replace(recipe.train, adv_weight=1.0))
        disc = task.discriminator().to(args.device)
        rows[path.parent.name] = dict(
            task=task, disc=disc, opt=torch.optim.AdamW(model.parameters()), d_opt=torch.optim.AdamW(disc.parameters()),
            times={"generator only": [], "with discriminator": []},
        )
    for i in range(args.warmup + args.steps):
        for name, r in rows.items():
            m = r["task"].model
            length = round(args.seconds * m.sample_rate / m.hop_length) * m.hop_length
            batch = segments(m.sample_rate, args.batch, length, seed=i).to(args.device)
            for mode in r["times"]:
                with_disc = mode == "with discriminator"
                t = step(r["task"], r["opt"], batch, r["disc"] if with_disc else None, r["d_opt"], args.device)
                if i >= args.warmup:
                    r["times"][mode].append(t)
    print(f"batch {args.batch} x {args.seconds:g} s, {args.device}, {args.threads} threads, median of {args.steps} steps\n")
    print("| recipe | kind | tokens / s | generator params | discriminator params | s / step, generator only | s / step, with discriminator |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        m = r["task"].model
        gen = sum(q.numel() for q in m.parameters()) / 1e6
        dis = sum(q.numel() for q in r["disc"].parameters()) / 1e6
        a, b = (statistics.median(v) for v in r["times"].values())
        print(f"| {name} | {m.kind} | {m.tokens_per_second():g} | {gen:.2f} M | {dis:.2f} M | {a:.3f} | {b:.3f} |")


if __name__ == "__main__":
    main()
