"""Pictures of a video evaluation: frame strips, quality per frame, rate-distortion.

    save_frame_strip(path, [StripClip("clip.mp4", [0, 9, 18], [("original", x), ("ours", y)])])
    save_quality_per_frame(path, "clip.mp4: 30 frames", {"ours": scores, "H.264": scores}, group_starts=[0, 1, 5])
    save_rate_distortion(path, points, sweep)

Frames are uint8 `[3,n,H,W]` tensors; scores are `mmtok.eval.video_metrics.clip_scores`
dicts. Figures use matplotlib's object API (no pyplot state) and are written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from PIL import Image

from mmtok.files import atomic_write

COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
H264_COLOR = "tab:orange"


@dataclass
class StripClip:
    """One block of a frame strip: a `title`, the `frame_numbers` shown (column headers), and
    rows of (label, uint8 `[3,len(frame_numbers),H,W]` frames), the original first."""

    title: str
    frame_numbers: Sequence[int]
    rows: Sequence[tuple[str, torch.Tensor]]


def save_frame_strip(path: str | Path, clips: Sequence[StripClip], thumb_height: int = 160, max_width: int = 1300,
                     max_bytes: int = 250_000) -> Path:
    """JPEG of each clip's rows side by side, frames at `thumb_height` pixels (less if the
    strip would be wider than `max_width`; frames smaller than that are enlarged by a whole
    factor, as blocks of pixels); quality lowered until the file is under `max_bytes`."""
    label_w, title_h, header_h, gap = 190, 24, 16, 3
    layouts = []
    for clip in clips:
        height, width = clip.rows[0][1].shape[-2:]
        n = len(clip.frame_numbers)
        th = min(thumb_height, int((max_width - label_w) / n * height / width))
        if height <= th:  # small frames: enlarged by a whole factor, pixels kept sharp
            th = height * max(1, th // height)
        tw = max(1, round(width * th / height))
        layouts.append((clip, th, tw, title_h + header_h + len(clip.rows) * (th + gap)))
    fig_w = max(label_w + len(c.frame_numbers) * (tw + gap) for c, _, tw, _ in layouts)
    fig_h = sum(h for *_, h in layouts) + 8 * (len(layouts) - 1)
    fig = Figure(figsize=(fig_w / 100, fig_h / 100), dpi=100)
    top = fig_h  # in pixels from the bottom

    def axes_at(x: float, y_top: float, w: float, h: float):
        return fig.add_axes((x / fig_w, (y_top - h) / fig_h, w / fig_w, h / fig_h))

    for clip, th, tw, block_h in layouts:
        fig.text(4 / fig_w, (top - 4) / fig_h, clip.title, va="top", fontsize=10, weight="bold")
        for c, number in enumerate(clip.frame_numbers):
            fig.text((label_w + c * (tw + gap) + tw / 2) / fig_w, (top - title_h) / fig_h, f"frame {number}",
                     ha="center", va="top", fontsize=8, color="dimgray")
        y = top - title_h - header_h
        for label, frames in clip.rows:
            fig.text((label_w - 6) / fig_w, (y - th / 2) / fig_h, label, ha="right", va="center", fontsize=8, wrap=True)
            for c in range(len(clip.frame_numbers)):
                image = Image.fromarray(frames[:, c].permute(1, 2, 0).numpy())
                if image.size != (tw, th):
                    smaller = th < height
                    image = image.resize((tw, th), Image.Resampling.LANCZOS if smaller else Image.Resampling.NEAREST)
                ax = axes_at(label_w + c * (tw + gap), y, tw, th)
                ax.imshow(image, interpolation="none", aspect="auto")
                ax.set_axis_off()
            y -= th + gap
        top -= block_h + 8
    return _save_jpeg(fig, Path(path), max_bytes)


def _save_jpeg(fig: Figure, path: Path, max_bytes: int) -> Path:
    png = io.BytesIO()
    fig.savefig(png, format="png")  # rendered once, compressed at falling qualities
    image = Image.open(png).convert("RGB")
    for quality in (88, 80, 72, 64, 56, 48, 40):
        data = io.BytesIO()
        image.save(data, format="JPEG", quality=quality, optimize=True)
        if data.tell() <= max_bytes:
            break
    atomic_write(path, lambda tmp: tmp.write_bytes(data.getvalue()))
    return path


def method_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per method: H.264 rows orange, the others in turn from `COLORS`."""
    out, i = {}, 0
    for label in labels:
        if label.startswith("H.264"):
            out[label] = H264_COLOR
        else:
            out[label] = COLORS[i % len(COLORS)]
            i += 1
    return out


def save_quality_per_frame(path: str | Path, title: str, series: Mapping[str, dict], group_starts: Sequence[int] = (),
                           colors: Mapping[str, str] | None = None) -> Path:
    """PNG: PSNR and SSIM per frame and flicker per transition of one clip, a line per
    method (`series`: label -> `clip_scores` dict; H.264 lines dashed). Dotted verticals
    mark `group_starts`, the first frame of each latent frame of a tokenizer."""
    colors = colors or method_colors(list(series))
    fig = Figure(figsize=(10, 7.5), dpi=100, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    panels = [("psnr_per_frame", "psnr", "PSNR (dB)", 0.0, "{:.2f} dB"), ("ssim_per_frame", "ssim", "SSIM", 0.0, "{:.3f}"),
              ("flicker_per_transition", "flicker", "flicker (lower is better)", 0.5, "{:.4f}")]
    for ax, (key, mean_key, ylabel, offset, fmt) in zip(axes, panels):
        for label, scores in series.items():
            values = scores[key]
            mean = "n/a" if scores[mean_key] is None else fmt.format(scores[mean_key])
            ax.plot([t + offset for t in range(len(values))], values, marker=".", markersize=4, color=colors[label],
                    linestyle="--" if label.startswith("H.264") else "-", label=f"{label}: mean {mean}")
        for start in group_starts:
            ax.axvline(start - 0.5, color="gray", alpha=0.35, linestyle=":", linewidth=1)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0].set_title(title, fontsize=10)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel("frame (flicker: between frame t and t+1)")
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp))
    return Path(path)


@dataclass
class RatePoint:
    """A method's mean over clips: `label`, bits per pixel, PSNR (dB), SSIM; `matches` names
    the tokenizer an H.264 point was matched to (drawn hollow, joined to it)."""

    label: str
    bpp: float
    psnr: float
    ssim: float
    matches: str | None = None


def save_rate_distortion(path: str | Path, points: Sequence[RatePoint], sweep: Sequence[dict] = (),
                         colors: Mapping[str, str] | None = None) -> Path:
    """PNG with two panels, PSNR and SSIM against bits per pixel (log scale): tokenizers as
    filled markers, H.264 matched to each as a hollow square joined by a dotted line, and the
    H.264 CRF `sweep` (dicts with crf, bpp, psnr, ssim) as a curve labelled with its CRFs."""
    tokens = [p for p in points if p.matches is None]
    colors = colors or method_colors([p.label for p in tokens])
    fig = Figure(figsize=(11, 4.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, ylabel in zip(axes, ("psnr", "ssim"), ("PSNR (dB), higher is better", "SSIM, higher is better")):
        if sweep:
            ax.plot([s["bpp"] for s in sweep], [s[key] for s in sweep], color=H264_COLOR, marker="o", markersize=4,
                    label="H.264, CRF sweep (libx264)")
            for s in sweep:
                ax.annotate(f"{s['crf']:g}", (s["bpp"], s[key]), textcoords="offset points", xytext=(4, -10), fontsize=7,
                            color=H264_COLOR)
        by_label = {p.label: p for p in tokens}
        for p in tokens:
            ax.plot([p.bpp], [getattr(p, key)], marker="*", markersize=14, color=colors[p.label], linestyle="none", label=p.label)
        for p in points:
            if p.matches is None:
                continue
            own = by_label[p.matches]
            ax.plot([own.bpp, p.bpp], [getattr(own, key), getattr(p, key)], color=colors[p.matches], linestyle=":", linewidth=1)
            ax.plot([p.bpp], [getattr(p, key)], marker="s", markersize=8, markerfacecolor="white", color=colors[p.matches],
                    linestyle="none", label=p.label)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("bits per pixel (log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")  # rate-distortion curves rise to the right: that corner stays empty
    fig.suptitle("Rate-distortion: means over clips (CRF numbers on the H.264 curve)", fontsize=10)
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp))
    return Path(path)
