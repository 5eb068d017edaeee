"""`mmtok info PATH`: describe a tokenizer folder or a `.mmtok` token file."""

from __future__ import annotations

import json
from pathlib import Path

import click

import mmtok
from mmtok.errors import MmtokError


@click.command()
@click.argument("path", type=click.Path(path_type=Path))  # or hf:ORG/NAME
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path: Path, as_json: bool) -> None:
    """Describe a tokenizer folder or a .mmtok token file."""
    from mmtok.tokens_file import SUFFIX, TokenFile

    if path.is_file() and path.suffix == SUFFIX:
        tf = TokenFile.load(path)
        facts = {
            "token file": str(path), "modality": tf.modality, "tokenizer": tf.tokenizer,
            "fingerprint": tf.fingerprint, "grid": list(tf.codes.shape), "tokens": tf.codes.numel(),
            "original": tf.original, "source": tf.source, "tokenizer_path": tf.tokenizer_path,
        }
    elif path.is_dir() or str(path).startswith("hf:"):
        tok = mmtok.load(str(path))
        facts = {"tokenizer": str(path), **tok.describe()}  # each media type leads with what an LLM pays in tokens
    else:
        raise MmtokError(f"{path}: not a tokenizer folder or {SUFFIX} file; check the path")
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        if key == "config":
            value = json.dumps(value)
        click.echo(f"{key:>{width}}: {value}")
