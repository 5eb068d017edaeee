"""`mmtok detokenize`: generated LLM ids -> text, media files and a transcript
(see `mmtok.llm.detokenize`)."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.auto import tqdm

from mmtok.cli.options import FPS
from mmtok.errors import MmtokError
from mmtok.llm.options import POLICIES


def tokenizer_overrides(specs: tuple[str, ...]) -> dict[str, str]:
    """`-t NAME=PATH` options -> {stream name: tokenizer path}."""
    overrides: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise MmtokError(f"-t {spec}: expected NAME=PATH, e.g. -t image=./my-tokenizer")
        overrides[name] = path
    return overrides


@click.command()
@click.argument("ids_file", metavar="IDS.json", type=click.Path(path_type=Path))
@click.option("--vocab", "vocab_dir", required=True, type=click.Path(path_type=Path),
              help="Extended checkpoint folder (made by `mmtok extend`, holds mmtok_vocab.json).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder (a sub-folder per sequence of a batch).")
@click.option("--policy", type=click.Choice(POLICIES), default="repair", show_default=True,
              help="Malformed media spans: fail (strict), make the best valid media (repair) or skip them (drop).")
@click.option("--fps", type=FPS, default=24.0, show_default=True, help="Frame rate of decoded videos.")
@click.option("-t", "--tokenizer", "tokenizers", multiple=True, help="NAME=PATH: decode stream NAME with this tokenizer (repeatable).")
def detokenize(ids_file: Path, vocab_dir: Path, out: Path, policy: str, fps: float, tokenizers: tuple[str, ...]) -> None:
    """Turn LLM ids (a JSON list, or a list of lists) into text, media files and a transcript."""
    from mmtok.llm.detokenize import detokenize as run
    from mmtok.llm.detokenize import read_ids
    from mmtok.llm.vocab import MediaVocab

    overrides = tokenizer_overrides(tokenizers)
    sequences, batched = read_ids(ids_file)
    vocab = MediaVocab.load(vocab_dir, overrides)
    with tqdm(desc="decode", unit="span", disable=None) as bar:
        results = run(vocab, sequences, out, policy, fps, batched, source=str(ids_file), progress=bar)
    for i, result in enumerate(results):
        where = f"sequence {i}: " if batched else ""
        for problem in result.parsed.problems:
            click.echo(f"warning: {where}{problem}", err=True)
        click.echo(f"{result.folder}: {result.summary()}")
