"""`mmtok eval`: measure tokenizers (and classic codecs at the same bit rate) on your media
and write a report with pictures (see `mmtok.eval.image_eval`, `audio_eval`, `video_eval`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

import mmtok
from mmtok.cli.options import POSITIVE_FLOAT
from mmtok.errors import MmtokError


def split_named(spec: str) -> tuple[str, str]:
    """`-t NAME=PATH` -> (NAME, PATH); `-t PATH` (an existing path may hold "=") -> ("", PATH)."""
    name, sep, path = spec.partition("=")
    return (name, path) if sep and not Path(spec).exists() else ("", spec)


def load_named(specs: tuple[str, ...]) -> dict[str, object]:
    """`-t PATH` (named after its folder) or `-t NAME=PATH` -> {name: tokenizer}."""
    tokenizers: dict[str, object] = {}
    for spec in specs:
        name, path = split_named(spec)
        tok = mmtok.load(path)
        name = name or Path(path.rstrip("/")).name or tok.kind
        if name in tokenizers:
            raise MmtokError(f"-t {spec}: a second tokenizer called '{name}'; name them, e.g. -t {name}2=PATH")
        tokenizers[name] = tok
    return tokenizers


@click.command(name="eval")
@click.option("-t", "--tokenizer", "tokenizers", multiple=True, required=True,
              help="Tokenizer to measure (repeatable, all of one modality; beside video ones, image tokenizers code each frame): PATH or hf: spec, or NAME=PATH.")
@click.option("--data", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Media files or folders to measure on (repeatable).")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Report folder: report.html, report.md, results.json, figures/ (replaced whole).")
@click.option("--kbps", multiple=True, type=POSITIVE_FLOAT, help="Audio: bitrates to measure (repeatable; default: each codec's up to 6 kbps).")
@click.option("--baseline", "baselines", multiple=True,
              help="Classic codec to compare with (repeatable): jpeg, webp, kmeans (images), opus (audio), h264 "
                   "(video). Default: all of the modality's.")
@click.option("--no-baselines", is_flag=True, help="Measure the tokenizers only.")
@click.option("--baseline-train", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Images to fit the k-means baseline on (default: with --heldout the recipe's training images, "
                   "else the evaluated images, which favours it).")
@click.option("--heldout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A training recipe: keep only the files its `exclude` globs held out of training.")
@click.option("--limit", type=click.IntRange(min=1), help="Measure at most N files, spread over the sorted list.")
@click.option("--examples", type=click.IntRange(min=0), default=4, show_default=True, help="Files shown in the pictures.")
@click.option("--seed", type=int, default=0, show_default=True)
def evaluate(
    tokenizers: tuple[str, ...], data: tuple[Path, ...], out: Path, kbps: tuple[float, ...], baselines: tuple[str, ...],
    no_baselines: bool, baseline_train: tuple[Path, ...], heldout: Path | None, limit: int | None, examples: int, seed: int,
) -> None:
    """Measure tokenizers on your media, side by side with classic codecs; write a report."""
    from mmtok.eval.options import EvalOptions
    from mmtok.eval.report import Report
    from mmtok.eval.selection import evaluation_files
    from mmtok.modalities import named

    toks = load_named(tokenizers)
    for name, tok in toks.items():  # eval measures reconstructions
        tok.require_decoder(name)
    modalities = {tok.modality for tok in toks.values()}
    media = next((named(m) for m in sorted(modalities) if modalities - {m} <= named(m).also_evaluates), None)
    if media is None:
        raise MmtokError(f"-t: tokenizers of different modalities ({', '.join(sorted(modalities))}); evaluate one modality at a time "
                         "(video also takes image tokenizers, coded frame by frame)")
    modality = media.name
    unknown = set(baselines) - set(media.baselines)
    if unknown:
        raise MmtokError(f"--baseline {sorted(unknown)[0]}: not a {modality} baseline; choose from {', '.join(media.baselines)}")
    if kbps and "kbps" not in media.encode_options:
        raise MmtokError("--kbps: only audio tokenizers have bitrates to choose")
    chosen = () if no_baselines else (baselines or media.baselines)
    files, default_train = evaluation_files(data, media, heldout, limit)
    train = tuple(str(p) for p in baseline_train) or default_train
    options = EvalOptions(chosen, tuple(kbps) or None, limit, examples, seed, True, train)
    command = "mmtok " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["eval"] else ""
    with Report(f"{', '.join(toks)} on {len(files)} {modality} file{'s' * (len(files) != 1)}", command) as report:
        media.evaluate(toks, files, report, options)
        report.write(out)
    click.echo(f"wrote {out / 'report.html'} and {out / 'report.md'}")

