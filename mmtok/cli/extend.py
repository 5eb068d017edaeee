"""`mmtok extend`: add media tokens to a transformers causal LM (see `mmtok.llm.extend`)."""

from __future__ import annotations

from pathlib import Path

import click

import mmtok
from mmtok.errors import MmtokError
from mmtok.llm.options import DEFAULT_MAX_DIM, INITS, StreamOptions


def named_tokenizers(specs: tuple[str, ...]) -> dict[str, mmtok.Tokenizer]:
    """`-t PATH` (named after its modality) or `-t NAME=PATH` -> {name: tokenizer}."""
    tokenizers: dict[str, mmtok.Tokenizer] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or Path(spec).exists():
            name, path = "", spec
        tok = mmtok.load(path)
        name = name or tok.modality
        if not name.replace("_", "").isalnum():
            raise MmtokError(f"-t {spec}: stream names may only hold letters, digits and '_'")
        if name in tokenizers:
            raise MmtokError(f"-t {spec}: a second '{name}' stream; name them, e.g. -t {name}2=PATH")
        tokenizers[name] = tok
    return tokenizers


@click.command()
@click.option("--llm", required=True, help="transformers causal LM: a local folder, a hub id, or a .gguf file (or a folder holding one; dequantized).")
@click.option("-t", "--tokenizer", "tokenizers", multiple=True, required=True,
              help="Media tokenizer to add (repeatable): PATH, or NAME=PATH to name its stream (default: its modality).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="New folder for the extended checkpoint.")
@click.option("--init", type=click.Choice(INITS), default="mean-noise", show_default=True,
              help="New embedding rows: mean + noise at the text rows' scale, projected codebook vectors, or plain mean.")
@click.option("--pad-to-multiple-of", type=click.IntRange(1, 65536), help="Pad the embedding matrix to a multiple of N rows (pad rows are never generated).")
@click.option("--row-separators/--no-row-separators", default=False, show_default=True, help="Image / video: a token ends every row of codes.")
@click.option("--frame-separators/--no-frame-separators", default=False, show_default=True, help="Video: a token ends every latent frame.")
@click.option("--audio-levels", type=click.IntRange(min=1), help="Audio: keep only the first K residual levels (default: all).")
@click.option("--max-grid", type=click.IntRange(1, 4096), default=DEFAULT_MAX_DIM, show_default=True, help="Largest grid side a span header can state.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random initialisation.")
@click.option("--allow-drift", is_flag=True,
              help="Write the checkpoint even when its text behaviour drifts past the bounds (a loud warning instead of an error).")
def extend(
    llm: str, tokenizers: tuple[str, ...], out: Path, init: str, pad_to_multiple_of: int | None,
    row_separators: bool, frame_separators: bool, audio_levels: int | None, max_grid: int, seed: int,
    allow_drift: bool,
) -> None:
    """Add media tokens to an LLM: one block of ids per tokenizer, initialised embeddings.

    Before writing, the extended model is compared with the base model on a built-in text
    sample (KL, probability on the new ids, greedy continuations); past the bounds it
    refuses unless --allow-drift."""
    from mmtok.llm.extend import extend_llm

    options = StreamOptions(row_separators, frame_separators, audio_levels, max_grid)
    vocab = extend_llm(
        llm, named_tokenizers(tokenizers), out, init, pad_to_multiple_of, options, seed, allow_drift,
        log=lambda line: click.echo(line, err=True),
    )
    for s in vocab.streams:
        click.echo(f"{s.name}: {' and '.join(s.media_types)}, ids {s.start_id}..{s.stop_id - 1}, code ranges {s.code_ranges()}")
    click.echo(f"wrote {out}: {vocab.vocab_size:,} tokens ({vocab.text_vocab_size:,} text), {vocab.embedding_rows:,} embedding rows")
