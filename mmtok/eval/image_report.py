"""The image evaluation report: what `mmtok.eval.image_measure.measure` found, as sections
(summary, rate-distortion, reconstructions, codebook usage, codec sweeps, determinism, per
file), tables, figures (`image_figures`) and `report.results["image"]`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mmtok.eval.baselines.pillow_codecs import CODECS, CodecResult
from mmtok.eval.image_figures import save_codebook_usage_plot, save_rate_distortion_plot, save_reconstruction_grid
from mmtok.eval.image_measure import KMEANS, ImageReport, Measurements
from mmtok.eval.report import Report
from mmtok.media.image import read_image
from mmtok.metrics import MS_SSIM_MIN_SIDE, codebook_usage

GRID = "reconstructions.jpg"


def write_image_report(report: Report, tokenizers: Mapping[str, Any], m: Measurements) -> None:
    """The report's sections (summary, rate-distortion, reconstructions, codebook usage, codec
    sweeps, determinism, per file) and every number in `report.results["image"]`."""
    files, toks, examples, codecs, kmeans, kmeans_fit, determinism = (
        m.files, m.toks, m.examples, m.codecs, m.kmeans, m.kmeans_fit, m.determinism)
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
