"""`mmtok pretokenize`: a folder of media or a JSONL manifest -> LLM-ready id shards
(see `mmtok.llm.pretokenize` for the pipeline and `mmtok.llm.shards` for the format)."""

from __future__ import annotations

from pathlib import Path

import click

from mmtok.cli.options import BATCH_SIZE, FPS, SHORT_SIDE
from mmtok.errors import MmtokError


@click.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--vocab", required=True, type=click.Path(path_type=Path), help="Extended LLM checkpoint (made by `mmtok extend`).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder (an interrupted one is resumed).")
@click.option("--workers", type=click.IntRange(0, 256), default=0, show_default=True, help="Processes decoding media files (0: in the main process).")
@click.option("--batch-size", type=BATCH_SIZE, default=16, show_default=True, help="Same-size images encoded together.")
@click.option("--shard-items", type=click.IntRange(min=1), help="Items per shard; also how often progress is committed.  [default: 1000]")
@click.option("--bos/--no-bos", default=None, help="Start every item with the LLM's BOS token.  [default: bos]")
@click.option("--eos/--no-eos", default=None, help="End every item with the LLM's EOS token.  [default: eos]")
@click.option("--fps", type=FPS, help="Video: resample to this frame rate (default: each file's; a manifest part may set its own).")
@click.option("--short-side", type=SHORT_SIDE, help="Video: resize so the shorter side has this many pixels.")
@click.option("--rank", type=click.IntRange(min=0), help="This process's rank (default: $RANK as torchrun / accelerate set it, else 0).")
@click.option("--world-size", type=click.IntRange(min=1), help="Number of processes sharing the items (default: $WORLD_SIZE, else 1).")
@click.option("--device", help="Device for the tokenizers (default: cuda:$LOCAL_RANK when CUDA is available, else cpu).")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any item failed (the shards are written all the same).")
def pretokenize(
    input: Path, vocab: Path, out: Path, workers: int, batch_size: int, shard_items: int | None, bos: bool | None,
    eos: bool | None, fps: float | None, short_side: int | None, rank: int | None, world_size: int | None,
    device: str | None, strict: bool,
) -> None:
    """Turn INPUT (a folder of media files, or a .jsonl manifest of interleaved text and
    media) into shards of LLM token ids for the checkpoint at --vocab.

    Items that cannot be made (missing or corrupt files, malformed lines) are skipped and
    listed in OUT/rankNNNNN.failures.jsonl; the exit status is 0 when the pipeline ran
    (1 with --strict if any item failed). Several processes (torchrun, accelerate launch)
    each take their share of the items and write their own shards.
    """
    from mmtok.llm.pretokenize import pretokenize as run

    summary = run(
        input, vocab, out, workers=workers, batch_size=batch_size, shard_items=shard_items, bos=bos, eos=eos, fps=fps,
        short_side=short_side, rank=rank, world_size=world_size, device=device,
        log=lambda line: click.echo(line, err=True),
    )
    who = f"rank {summary.rank}/{summary.world_size}: " if summary.world_size > 1 else ""
    failed = f", {summary.failed} failed (listed in {summary.failures_file})" if summary.failed else ", 0 failed"
    totals = f"{summary.tokenized} items tokenized ({summary.tokens:,} tokens in {summary.shards} shards){failed}"
    if summary.already_complete:
        click.echo(f"{who}{out}: already complete, nothing to do: {totals}")
    else:
        rate = summary.processed_now / summary.seconds if summary.seconds > 0 else 0.0
        resumed = f", resumed at item {summary.resumed_at}" if summary.resumed_at else ""
        click.echo(f"{who}{out}: {totals}; {summary.processed_now} items in {summary.seconds:.1f} s ({rate:.1f} items/s){resumed}")
    if strict and summary.failed:
        raise MmtokError(f"{summary.failed} of {summary.items} items failed (--strict); reasons in {summary.failures_file}")
