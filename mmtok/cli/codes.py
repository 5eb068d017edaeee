"""`mmtok encode` and `mmtok decode`: media files <-> `.mmtok` token files."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.auto import tqdm

import mmtok
from mmtok.cli.options import BATCH_SIZE, FPS, POSITIVE_FLOAT, SHORT_SIDE
from mmtok.errors import MmtokError

# Every media type's `Modality.formats`, spelled out so that `mmtok --help` need not import the
# media types (and torch models); tests/test_cli.py checks that the two agree.
FORMATS = ("flac", "jpg", "mp4", "png", "wav", "webp")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-t", "--tokenizer", required=True, help="Tokenizer folder, or hf:ORG/NAME for a pretrained one (EnCodec, DAC, Mimi, Emu3).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder, or FILE.mmtok for one input.")
@click.option("--batch-size", type=BATCH_SIZE, default=16, show_default=True, help="Images: same-size images encoded together.")
@click.option("--kbps", type=POSITIVE_FLOAT, help="Audio: bitrate (uses the most residual levels that fit).")
@click.option("--num-quantizers", type=click.IntRange(min=1), help="Audio: number of residual levels to keep.")
@click.option("--fps", type=FPS, help="Video: resample to this frame rate on the way in (default: the file's).")
@click.option("--short-side", type=SHORT_SIDE, help="Video: resize so the shorter side has this many pixels (aspect kept).")
def encode(
    inputs: tuple[Path, ...], tokenizer: str, out: Path, batch_size: int, kbps: float | None, num_quantizers: int | None,
    fps: float | None, short_side: int | None,
) -> None:
    """Encode media files (or folders of them) to .mmtok token files."""
    from mmtok.modalities import check_encode_options, modality_of

    tok = mmtok.load(tokenizer)
    check_encode_options(tok, tokenizer, kbps=kbps, num_quantizers=num_quantizers, fps=fps, short_side=short_side)
    modality = modality_of(tok)
    given = {"batch_size": batch_size, "kbps": kbps, "num_quantizers": num_quantizers, "fps": fps, "short_side": short_side}
    options = {k: v for k, v in given.items() if k in modality.encode_options}
    unit, scale = modality.progress_unit, modality.progress_unit_scale
    with tqdm(desc=modality.progress_label(tok, **options), unit=unit, unit_scale=scale, disable=None) as bar:
        written = modality.encode_files(tok, inputs, out, bar, **options)
    click.echo(f"wrote {len(written)} token file(s) to {out}")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-t", "--tokenizer", help="Tokenizer folder or hf:ORG/NAME (default: the one recorded in the token file).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder, or OUT.png / OUT.wav / OUT.mp4 for one input.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format in a folder (default png for images, wav for audio, mp4 for video).")
@click.option("--batch-size", type=BATCH_SIZE, default=16, show_default=True, help="Images: same-size images decoded together.")
def decode(inputs: tuple[Path, ...], tokenizer: str | None, out: Path, fmt: str | None, batch_size: int) -> None:
    """Decode .mmtok token files (or folders of them) back to media."""
    from mmtok.modalities import modality_of

    if tokenizer is None:
        tokenizer = _recorded_tokenizer(inputs)
    tok = mmtok.load(tokenizer)
    tok.require_decoder(tokenizer)
    modality = modality_of(tok)
    fmt = fmt or modality.default_format
    modality.check_format(fmt)
    options = {"batch_size": batch_size} if "batch_size" in modality.decode_options else {}
    with tqdm(desc="decode", unit=modality.progress_unit, unit_scale=modality.progress_unit_scale, disable=None) as bar:
        written = modality.decode_files(tok, inputs, out, fmt, bar, **options)
    click.echo(f"wrote {len(written)} {tok.modality} file(s) to {out}")


def _recorded_tokenizer(inputs: tuple[Path, ...]) -> str:
    """The tokenizer recorded in the first token file, if it can still be found."""
    from mmtok.tokens_file import SUFFIX, TokenFile

    first = next((p for p in inputs if p.is_file()), None)
    if first is None:
        first = next((f for p in inputs if p.is_dir() for f in sorted(p.rglob(f"*{SUFFIX}"))), None)
    if first is None:
        raise MmtokError(f"{inputs[0]}: no token files found; pass .mmtok files or folders")
    recorded = TokenFile.load(first).tokenizer_path
    if not recorded or not (recorded.startswith("hf:") or Path(recorded).is_dir()):
        raise MmtokError(f"{first}: the tokenizer that made it ({recorded or 'unrecorded'}) is not on this machine; pass -t TOKENIZER")
    return recorded
