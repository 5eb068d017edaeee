"""Pictures of audio reconstructions: spectrograms on one dB scale, rate–distortion curves,
and codebook use per residual level. Matplotlib without pyplot; PNGs written atomically.

    save_spectrograms("speech.flac", x, [[("ours 1.5 kbps", y1), ("ours 6 kbps", y2)]], 24000, "spec.png")
    save_rate_distortion({"all files": [Curve("ours", [1.5, 3], {"stoi": [0.6, 0.7]})]}, [("stoi", "STOI")], "rd.png")
    save_codebook_levels({"ours": [{"usage": 0.99, "perplexity": 800, "codebook_size": 1024}, ...]}, "levels.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmtok.files import atomic_write

DB_RANGE = 80.0       # dB shown below the original's loudest mel bin
DPI = 100


N_FFT, N_MELS = 1024, 80


def _filter_bank(rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Slaney mel filters `[n_mels, n_fft/2+1]` (as the mel distance uses)."""
    from transformers.audio_utils import mel_filter_bank

    return torch.from_numpy(mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, rate / 2, rate, norm="slaney", mel_scale="slaney")).float().T


def log_mel_db(x: torch.Tensor, rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Mel power spectrogram in dB of the channel mean of `x [C,T]`: `[n_mels, frames]`."""
    fb = _filter_bank(rate, n_fft, n_mels)
    mono = x.float().mean(0)
    if mono.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        mono = torch.nn.functional.pad(mono, (0, n_fft // 2 + 1 - mono.shape[-1]))
    spec = torch.stft(mono, n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs().pow(2)
    return (10 * torch.log10((fb @ spec).clamp(min=1e-10))).numpy()


def _khz_ticks(ax, rate: int) -> None:
    """Label the mel-bin axis in kHz (at each filter's peak), so a codec's missing band reads as a frequency."""
    peaks = _filter_bank(rate, N_FFT, N_MELS).argmax(1).numpy() * rate / N_FFT
    khz = [k for k in (0.5, 1, 2, 4, 8, 16) if k * 1000 < peaks[-1]]
    ax.set_yticks(np.interp([k * 1000 for k in khz], peaks, np.arange(N_MELS)), [f"{k:g}" for k in khz])
    ax.set_ylabel("kHz", fontsize=8)


def save_spectrograms(
    title: str, original: torch.Tensor, grid: Sequence[Sequence[tuple[str, torch.Tensor] | None]], rate: int, path: str | Path,
    panel_size: tuple[float, float] = (4.2, 1.9), start_seconds: float = 0.0,
) -> Path:
    """PNG: the original's mel spectrogram (kHz on a mel axis) on top, spanning the width,
    then `grid`: rows of `(title, audio [C,T])` panels (None leaves a cell empty). Every
    panel shares the original's dB scale (its loudest bin down to `DB_RANGE` below), so a
    darker panel is a quieter reconstruction, not a rescaled one. The time axis starts at
    `start_seconds` (where the excerpt sits in its file)."""
    from matplotlib.figure import Figure

    rows, cols = len(grid), max(len(row) for row in grid)
    ref = log_mel_db(original, rate)
    vmax = float(ref.max())
    vmin = vmax - DB_RANGE
    extent = (start_seconds, start_seconds + original.shape[-1] / rate, 0, ref.shape[0])
    fig = Figure(figsize=(panel_size[0] * cols + 0.8, panel_size[1] * (rows + 1)), dpi=DPI, layout="constrained")
    spec = fig.add_gridspec(rows + 1, cols)
    ax = fig.add_subplot(spec[0, :])
    image = ax.imshow(ref, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    ax.set_title(f"original: {title}", fontsize=9)
    _khz_ticks(ax, rate)
    ax.tick_params(labelsize=7)
    for i, row in enumerate(grid):
        for j, cell in enumerate(row):
            if cell is None:
                continue
            label, audio = cell
            ax = fig.add_subplot(spec[i + 1, j])
            ax.imshow(log_mel_db(audio, rate), origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, extent=extent,
                      interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.tick_params(labelsize=7)
            _khz_ticks(ax, rate)
            if i == rows - 1:
                ax.set_xlabel("seconds", fontsize=8)
    fig.colorbar(image, ax=fig.axes, shrink=0.6, label="dB", pad=0.01)
    return save_png(fig, path)


def save_png(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as a 256-colour PNG, atomically. Spectrograms are mostly one
    256-entry colour map, so the palette loses nothing visible and the file is ~4x smaller
    than matplotlib's RGBA PNG."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    path = Path(path)
    atomic_write(path, lambda tmp: image.save(tmp, optimize=True))
    return path


@dataclass
class Curve:
    """One method on a rate–distortion plot: `values[metric][i]` at `kbps[i]`; `notes[i]`
    is written next to point i (e.g. what a baseline was asked for); `baseline` draws it dashed."""

    label: str
    kbps: list[float]
    values: dict[str, list[float]]
    notes: list[str] | None = None
    baseline: bool = False


def save_rate_distortion(
    groups: Mapping[str, Sequence[Curve]], metrics: Sequence[tuple[str, str]], path: str | Path, title: str = "",
) -> Path:
    """PNG grid of rate–distortion plots: one row per group of files (e.g. folders), one
    column per `(metric key, axis label)`, one line per curve, kbps on x."""
    from matplotlib.figure import Figure

    rows, cols = len(groups), len(metrics)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows + 0.6), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    colors: dict[str, str] = {}
    palette = iter(["tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"])
    for r, (group, curves) in enumerate(groups.items()):
        for c, (key, label) in enumerate(metrics):
            ax = axes[r][c]
            for curve in curves:
                color = colors.setdefault(curve.label, "tab:orange" if curve.baseline else next(palette, "black"))
                ys = curve.values.get(key)
                if ys is None:
                    continue
                ax.plot(curve.kbps, ys, "--" if curve.baseline else "-", marker="s" if curve.baseline else "o", markersize=4,
                        color=color, label=curve.label)
                for x, y, note in zip(curve.kbps, ys, curve.notes or []):
                    if note and np.isfinite(y):
                        ax.annotate(note, (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3), color=color)
            ax.set_title(f"{group}: {label}" if rows > 1 else label, fontsize=9)
            ax.set_xlabel("kbps spent", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 4), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path)


def save_codebook_levels(stats: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path) -> Path:
    """PNG: codebook usage (% of entries used) and perplexity (effective number of codes) per
    residual level, grouped bars, one colour per tokenizer. `stats[name][level]` has `usage`
    (0..1), `perplexity` and `codebook_size`."""
    from matplotlib.figure import Figure

    names = list(stats)
    levels = max(len(v) for v in stats.values())
    width = 0.8 / len(names)
    fig = Figure(figsize=(min(14.0, max(7.0, 0.35 * levels * len(names) * 2 + 3)), 3.2), dpi=DPI, layout="constrained")
    usage_ax, perplexity_ax = fig.subplots(1, 2)
    for i, name in enumerate(names):
        x = np.arange(1, len(stats[name]) + 1) + (i - (len(names) - 1) / 2) * width
        usage_ax.bar(x, [100 * s["usage"] for s in stats[name]], width, label=name)
        perplexity_ax.bar(x, [s["perplexity"] for s in stats[name]], width, label=name)
        sizes = {int(s["codebook_size"]) for s in stats[name]}
        for size in sizes:
            perplexity_ax.axhline(size, color=f"C{i}", linestyle=":", linewidth=1)
    usage_ax.set_ylim(0, 105)
    usage_ax.set_ylabel("% of codebook used", fontsize=8)
    usage_ax.set_title("usage per level", fontsize=9)
    perplexity_ax.set_ylabel("perplexity (effective codes)", fontsize=8)
    perplexity_ax.set_title("perplexity per level (dotted: codebook size)", fontsize=9)
    for ax in (usage_ax, perplexity_ax):
        ax.set_xlabel("residual level (1 = coarsest)", fontsize=8)
        ax.set_xticks(range(1, levels + 1))
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    if len(names) > 1:
        usage_ax.legend(fontsize=7)
    return save_png(fig, path)
