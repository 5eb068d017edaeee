"""Pictures of an image evaluation: reconstructions side by side, codebook usage, rate-distortion.

    save_reconstruction_grid(originals, {"mmtok": recons}, "grid.png")
    save_codebook_usage_plot(result.counts, "usage.png")
    save_rate_distortion_plot({"JPEG": {"bpp": [...], "psnr": [...]}, ...}, "rd.png", [("psnr", "PSNR (dB)")])

Images are `[3,H,W]` uint8 tensors. Figures use matplotlib's object API (no pyplot state)
and are written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mmtok.files import atomic_write
from mmtok.media.image import to_model
from mmtok.metrics import codebook_usage, psnr


def save_reconstruction_grid(
    originals: Sequence[torch.Tensor], recons_by_name: Mapping[str, Sequence[torch.Tensor]], path: str | Path,
    row_titles: Sequence[str] | None = None, panel_inches: float = 3.0,
    notes: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Grid picture: one row per image, columns original then each method (titles with PSNR).

    `originals`: `[3,H,W]` uint8 images; `recons_by_name`: method name -> one uint8
    reconstruction per original, same sizes; `notes`: method name -> one short text per
    original for its panel titles (e.g. the bits it spent). The format follows the suffix: a
    `.jpg` is written at quality 92 without chroma subsampling, because grids of photos run
    to megabytes as PNG. Written atomically.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI, Agg on save

    path = Path(path)
    n, cols = len(originals), 1 + len(recons_by_name)
    # Row heights follow each image's aspect ratio so landscape photos leave no blank bands;
    # the extra half inch per row holds the two-line titles.
    ratios = [im.shape[-2] / im.shape[-1] for im in originals]
    fig = Figure(figsize=(panel_inches * cols, sum(panel_inches * r + 0.5 for r in ratios)), dpi=100,
                 layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False, gridspec_kw={"height_ratios": ratios})
    for i, original in enumerate(originals):
        label = "" if row_titles is None else "\n" + _shorten(row_titles[i], 36)
        panels = [("original" + label, original)]
        x = to_model(original)[None]
        for name, recons in recons_by_name.items():
            note = f" · {notes[name][i]}" if notes and name in notes else ""
            panels.append((f"{_shorten(name, 36)}\n{float(psnr(x, to_model(recons[i])[None])[0]):.2f} dB{note}", recons[i]))
        for ax, (title, image) in zip(axes[i], panels, strict=True):
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    atomic_write(path, lambda tmp: fig.savefig(tmp, pil_kwargs={"quality": 92, "subsampling": 0} if jpeg else None))
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


def save_rate_distortion_plot(
    series: Mapping[str, Mapping[str, Sequence[float | None]]], path: str | Path, metrics: Sequence[tuple[str, str]],
    rate: str = "bpp", rate_label: str = "bits per pixel", styles: Mapping[str, Mapping[str, Any]] | None = None,
    log_rate: bool = True,
) -> Path:
    """PNG with one panel per metric: the metric against the rate, for every series.

    `series`: name -> {rate: [...], metric key: [...]} (equal lengths; None values skipped).
    A series of several points is drawn as a line (a codec's quality sweep), a single point
    as a marker labelled with its name (a tokenizer, a codec at matched rate). `metrics`:
    (key, axis label) per panel; `styles`: name -> matplotlib keyword arguments (color,
    marker, ...). Written atomically.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    path = Path(path)
    styles = styles or {}
    fig = Figure(figsize=(5.2 * len(metrics), 4.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, (key, label) in zip(axes, metrics):
        for name, data in series.items():
            points = [(r, v) for r, v in zip(data[rate], data.get(key, [])) if r is not None and v is not None]
            if not points:
                continue
            xs, ys = zip(*sorted(points))
            style = {"marker": "o", "markersize": 4 if len(xs) > 1 else 9, **styles.get(name, {})}
            ax.plot(xs, ys, linestyle="-" if len(xs) > 1 else "none", label=name, **style)
        if log_rate:
            # Plain numbers at 1-2-5 steps: readable where the data span less than a decade.
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(rate_label)
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp))
    return path
