"""What `mmtok eval` measures for images (`mmtok.eval.image_eval` runs it, `image_report` shows
it): quality, bits, codebook use and determinism of each tokenizer, JPEG / WebP at the same
bits per pixel and patch k-means with the same token grid, all on the same files.

    result = evaluate_image_tokenizer(tok, files)        # any object with encode/decode,
    print(result.summary["psnr_mean"])                   # codebook_sizes and downsample

Quality is measured on what a user gets back: the decoded image rounded to uint8, at the
input's native size (padding cropped), with `mmtok.eval.image_metrics.image_scores` (PSNR /
SSIM / MS-SSIM on [0,1]), the same way for tokenizers and classic codecs.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmtok.eval.baselines.pillow_codecs import CODECS, CodecResult, evaluate_codec
from mmtok.eval.determinism import code_agreement
from mmtok.eval.image_metrics import image_scores, quality_summary
from mmtok.eval.kmeans_baseline import PatchKMeans
from mmtok.eval.options import EvalOptions
from mmtok.eval.selection import spread
from mmtok.files import expand_inputs
from mmtok.image.base import ImageTokenizer
from mmtok.image.files import decode_image, encode_image
from mmtok.media.image import IMAGE_SUFFIXES, from_model, read_image, to_model
from mmtok.metrics import bits_per_pixel, codebook_usage

# The k-means baseline's fit is bounded so that a 40-image evaluation takes about a minute
# on 2 cores (k-means++ seeding costs about as much as one Lloyd step per code).
KMEANS_MAX_PATCHES = 40_000   # patches sampled for the fit ...
KMEANS_PATCHES_PER_CODE = 16  # ... or this many per code, if fewer
KMEANS_ITERS = 5              # Lloyd steps after k-means++ seeding
KMEANS_MAX_FILES = 200        # training files read (spread over the sorted list)
KMEANS_MAX_CODES = 16_384     # a bigger codebook cannot be fitted in that budget: skipped, and said so
DETERMINISM_ITEMS = 32        # crops encoded for the determinism check
DETERMINISM_CROP = 256        # their side (the smallest image's short side if smaller)
KMEANS = "patch k-means"


@dataclass
class ImageReport:
    """Result of `evaluate_image_tokenizer`.

    `per_image`: one dict per file (name, tokens: codes an LLM reads for this file, bpp:
    effective bits per pixel of this file, height, width, grid, psnr, ssim, ms_ssim: None
    where the image is too small for it);
    `summary`: `quality_summary` of the rows, codebook usage and perplexity over the whole
    set, nominal and effective (padding included) bits per pixel, timings;
    `counts`: code histogram `[K]` int64; `kept`: file name -> reconstruction `[3,H,W]` uint8
    for the files named in `keep`.
    """

    per_image: list[dict[str, Any]]
    summary: dict[str, Any]
    counts: torch.Tensor
    kept: dict[str, torch.Tensor] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (no tensors)."""
        return {"summary": self.summary, "per_image": self.per_image}


def roundtrip(tok: Any, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[3,H,W]` uint8 -> `(codes [h,w] int64, reconstruction [3,H,W] uint8)`.

    mmtok tokenizers go through `encode_image` / `decode_image` (tiled above 1 MP), so images
    are measured the way users encode them and memory stays bounded.
    """
    if isinstance(tok, ImageTokenizer):
        tokens = encode_image(tok, image)
        return tokens.codes, decode_image(tok, tokens)
    height, width = image.shape[-2:]
    codes = tok.encode(to_model(image)[None])[0].cpu()
    return codes, from_model(tok.decode(codes[None], size=(height, width))[0].cpu())


def evaluate_image_tokenizer(
    tok: Any, files: Sequence[str | Path], keep: Sequence[str] = (), progress: bool = True, desc: str = "evaluate",
) -> ImageReport:
    """Encode and decode every file at its native size; see `ImageReport` for the result.

    `tok` needs `encode([B,3,H,W] in [-1,1]) -> [B,h,w]`, `decode(codes, size)`,
    `codebook_sizes` and `downsample` (an mmtok image tokenizer or a `PatchKMeans`).
    `keep`: file names whose reconstructions are returned (for pictures).
    """
    from tqdm.auto import tqdm

    if not files:
        raise ValueError("no image files to evaluate")
    k, f = tok.codebook_sizes[0], tok.downsample
    counts = torch.zeros(k, dtype=torch.long)
    rows: list[dict[str, Any]] = []
    kept: dict[str, torch.Tensor] = {}
    seconds = 0.0
    pixels = codes_total = 0
    bits_per_code = math.log2(k)
    for path in tqdm(list(map(Path, files)), desc=desc, unit="img", disable=not progress):
        image = read_image(path)
        start = time.perf_counter()
        codes, recon = roundtrip(tok, image)
        seconds += time.perf_counter() - start
        counts += torch.bincount(codes.reshape(-1), minlength=k)
        height, width = image.shape[-2:]
        rows.append({
            "name": path.name, "tokens": codes.numel(), "bpp": codes.numel() * bits_per_code / (height * width),
            "height": height, "width": width, "grid": list(codes.shape), **image_scores(image, recon),
        })
        pixels += height * width
        codes_total += codes.numel()
        if path.name in keep:
            kept[path.name] = recon
    summary = {
        **quality_summary(rows),
        **codebook_usage(counts),
        "codebook_size": k, "downsample": f,
        "bpp": bits_per_pixel(k, f),
        # Edge tokens of sizes that are not multiples of f also pay for padding pixels.
        "bpp_effective": bits_per_pixel(k, 1) * codes_total / pixels,
        "roundtrip_seconds": seconds, "images_per_second": len(rows) / seconds if seconds else float("nan"),
    }
    return ImageReport(rows, summary, counts, kept)


@dataclass
class Budget:
    """A bit budget the classic codecs are matched to: one bpp per file, shared by the
    tokenizers in `names` (tokenizers with the same grid and codebook spend the same)."""

    names: list[str]
    per_file: list[float]

    @property
    def label(self) -> str:
        return "/".join(self.names)


@dataclass
class Measurements:
    """Everything `evaluate_images` measured on `files`: `toks[name]` each tokenizer's
    `ImageReport` (with the reconstructions of `examples`, the files the pictures show);
    `codecs[name]` each classic codec's sweep and its files at each tokenizer's bits;
    `kmeans` the patch k-means baseline's `ImageReport` (None when not run or skipped) and
    `kmeans_fit` how it was fitted (empty when not asked for; `skipped` says why);
    `determinism` each tokenizer's `code_agreement` on centre crops."""

    files: list[Path]
    toks: dict[str, ImageReport]
    examples: list[str]
    codecs: dict[str, CodecResult]
    kmeans: ImageReport | None
    kmeans_fit: dict
    determinism: dict[str, Any]


def measure(tokenizers: Mapping[str, Any], files: list[Path], options: EvalOptions) -> Measurements:
    """Measure every tokenizer and the baselines named in `options.baselines` (jpeg, webp,
    kmeans) on `files` at their native size."""
    toks = {name: evaluate_image_tokenizer(tok, files, progress=options.progress, desc=name) for name, tok in tokenizers.items()}
    examples = _examples(next(iter(toks.values())), options.examples)
    for name, tok in tokenizers.items():  # the pictures' reconstructions, once the examples are known
        toks[name].kept = {f.name: roundtrip(tok, read_image(f))[1] for f in files if f.name in examples}
    budgets = _budgets(toks)
    codecs = {name: evaluate_codec(CODECS[name], files, {b.label: b.per_file for b in budgets}, examples, options.progress)
              for name in options.baselines if name in CODECS}
    kmeans, kmeans_fit = (None, {})
    if "kmeans" in options.baselines:
        first = next(iter(tokenizers.values()))
        kmeans, kmeans_fit = _kmeans_baseline(first, files, examples, options)
    determinism = _determinism(tokenizers, files, options)
    return Measurements(files, toks, examples, codecs, kmeans, kmeans_fit, determinism)


def _budgets(toks: Mapping[str, ImageReport]) -> list[Budget]:
    """One budget per distinct per-file bpp list, in tokenizer order."""
    budgets: list[Budget] = []
    for name, rep in toks.items():
        per_file = [r["bpp"] for r in rep.per_image]
        same = next((b for b in budgets if b.per_file == per_file), None)
        if same:
            same.names.append(name)
        else:
            budgets.append(Budget([name], per_file))
    return budgets


def _examples(first: ImageReport, n: int) -> list[str]:
    """Names of `n` files for the pictures, by the first tokenizer's PSNR: its worst file, then
    files spread up to its 75th percentile (the best-coded files are mostly flat and show little)."""
    ranked = [r["name"] for r in sorted(first.per_image, key=lambda r: r["psnr"])]
    if n >= len(ranked):
        return ranked
    picks = [ranked[round(i * 0.75 * (len(ranked) - 1) / max(n - 1, 1))] for i in range(max(n, 0))]
    return list(dict.fromkeys(picks))


def _kmeans_baseline(tok: Any, files: list[Path], examples: list[str], options: EvalOptions) -> tuple[ImageReport | None, dict]:
    """Fit `PatchKMeans` with `tok`'s codebook size and factor, evaluate it; (None, why) if it
    cannot be fitted fairly within the bounds above."""
    k, f = tok.codebook_sizes[0], tok.downsample
    on_evaluated = not options.baseline_train
    available = files if on_evaluated else sorted(expand_inputs(options.baseline_train, IMAGE_SUFFIXES, "image"))
    train = spread(available, KMEANS_MAX_FILES)
    fit: dict[str, Any] = {"codebook_size": k, "patch": f, "train_files": len(train), "train_files_available": len(available),
                           "fitted_on_evaluated_files": on_evaluated,
                           "train_files_evaluated": len({p.resolve() for p in train} & {p.resolve() for p in files})}
    if k > KMEANS_MAX_CODES:
        return None, {**fit, "skipped": f"{k} codes is more than the {KMEANS_MAX_CODES} a bounded k-means fit can learn"}
    images = [read_image(p) for p in train]
    patches = sum((im.shape[-2] // f) * (im.shape[-1] // f) for im in images)
    if patches < k:
        return None, {**fit, "skipped": f"the {len(train)} training images hold {patches} whole {f}x{f} patches, fewer than {k} codes"}
    max_patches = min(KMEANS_MAX_PATCHES, KMEANS_PATCHES_PER_CODE * k)
    if options.progress:
        print(f"fitting {KMEANS} ({k} codes, {min(patches, max_patches)} patches, {KMEANS_ITERS} iterations)", file=sys.stderr)
    start = time.perf_counter()
    km = PatchKMeans(k, f).fit(images, max_patches=max_patches, iters=KMEANS_ITERS, seed=options.seed)
    fit.update(patches=min(patches, max_patches), iters=KMEANS_ITERS, init="k-means++", seed=options.seed,
               inertia=km.inertia, fit_seconds=time.perf_counter() - start)
    del images
    return evaluate_image_tokenizer(km, files, keep=examples, progress=options.progress, desc=KMEANS), fit


def _determinism(tokenizers: Mapping[str, Any], files: list[Path], options: EvalOptions) -> dict[str, Any]:
    """`code_agreement` of each tokenizer on centre crops of up to `DETERMINISM_ITEMS` files."""
    images = [read_image(p) for p in spread(files, DETERMINISM_ITEMS)]
    side = min(DETERMINISM_CROP, *(min(im.shape[-2:]) for im in images))
    crops = []
    for im in images:
        top, left = (im.shape[-2] - side) // 2, (im.shape[-1] - side) // 2
        crops.append(im[:, top : top + side, left : left + side])
    items = to_model(torch.stack(crops))
    per_tok = {}
    for name, tok in tokenizers.items():
        if options.progress:
            print(f"determinism: {name} on {len(crops)} crops of {side}x{side}", file=sys.stderr)
        per_tok[name] = code_agreement(lambda x, tok=tok: tok.encode(x), items)
    return {"crop": side, "items": len(crops), "per_tokenizer": per_tok}
