"""`mmtok encode` and `mmtok decode`: media files <-> `.mmtok` token files."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.auto import tqdm

import mmtok
from mmtok.cli.options import BATCH_SIZE, FPS, POSITIVE_FLOAT, SHORT_SIDE
from mmtok.errors import MmtokError
from mmtok.tokens_file import SUFFIX, TokenFile

DEFAULT_FORMAT = {"image": "png", "audio": "wav", "video": "mp4"}
FORMATS = {"image": ("png", "jpg", "webp"), "audio": ("wav", "flac"), "video": ("mp4",)}
# Options that only make sense for one modality: option name -> modality.
MODALITY_OPTIONS = {"kbps": "audio", "num_quantizers": "audio", "fps": "video", "short_side": "video"}


def _check_options(tok: mmtok.Tokenizer, spec: str, **given) -> None:
    for name, value in given.items():
        if value is not None and MODALITY_OPTIONS[name] != tok.modality:
            flag = "--" + name.replace("_", "-")
            raise MmtokError(f"{spec}: {flag} applies to {MODALITY_OPTIONS[name]} tokenizers; {tok.kind} is a {tok.modality} tokenizer")


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
    tok = mmtok.load(tokenizer)
    _check_options(tok, tokenizer, kbps=kbps, num_quantizers=num_quantizers, fps=fps, short_side=short_side)
    if tok.modality == "video":
        from mmtok.video.files import encode_video_files

        with tqdm(desc="encode", unit="frame", disable=None) as bar:
            written = encode_video_files(tok, inputs, out, fps, short_side, progress=bar)
    elif tok.modality == "audio":
        from mmtok.audio.files import encode_audio_files

        levels = tok.levels_for(kbps=kbps, num_quantizers=num_quantizers)
        with tqdm(desc=f"encode {tok.kbps(levels):g} kbps", unit="s", unit_scale=True, disable=None) as bar:  # seconds of audio
            written = encode_audio_files(tok, inputs, out, levels, progress=bar)
    else:
        from mmtok.image.files import encode_image_files

        with tqdm(desc="encode", unit="file", disable=None) as bar:
            written = encode_image_files(tok, inputs, out, batch_size, on_progress=bar.update)
    click.echo(f"wrote {len(written)} token file(s) to {out}")


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-t", "--tokenizer", help="Tokenizer folder or hf:ORG/NAME (default: the one recorded in the token file).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder, or OUT.png / OUT.wav / OUT.mp4 for one input.")
@click.option("--format", "fmt", type=click.Choice(sorted({f for fs in FORMATS.values() for f in fs})),
              help="Output format in a folder (default png for images, wav for audio, mp4 for video).")
@click.option("--batch-size", type=BATCH_SIZE, default=16, show_default=True, help="Images: same-size images decoded together.")
def decode(inputs: tuple[Path, ...], tokenizer: str | None, out: Path, fmt: str | None, batch_size: int) -> None:
    """Decode .mmtok token files (or folders of them) back to media."""
    if tokenizer is None:
        tokenizer = _recorded_tokenizer(inputs)
    tok = mmtok.load(tokenizer)
    tok.require_decoder(tokenizer)
    fmt = fmt or DEFAULT_FORMAT[tok.modality]
    if fmt not in FORMATS[tok.modality]:
        raise MmtokError(f"--format {fmt} does not fit a {tok.modality} tokenizer; use one of {FORMATS[tok.modality]}")
    audio = tok.modality == "audio"  # progress counts seconds of audio, video frames, image files
    unit = {"audio": "s", "video": "frame", "image": "file"}[tok.modality]
    with tqdm(desc="decode", unit=unit, unit_scale=audio, disable=None) as bar:
        if tok.modality == "video":
            from mmtok.video.files import decode_video_files

            written = decode_video_files(tok, inputs, out, progress=bar)
        elif audio:
            from mmtok.audio.files import decode_audio_files

            written = decode_audio_files(tok, inputs, out, f".{fmt}", progress=bar)
        else:
            from mmtok.image.files import decode_token_files

            written = decode_token_files(tok, inputs, out, f".{fmt}", batch_size, on_progress=bar.update)
    click.echo(f"wrote {len(written)} {tok.modality} file(s) to {out}")


def _recorded_tokenizer(inputs: tuple[Path, ...]) -> str:
    """The tokenizer recorded in the first token file, if it can still be found."""
    first = next((p for p in inputs if p.is_file()), None)
    if first is None:
        first = next((f for p in inputs if p.is_dir() for f in sorted(p.rglob(f"*{SUFFIX}"))), None)
    if first is None:
        raise MmtokError(f"{inputs[0]}: no token files found; pass .mmtok files or folders")
    recorded = TokenFile.load(first).tokenizer_path
    if not recorded or not (recorded.startswith("hf:") or Path(recorded).is_dir()):
        raise MmtokError(f"{first}: the tokenizer that made it ({recorded or 'unrecorded'}) is not on this machine; pass -t TOKENIZER")
    return recorded
