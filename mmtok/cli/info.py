"""`mmtok info PATH`: describe a tokenizer folder or a `.mmtok` token file."""

from __future__ import annotations

import json
from pathlib import Path

import click

import mmtok
from mmtok.errors import MmtokError
from mmtok.tokens_file import SUFFIX, TokenFile


@click.command()
@click.argument("path", type=click.Path(path_type=Path))  # or hf:ORG/NAME
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(path: Path, as_json: bool) -> None:
    """Describe a tokenizer folder or a .mmtok token file."""
    if path.is_file() and path.suffix == SUFFIX:
        tf = TokenFile.load(path)
        facts = {
            "token file": str(path), "modality": tf.modality, "tokenizer": tf.tokenizer,
            "fingerprint": tf.fingerprint, "grid": list(tf.codes.shape), "tokens": tf.codes.numel(),
            "original": tf.original, "source": tf.source, "tokenizer_path": tf.tokenizer_path,
        }
    elif path.is_dir() or str(path).startswith("hf:"):
        tok = mmtok.load(str(path))
        facts = {"tokenizer": str(path), **tok.describe()}
        if tok.modality == "image":
            facts["downsample"] = tok.downsample
        elif tok.modality == "audio":
            facts.update(sample_rate=tok.sample_rate, channels=tok.channels, hop_length=tok.hop_length,
                         frame_rate=tok.frame_rate, kbps_by_levels=tok.bitrates(),
                         tokens_per_second_by_levels={k: tok.tokens_per_second(k) for k in tok.bitrates()})
        elif tok.modality == "video":
            facts.update(spatial_downsample=tok.spatial_downsample, temporal_downsample=tok.temporal_downsample,
                         first_frame_alone=tok.first_frame_alone)
    else:
        raise MmtokError(f"{path}: not a tokenizer folder or {SUFFIX} file; check the path")
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        if key == "config":
            value = json.dumps(value)
        click.echo(f"{key:>15}: {value}")
