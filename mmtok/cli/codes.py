"""`mmtok encode` and `mmtok decode`: media files <-> `.mmtok` token files."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.auto import tqdm

import mmtok
from mmtok.errors import MmtokError
from mmtok.tokens_file import SUFFIX, TokenFile


def _require_image(tok: mmtok.Tokenizer, where: str) -> None:
    if tok.modality != "image":
        raise MmtokError(f"{where}: {tok.kind} is a {tok.modality} tokenizer; this command handles images only for now")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-t", "--tokenizer", required=True, type=click.Path(path_type=Path), help="Tokenizer folder.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder, or FILE.mmtok for one input.")
@click.option("--batch-size", default=16, show_default=True, help="Same-size images encoded together.")
def encode(inputs: tuple[Path, ...], tokenizer: Path, out: Path, batch_size: int) -> None:
    """Encode media files (or folders of them) to .mmtok token files."""
    from mmtok.image.files import encode_image_files

    tok = mmtok.load(tokenizer)
    _require_image(tok, str(tokenizer))
    with tqdm(desc="encode", unit="file", disable=None) as bar:
        written = encode_image_files(tok, inputs, out, batch_size, on_progress=bar.update)
    click.echo(f"wrote {len(written)} token file(s) to {out}")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-t", "--tokenizer", type=click.Path(path_type=Path), help="Tokenizer folder (default: the one recorded in the token file).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder, or OUT.png for one input.")
@click.option("--format", "fmt", default="png", show_default=True, type=click.Choice(["png", "jpg", "webp"]), help="Image format in a folder.")
@click.option("--batch-size", default=16, show_default=True, help="Same-size images decoded together.")
def decode(inputs: tuple[Path, ...], tokenizer: Path | None, out: Path, fmt: str, batch_size: int) -> None:
    """Decode .mmtok token files (or folders of them) back to media."""
    from mmtok.image.files import decode_token_files

    if tokenizer is None:
        tokenizer = _recorded_tokenizer(inputs)
    tok = mmtok.load(tokenizer)
    _require_image(tok, str(tokenizer))
    with tqdm(desc="decode", unit="file", disable=None) as bar:
        written = decode_token_files(tok, inputs, out, f".{fmt}", batch_size, on_progress=bar.update)
    click.echo(f"wrote {len(written)} image(s) to {out}")


def _recorded_tokenizer(inputs: tuple[Path, ...]) -> Path:
    """The tokenizer path recorded in the first token file, if it still exists."""
    first = next((p for p in inputs if p.is_file()), None)
    if first is None:
        first = next((f for p in inputs if p.is_dir() for f in sorted(p.rglob(f"*{SUFFIX}"))), None)
    if first is None:
        raise MmtokError(f"{inputs[0]}: no token files found; pass .mmtok files or folders")
    recorded = TokenFile.load(first).tokenizer_path
    if not recorded or not Path(recorded).is_dir():
        raise MmtokError(f"{first}: the tokenizer that made it ({recorded or 'unrecorded'}) is not on this machine; pass -t TOKENIZER")
    return Path(recorded)
