"""`mmtok compare A B`: PSNR / SSIM between original images and reconstructions.

A and B are two image files, or two folders whose images are paired by relative path
without suffix (so `photos/cat.jpg` pairs with `recon/cat.png`).
"""

from __future__ import annotations

from pathlib import Path

import click

from mmtok.errors import MmtokError
from mmtok.eval.metrics import psnr, ssim
from mmtok.image.files import collect
from mmtok.media.image import IMAGE_SUFFIXES, read_image, to_model


def pair_images(a: Path, b: Path) -> list[tuple[Path, Path]]:
    if a.is_file() and b.is_file():
        return [(a, b)]
    if not (a.is_dir() and b.is_dir()):
        raise MmtokError(f"{a} / {b}: pass two image files or two folders")
    files_a, _ = collect([a], IMAGE_SUFFIXES, "image")
    files_b, _ = collect([b], IMAGE_SUFFIXES, "image")
    by_stem = {f.relative_to(b).with_suffix(""): f for f in files_b}
    pairs = [(f, by_stem[f.relative_to(a).with_suffix("")]) for f in files_a if f.relative_to(a).with_suffix("") in by_stem]
    if not pairs:
        raise MmtokError(f"{b}: no image matches a name in {a}; compare the originals with their reconstructions")
    return pairs


@click.command()
@click.argument("originals", type=click.Path(path_type=Path))
@click.argument("reconstructions", type=click.Path(path_type=Path))
def compare(originals: Path, reconstructions: Path) -> None:
    """Print PSNR (dB) and SSIM of RECONSTRUCTIONS against ORIGINALS."""
    rows = []
    for fa, fb in pair_images(originals, reconstructions):
        x, y = read_image(fa), read_image(fb)
        if x.shape != y.shape:
            raise MmtokError(f"{fb}: size {tuple(y.shape[1:])} differs from {fa} {tuple(x.shape[1:])}")
        xa, yb = to_model(x)[None], to_model(y)[None]
        rows.append((fa.name, float(psnr(xa, yb)), float(ssim(xa, yb))))
        click.echo(f"{fa.name:40s} PSNR {rows[-1][1]:6.2f} dB  SSIM {rows[-1][2]:.4f}")
    if len(rows) > 1:
        n = len(rows)
        click.echo(f"{'mean of ' + str(n) + ' images':40s} PSNR {sum(r[1] for r in rows) / n:6.2f} dB  SSIM {sum(r[2] for r in rows) / n:.4f}")
