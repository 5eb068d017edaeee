"""Reconstruction report of an image tokenizer over a set of image files, and its pictures.

    report = evaluate_image_tokenizer(tok, files)        # any object with encode/decode,
    print(report.summary["psnr_mean"])                   # codebook_sizes and downsample
    save_reconstruction_grid(originals, {"mmtok": recons}, "grid.png")
    save_codebook_usage_plot(report.counts, "usage.png")

Quality is measured on what a user gets back: the decoded image rounded to uint8, at the
input's native size (padding cropped), with `mmtok.eval.metrics` (PSNR / SSIM on [0,1]).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmtok.eval.metrics import bits_per_pixel, codebook_usage, psnr, ssim
from mmtok.files import atomic_write
from mmtok.image.base import ImageTokenizer
from mmtok.image.files import decode_image, encode_image
from mmtok.media.image import from_model, read_image, to_model


@dataclass
class ImageReport:
    """Result of `evaluate_image_tokenizer`.

    `per_image`: one dict per file (name, height, width, grid, psnr, ssim);
    `summary`: means / medians of PSNR and SSIM, codebook usage and perplexity over the whole
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
    for path in tqdm(list(map(Path, files)), desc=desc, unit="img", disable=not progress):
        image = read_image(path)
        start = time.perf_counter()
        codes, recon = roundtrip(tok, image)
        seconds += time.perf_counter() - start
        counts += torch.bincount(codes.reshape(-1), minlength=k)
        x, y = to_model(image)[None], to_model(recon)[None]
        rows.append({
            "name": path.name, "height": image.shape[-2], "width": image.shape[-1], "grid": list(codes.shape),
            "psnr": float(psnr(x, y)[0]), "ssim": float(ssim(x, y)[0]),
        })
        pixels += image.shape[-2] * image.shape[-1]
        codes_total += codes.numel()
        if path.name in keep:
            kept[path.name] = recon
    psnrs, ssims = [r["psnr"] for r in rows], [r["ssim"] for r in rows]
    summary = {
        "images": len(rows),
        "psnr_mean": statistics.fmean(psnrs), "psnr_median": statistics.median(psnrs),
        "ssim_mean": statistics.fmean(ssims), "ssim_median": statistics.median(ssims),
        **codebook_usage(counts),
        "codebook_size": k, "downsample": f,
        "bpp": bits_per_pixel(k, f),
        # Edge tokens of sizes that are not multiples of f also pay for padding pixels.
        "bpp_effective": bits_per_pixel(k, 1) * codes_total / pixels,
        "roundtrip_seconds": seconds, "images_per_second": len(rows) / seconds if seconds else float("nan"),
    }
    return ImageReport(rows, summary, counts, kept)


def save_reconstruction_grid(
    originals: Sequence[torch.Tensor], recons_by_name: Mapping[str, Sequence[torch.Tensor]], path: str | Path,
    row_titles: Sequence[str] | None = None, panel_inches: float = 3.0,
) -> Path:
    """PNG grid: one row per image, columns original then each method (titles with PSNR).

    `originals`: `[3,H,W]` uint8 images; `recons_by_name`: method name -> one uint8
    reconstruction per original, same sizes. Written atomically.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI, Agg on save

    path = Path(path)
    n, cols = len(originals), 1 + len(recons_by_name)
    # Row heights follow each image's aspect ratio so landscape photos leave no blank bands;
    # the extra half inch per row holds the titles.
    ratios = [im.shape[-2] / im.shape[-1] for im in originals]
    fig = Figure(figsize=(panel_inches * cols, sum(panel_inches * r + 0.5 for r in ratios)), dpi=100,
                 layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False, gridspec_kw={"height_ratios": ratios})
    for i, original in enumerate(originals):
        label = "" if row_titles is None else "\n" + _shorten(row_titles[i], 40)
        panels = [("original" + label, original)]
        x = to_model(original)[None]
        for name, recons in recons_by_name.items():
            panels.append((f"{name}: {float(psnr(x, to_model(recons[i])[None])[0]):.2f} dB", recons[i]))
        for ax, (title, image) in zip(axes[i], panels, strict=True):
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    atomic_write(path, lambda tmp: fig.savefig(tmp))
    return path


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]


def save_codebook_usage_plot(counts: torch.Tensor | Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """PNG of code frequencies sorted by rank, log scale (one curve per method).

    `counts`: a code histogram `[K]` or a mapping name -> histogram. Unused codes cannot sit
    on a log axis: each curve ends at its last used code, and the legend gives usage and
    perplexity. Written atomically.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    curves = {"codes": counts} if isinstance(counts, torch.Tensor) else dict(counts)
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.subplots()
    for name, hist in curves.items():
        freq = hist.double().sort(descending=True).values
        freq = freq[freq > 0] / freq.sum().clamp_min(1)
        stats = codebook_usage(hist)
        ax.plot(torch.arange(1, len(freq) + 1).numpy(), freq.numpy(),
                label=f"{name}: {stats['usage']:.1%} of {len(hist)} used, perplexity {stats['perplexity']:.0f}")
    ax.set_xlim(0, max(len(h) for h in curves.values()))
    ax.set_yscale("log")
    ax.set_xlabel("code rank (most frequent first)")
    ax.set_ylabel("frequency")
    ax.set_title("Codebook usage")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp))
    return path
