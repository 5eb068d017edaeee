"""`mmtok eval` for image tokenizers: quality, bits, codebook use and determinism of each
tokenizer, side by side with JPEG / WebP at the same bits per pixel and patch k-means with the
same token grid, all on the same files.

    evaluate_images({"f8": tok}, files, report, EvalOptions(baselines=("jpeg", "webp", "kmeans")))

Writes the report's sections (summary, rate-distortion, reconstructions, codebook usage,
codec sweeps, determinism, per file) and every number into `report.results["image"]`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmtok.errors import MmtokError
from mmtok.eval.baselines.pillow_codecs import CODECS, CodecResult, evaluate_codec
from mmtok.eval.determinism import code_agreement
from mmtok.eval.image_report import (
    ImageReport,
    evaluate_image_tokenizer,
    roundtrip,
    save_codebook_usage_plot,
    save_rate_distortion_plot,
    save_reconstruction_grid,
)
from mmtok.eval.kmeans_baseline import PatchKMeans
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report
from mmtok.eval.selection import spread
from mmtok.files import expand_inputs
from mmtok.media.image import IMAGE_SUFFIXES, read_image, to_model
from mmtok.metrics import MS_SSIM_MIN_SIDE, codebook_usage

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
GRID = "reconstructions.jpg"


@dataclass
class Budget:
    """A bit budget the classic codecs are matched to: one bpp per file, shared by the
    tokenizers in `names` (tokenizers with the same grid and codebook spend the same)."""

    names: list[str]
    per_file: list[float]

    @property
    def label(self) -> str:
        return "/".join(self.names)


def evaluate_images(tokenizers: Mapping[str, Any], files: Sequence[Path], report: Report, options: EvalOptions) -> None:
    """Measure every tokenizer and the baselines named in `options.baselines` (jpeg, webp,
    kmeans) on `files` at their native size, and fill `report` (see the module docstring)."""
    files = [Path(f) for f in files]
    if not files:
        raise MmtokError("--data: no image files to evaluate; pass image files or folders")
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

    methods = _methods(toks, codecs, kmeans)
    _summary_section(report, tokenizers, files, codecs, kmeans_fit)
    _rd_section(report, methods, codecs)
    if examples:
        _grid_section(report, files, examples, methods)
    _usage_section(report, toks, kmeans)
    if codecs:
        _sweep_section(report, codecs)
    _determinism_section(report, determinism)
    _per_file_section(report, files, methods)
    report.results["image"] = {
        "files": [str(f) for f in files],
        "tokenizers": {name: {"tokens_per_image_mean": toks[name].summary["tokens_mean"], "bpp_mean": toks[name].summary["bpp_mean"],
                              "kind": tok.kind, "fingerprint": tok.fingerprint, "codebook_sizes": tok.codebook_sizes,
                              "downsample": tok.downsample, **toks[name].to_dict(), "determinism": determinism["per_tokenizer"][name]}
                       for name, tok in tokenizers.items()},
        "baselines": {**{name: result.to_dict() for name, result in codecs.items()},
                      **({"kmeans": {**kmeans_fit, **(kmeans.to_dict() if kmeans else {})}} if kmeans_fit else {})},
        "determinism": {k: v for k, v in determinism.items() if k != "per_tokenizer"},
    }


# -- measuring -------------------------------------------------------------------------------

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


@dataclass
class Method:
    """One column of the comparison: a tokenizer, a codec at a budget, or k-means."""

    name: str
    family: str                       # "tokenizer", "jpeg", "webp", "kmeans"
    summary: dict[str, Any]
    per_image: list[dict[str, Any]]
    kept: dict[str, torch.Tensor]


def _methods(toks: Mapping[str, ImageReport], codecs: Mapping[str, CodecResult], kmeans: ImageReport | None) -> list[Method]:
    methods = [Method(name, "tokenizer", rep.summary, rep.per_image, rep.kept) for name, rep in toks.items()]
    for family, result in codecs.items():
        for label, matched in result.matched.items():
            methods.append(Method(f"{result.codec.label} @ {label}", family, matched["summary"], matched["per_image"],
                                  result.kept[label]))
    if kmeans is not None:
        methods.append(Method(KMEANS, "kmeans", kmeans.summary, kmeans.per_image, kmeans.kept))
    return methods


# -- report ----------------------------------------------------------------------------------

def _nan(value: float | None) -> float:
    """None (not measured) shows as n/a in tables."""
    return math.nan if value is None else value


def _code_density(tok: Any) -> str:
    """Where a tokenizer's codes come from: one per f x f pixels, or (a pretrained VQ behind its
    image processor) a fixed grid of the image resized to the model's resolution."""
    if tok.fixed_resolution:
        h, w = tok.grid_shape(1, 1)
        return f"{h}x{w} per image at any size (resized to the model's {tok.resolution}x{tok.resolution} first)"
    return f"one per {tok.downsample}x{tok.downsample} pixels"


def _summary_section(report: Report, tokenizers: Mapping[str, Any], files: list[Path], codecs: Mapping[str, CodecResult],
                     kmeans_fit: dict) -> None:
    section = report.section("What was measured")
    toks = "; ".join(f"**{name}**: {tok.codebook_sizes[0]:,} codes, {_code_density(tok)}, "
                     f"{math.log2(tok.codebook_sizes[0]):.2f} bits per code" for name, tok in tokenizers.items())
    section.text(f"{len(files)} image files, each at its native size. {toks}.")
    section.text("Quality is measured on what a user gets back, the decoded image rounded to 8 bits: PSNR (dB) and SSIM on "
                 f"[0,1]; MS-SSIM with 5 scales (pytorch-msssim), n/a for images whose short side is under {MS_SSIM_MIN_SIDE} px.")
    section.text("**How bits are counted.** A tokenizer spends log2(codebook size) bits per code, fixed-rate, with no entropy "
                 "coding and no header: bpp = codes x log2 K / pixels (edge codes that cover padding included). "
                 "JPEG (libjpeg through Pillow, optimised Huffman tables, 4:2:0 chroma) and WebP (libwebp, method 6) are "
                 "counted as whole files, `bytes x 8 / pixels`, headers included; the `payload bpp` column leaves out JPEG's "
                 "marker segments (quantisation and Huffman tables, frame and scan headers) and WebP's RIFF container. "
                 "At a matched rate each file gets the highest quality whose whole file fits the tokenizer's bpp on that file "
                 "(bisection over Pillow's quality); where even the lowest quality is larger, that one is used and counted "
                 "under `over target`." if codecs else "**How bits are counted.** A tokenizer spends log2(codebook size) bits "
                 "per code, fixed-rate, no entropy coding, no header: bpp = codes x log2 K / pixels.")
    if kmeans_fit:
        k, f = kmeans_fit["codebook_size"], kmeans_fit["patch"]
        if "skipped" in kmeans_fit:
            section.text(f"**{KMEANS}** was skipped: {kmeans_fit['skipped']}.")
        else:
            if kmeans_fit["fitted_on_evaluated_files"]:
                where = ("the evaluated files themselves, which favours the baseline (pass `--baseline-train`, or "
                         "`--heldout`, to fit it on other images)")
            else:
                shared = kmeans_fit["train_files_evaluated"]
                where = (f"{kmeans_fit['train_files']} training files (spread over {kmeans_fit['train_files_available']}; "
                         + ("none of them evaluated)" if not shared else f"{shared} of them evaluated, which favours the baseline)"))
            section.text(f"**{KMEANS}** codes each {f}x{f} block of pixels as the nearest of {k:,} centroids, the same "
                         f"grid and bits as {next(iter(tokenizers))}. Fitted on {kmeans_fit['patches']:,} patches sampled from "
                         f"{where}: k-means++ seeding, {kmeans_fit['iters']} Lloyd steps, {kmeans_fit['fit_seconds']:.0f} s.")


def _rd_section(report: Report, methods: list[Method], codecs: Mapping[str, CodecResult]) -> None:
    section = report.section("Rate and distortion")
    section.text("How to read this: up and to the left is better. Lines are the classic codecs over their quality settings "
                 "(means over the files); stars are the tokenizers, squares the codecs matched to a tokenizer's bits on "
                 "every file. A square can sit above its codec's line: a quality chosen per file spends the same bits "
                 "where they buy the most, and a mean of PSNR rewards the easy files.")
    colors = {"jpeg": "tab:blue", "webp": "tab:orange", "kmeans": "tab:gray"}
    token_colors = ["tab:red", "tab:purple", "tab:green", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    series: dict[str, dict[str, list]] = {}
    styles: dict[str, dict[str, Any]] = {}
    for family, result in codecs.items():
        name = f"{result.codec.label} (quality sweep)"
        series[name] = {key: [s[f"{key}_mean"] for s in result.sweep] for key in ("bpp", "psnr", "ssim", "ms_ssim")}
        styles[name] = {"color": colors[family], "alpha": 0.8}
    for i, m in enumerate(methods):
        series[m.name] = {key: [m.summary[f"{key}_mean"]] for key in ("bpp", "psnr", "ssim", "ms_ssim")}
        if m.family == "tokenizer":
            styles[m.name] = {"color": token_colors[i % len(token_colors)], "marker": "*", "markersize": 15, "zorder": 5}
        else:
            styles[m.name] = {"color": colors[m.family], "marker": "s" if m.family != "kmeans" else "D",
                              "markerfacecolor": "white", "markeredgewidth": 2}
    metrics = [("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
    multi, n = methods[0].summary["ms_ssim_images"], methods[0].summary["images"]
    if multi:
        metrics.append(("ms_ssim", "MS-SSIM" if multi == n else f"MS-SSIM (the {multi} of {n} files large enough)"))
    path = save_rate_distortion_plot(series, report.figure_path("rate_distortion.png"), metrics,
                                     rate_label="bits per pixel (log scale)", styles=styles)
    section.figure(path, "Mean quality against mean bits per pixel over all files.")
    first = methods[0]
    first_psnr = {r["name"]: r["psnr"] for r in first.per_image}
    rows = []
    for m in methods:
        s = m.summary
        codec = m.family in CODECS
        wins = sum(first_psnr[r["name"]] > r["psnr"] for r in m.per_image)
        rows.append([m.name, _nan(s["tokens_mean"]), s["bpp_mean"], s["payload_bpp_mean"] if codec else s["bpp_mean"], s["psnr_mean"],
                     s["psnr_median"], s["ssim_mean"], _nan(s["ms_ssim_mean"]),
                     f"{s['quality_min']}–{s['quality_max']}" if codec else "",
                     f"{s['over_target']} of {s['images']}" if codec else "", "" if m is first else f"{wins} of {s['images']}"])
    caption = (f"Means over the {n} files (PSNR also as median); tokens per image: the codes an LLM reads (n/a for classic "
               f"codecs, which make none); MS-SSIM over the {multi} "
               f"file{'s' * (multi != 1)} large enough for it. `over target`: files where even the codec's lowest quality "
               "spends more bits than the tokenizer (its bpp is then higher than the tokenizer's). "
               f"`{first.name} better on`: files where {first.name}'s PSNR is higher than this method's.")
    section.table(["method", "tokens per image", "bpp", "payload bpp", "PSNR", "PSNR median", "SSIM", "MS-SSIM", "quality", "over target",
                   f"{first.name} better on"], rows, caption)


def _grid_section(report: Report, files: list[Path], examples: list[str], methods: list[Method]) -> None:
    section = report.section("Reconstructions")
    path_of = {f.name: f for f in files}
    names = examples
    originals = [read_image(path_of[n]) for n in names]
    recons = {m.name: [m.kept[n] for n in names] for m in methods}
    notes = {}
    for m in methods:
        by_name = {r["name"]: r for r in m.per_image}
        notes[m.name] = [(f"q{by_name[n]['quality']} · " if "quality" in by_name[n] else "") + f"{by_name[n]['bpp']:.3f} bpp"
                         + (" (over target)" if by_name[n].get("over_target") else "") for n in names]
    widest = max(im.shape[-1] for im in originals)
    # About one image pixel per figure pixel at 100 dpi, within a readable range (wider
    # images are shown smaller: the page is ~1100 px wide and the file must stay small).
    panel = min(2.6, max(2.0, widest / 100))
    path = save_reconstruction_grid(originals, recons, report.figure_path(GRID), row_titles=names, panel_inches=panel,
                                    notes=notes)
    rows = ("all files, from the one it codes worst" if len(names) == len(files) else
            "the file it codes worst, then files spread up to its 75th PSNR percentile")
    section.text(f"How to read this: each row is one file, the original first; titles give PSNR, the codec quality and the "
                 f"bits per pixel spent on that file. Rows, by {methods[0].name}'s PSNR: {rows}. Click for full size.")
    section.figure(path, f"{len(names)} of the files, every method (stored as a high-quality JPEG to keep the report small; "
                   "the numbers are measured on the exact reconstructions).")


def _usage_section(report: Report, toks: Mapping[str, ImageReport], kmeans: ImageReport | None) -> None:
    section = report.section("Codebook usage")
    section.text("How to read this: an image tokenizer has one code stream. `used` is the share of codes that occur at least "
                 "once; perplexity is exp(entropy) of the code frequencies, the number of equally likely codes that would be "
                 "as unpredictable; `entropy` is log2 of it, the bits per code an ideal entropy coder would spend instead of "
                 "log2 K.")
    counts = {name: rep.counts for name, rep in toks.items()}
    if kmeans is not None:
        counts[KMEANS] = kmeans.counts
    rows = []
    for name, hist in counts.items():
        stats = codebook_usage(hist)
        k = len(hist)
        rows.append([name, k, int((hist > 0).sum()), f"{stats['usage']:.1%}", stats["perplexity"], math.log2(stats["perplexity"]),
                     math.log2(k), int(hist.sum())])
    section.table(["method", "codebook size", "codes used", "used", "perplexity", "entropy (bits/code)", "log2 K",
                   "codes counted"], rows, "Over all codes of all evaluated files.")
    path = save_codebook_usage_plot(counts, report.figure_path("codebook_usage.png"))
    section.figure(path, "Code frequencies, most frequent first (log scale); a flat curve means codes are used evenly.")


def _sweep_section(report: Report, codecs: Mapping[str, CodecResult]) -> None:
    section = report.section("Classic codecs over their quality settings")
    rows = [[result.codec.label, s["quality"], "n/a", s["bpp_mean"], s["payload_bpp_mean"], s["psnr_mean"], s["ssim_mean"],
             _nan(s["ms_ssim_mean"])] for result in codecs.values() for s in result.sweep]
    section.table(["codec", "quality", "tokens per image", "bpp", "payload bpp", "PSNR", "SSIM", "MS-SSIM"], rows,
                  "Means over the files: the lines of the rate-distortion plot (a classic codec makes no tokens).")


def _determinism_section(report: Report, determinism: dict[str, Any]) -> None:
    section = report.section("Determinism")
    side, n = determinism["crop"], determinism["items"]
    section.text(f"How to read this: 1.0 means identical codes. Items: {n} centre crops of {side}x{side} pixels, one from each "
                 f"of {n} files spread over the list, fed as one batch of 32 (repeated to fill it) twice (`repeat`), then "
                 "each crop alone (`alone vs batch`); convolution kernels may round differently at other batch sizes.")
    rows = [[name, s["repeat"], s["alone_vs_batch"], s["positions"]] for name, s in determinism["per_tokenizer"].items()]
    section.table(["tokenizer", "repeat", "alone vs batch", "code positions compared"], rows)


def _per_file_section(report: Report, files: list[Path], methods: list[Method]) -> None:
    section = report.section("Per file")
    by_method = [{r["name"]: r for r in m.per_image} for m in methods]
    tokenizers = [(m, b) for m, b in zip(methods, by_method) if m.family == "tokenizer"]
    rows = []
    for f in files:
        first = by_method[0][f.name]
        rows.append([f.name, f"{first['width']}x{first['height']}", *(b[f.name]["tokens"] for _, b in tokenizers),
                     *(b[f.name]["bpp"] for _, b in tokenizers), *(b[f.name]["psnr"] for b in by_method)])
    section.table(["file", "size", *(f"{m.name} tokens" for m, _ in tokenizers), *(f"{m.name} bpp" for m, _ in tokenizers),
                   *(f"{m.name} PSNR" for m in methods)], rows,
                  "Tokens and bits per pixel of every tokenizer on every file (the codecs matched to them spend at most those "
                  "bits), then the PSNR (dB) of every file and method.")
