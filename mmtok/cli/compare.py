"""`mmtok compare A B`: quality of reconstructions against the originals.

A and B are two files, or two folders whose files are paired by relative path without
suffix (so `photos/cat.jpg` pairs with `recon/cat.png`, `speech/a.flac` with `recon/a.wav`).
Images: PSNR / SSIM / MS-SSIM (n/a below 161 px). Audio (compared as mono at the original's sample rate): multi-scale
mel distance, SI-SDR and STOI. Video: PSNR / SSIM averaged over frames and temporal flicker.
"""

from __future__ import annotations

from pathlib import Path

import click

from mmtok.errors import MmtokError
from mmtok.files import collect
from mmtok.media.audio import AUDIO_SUFFIXES
from mmtok.media.image import IMAGE_SUFFIXES
from mmtok.media.video import VIDEO_SUFFIXES

SUFFIXES = {"image": IMAGE_SUFFIXES, "video": VIDEO_SUFFIXES, "audio": AUDIO_SUFFIXES}


def _modality(suffix: str) -> str | None:
    return next((m for m, suffixes in SUFFIXES.items() if suffix.lower() in suffixes), None)


def pair_files(a: Path, b: Path) -> tuple[str, list[tuple[Path, Path]]]:
    """(modality, [(original, reconstruction), ...])."""
    if a.is_file() and b.is_file():
        modality = _modality(a.suffix)
        if modality is None:
            raise MmtokError(f"{a}: not an image, audio or video file")
        return modality, [(a, b)]
    if not (a.is_dir() and b.is_dir()):
        raise MmtokError(f"{a} / {b}: pass two files or two folders")
    found = {_modality(p.suffix) for p in a.rglob("*") if p.is_file()} - {None}
    modality = next((m for m in SUFFIXES if m in found), "image")  # the first kind present
    suffixes = SUFFIXES[modality]
    files_a, _ = collect([a], suffixes, modality)
    files_b, _ = collect([b], suffixes, modality)
    by_stem = {f.relative_to(b).with_suffix(""): f for f in files_b}
    pairs = [(f, by_stem[f.relative_to(a).with_suffix("")]) for f in files_a if f.relative_to(a).with_suffix("") in by_stem]
    if not pairs:
        raise MmtokError(f"{b}: no file matches a name in {a}; compare the originals with their reconstructions")
    return modality, pairs


def image_scores(fa: Path, fb: Path) -> dict[str, float]:
    from mmtok.eval.image_report import image_scores as scores
    from mmtok.media.image import read_image

    x, y = read_image(fa), read_image(fb)
    if x.shape != y.shape:
        raise MmtokError(f"{fb}: size {tuple(y.shape[1:])} differs from {fa} {tuple(x.shape[1:])}")
    s = scores(x, y)
    return {"PSNR": s["psnr"], "SSIM": s["ssim"], "MS-SSIM": float("nan") if s["ms_ssim"] is None else s["ms_ssim"]}


def audio_scores(fa: Path, fb: Path) -> dict[str, float]:
    from mmtok.eval.audio_metrics import clip_scores
    from mmtok.media.audio import audio_info, read_audio

    rate = audio_info(fa).sample_rate
    x, y = read_audio(fa, rate, 1), read_audio(fb, rate, 1)
    if abs(x.shape[-1] - y.shape[-1]) > 0.01 * x.shape[-1]:
        raise MmtokError(f"{fb}: length {y.shape[-1] / rate:.2f} s differs from {fa} {x.shape[-1] / rate:.2f} s")
    n = min(x.shape[-1], y.shape[-1])
    s = clip_scores(y[:, :n], x[:, :n], rate)
    return {"mel": s["mel_distance"], "SI-SDR": s["si_sdr"], "STOI": s["stoi"]}


def video_scores(fa: Path, fb: Path) -> dict[str, float]:
    from mmtok.eval.video_clips import read_clip
    from mmtok.eval.video_metrics import clip_scores

    x, y = read_clip(fa), read_clip(fb)
    # yuv420p stores odd sizes one pixel larger (media/video.py): compare the original's area.
    y = y[:, :, : x.shape[2], : x.shape[3]]
    if x.shape != y.shape:
        raise MmtokError(f"{fb}: {y.shape[1]} frames of {tuple(y.shape[2:])} differ from {fa} {x.shape[1]} of {tuple(x.shape[2:])}")
    s = clip_scores(x, y)
    return {"PSNR": s["psnr"], "SSIM": s["ssim"], "flicker": s["flicker"] or 0.0}


SCORES = {"image": image_scores, "audio": audio_scores, "video": video_scores}


@click.command()
@click.argument("originals", type=click.Path(path_type=Path))
@click.argument("reconstructions", type=click.Path(path_type=Path))
def compare(originals: Path, reconstructions: Path) -> None:
    """Print quality of RECONSTRUCTIONS against ORIGINALS (images: PSNR dB, SSIM, MS-SSIM; audio: mel
    distance, SI-SDR dB, STOI; video: PSNR dB, SSIM per frame, temporal flicker)."""
    modality, pairs = pair_files(originals, reconstructions)
    scores = SCORES[modality]
    rows = []
    for fa, fb in pairs:
        rows.append(scores(fa, fb))
        click.echo(f"{fa.name:40s} " + "  ".join(f"{k} {v:7.3f}" for k, v in rows[-1].items()))
    if len(rows) > 1:
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        click.echo(f"{f'mean of {len(rows)} files':40s} " + "  ".join(f"{k} {v:7.3f}" for k, v in mean.items()))
