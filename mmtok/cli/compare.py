"""`mmtok compare A B`: quality of reconstructions against the originals.

A and B are two files, or two folders whose files are paired by relative path without
suffix (so `photos/cat.jpg` pairs with `recon/cat.png`, `speech/a.flac` with `recon/a.wav`).
The media type (by suffix) scores them (`Modality.scores`): images PSNR / SSIM / MS-SSIM
(n/a below 161 px); audio, compared as mono at the original's sample rate, multi-scale mel
distance, SI-SDR and STOI; video PSNR / SSIM averaged over frames and temporal flicker.
"""

from __future__ import annotations

from pathlib import Path

import click

from mmtok.errors import MmtokError
from mmtok.files import collect


def pair_files(a: Path, b: Path):
    """(media type, [(original, reconstruction), ...])."""
    from mmtok.modalities import MODALITIES, for_suffix

    if a.is_file() and b.is_file():
        modality = for_suffix(a.suffix)
        if modality is None:
            raise MmtokError(f"{a}: not an image, audio or video file")
        return modality, [(a, b)]
    if not (a.is_dir() and b.is_dir()):
        raise MmtokError(f"{a} / {b}: pass two files or two folders")
    found = {for_suffix(p.suffix) for p in a.rglob("*") if p.is_file()} - {None}
    modality = next((m for m in MODALITIES.values() if m in found), MODALITIES["image"])  # the first kind present
    files_a, _ = collect([a], set(modality.suffixes), modality.name)
    files_b, _ = collect([b], set(modality.suffixes), modality.name)
    by_stem = {f.relative_to(b).with_suffix(""): f for f in files_b}
    pairs = [(f, by_stem[f.relative_to(a).with_suffix("")]) for f in files_a if f.relative_to(a).with_suffix("") in by_stem]
    if not pairs:
        raise MmtokError(f"{b}: no file matches a name in {a}; compare the originals with their reconstructions")
    return modality, pairs


@click.command()
@click.argument("originals", type=click.Path(path_type=Path))
@click.argument("reconstructions", type=click.Path(path_type=Path))
def compare(originals: Path, reconstructions: Path) -> None:
    """Print quality of RECONSTRUCTIONS against ORIGINALS (images: PSNR dB, SSIM, MS-SSIM; audio: mel
    distance, SI-SDR dB, STOI; video: PSNR dB, SSIM per frame, temporal flicker)."""
    modality, pairs = pair_files(originals, reconstructions)
    rows = []
    for fa, fb in pairs:
        rows.append(modality.scores(fa, fb))
        click.echo(f"{fa.name:40s} " + "  ".join(f"{k} {v:7.3f}" for k, v in rows[-1].items()))
    if len(rows) > 1:
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        click.echo(f"{f'mean of {len(rows)} files':40s} " + "  ".join(f"{k} {v:7.3f}" for k, v in mean.items()))
