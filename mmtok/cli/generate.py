"""`mmtok generate`: sample from an extended LLM under `MediaLogitsProcessor` (the loop is
`mmtok.llm.generate`, in mmtok/llm/generation.py) and write the ids as JSON for `mmtok detokenize`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mmtok.errors import MmtokError
from mmtok.files import atomic_write


def parse_grid(spec: str | None, sides: int, flag: str) -> tuple[int, ...] | None:
    """`"16x16"` -> (16, 16); None stays None."""
    if spec is None:
        return None
    try:
        grid = tuple(int(x) for x in spec.lower().split("x"))
    except ValueError:
        grid = ()
    if len(grid) != sides or min(grid) < 1:
        raise MmtokError(f"{flag} {spec}: expected {sides} positive sides like {'x'.join(['16'] * sides)}")
    return grid


@click.command()
@click.option("--llm", required=True, type=click.Path(path_type=Path), help="Extended checkpoint folder (from `mmtok extend`).")
@click.option("-p", "--prompt", "prompts", multiple=True, required=True,
              help="Prompt text (repeatable: one batch row each). Plain text: a string like '<|image_start|>' stays text.")
@click.option("--media", "media", multiple=True,
              help="Open a media span after the prompt: a stream name or modality (image, audio, video), or 'text' for none. "
                   "Once for every prompt, or once per prompt in order.")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="JSON file for the ids (prompt + generated).")
@click.option("--image-grid", help="Force image spans to this grid of codes, HxW.")
@click.option("--video-grid", help="Force video spans to this grid of codes, TxHxW.")
@click.option("--audio-frames", type=click.IntRange(min=1), help="Force audio spans to this many frames.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--greedy", is_flag=True, help="Greedy decoding instead of sampling.")
@click.option("--seed", type=int, default=0, show_default=True)
def generate(
    llm: Path, prompts: tuple[str, ...], media: tuple[str, ...], out: Path, image_grid: str | None, video_grid: str | None,
    audio_frames: int | None, max_new_tokens: int, greedy: bool, seed: int,
) -> None:
    """Generate interleaved text and media ids with every media span kept well-formed."""
    from transformers import AutoModelForCausalLM

    from mmtok.llm import MediaVocab
    from mmtok.llm.generation import generate as generate_ids

    grids = {"image": parse_grid(image_grid, 2, "--image-grid"), "video": parse_grid(video_grid, 3, "--video-grid"),
             "audio": (audio_frames,) if audio_frames else None}
    if len(media) not in (0, 1, len(prompts)):
        raise MmtokError(f"--media given {len(media)} times for {len(prompts)} prompts; give it once, or once per prompt")
    vocab = MediaVocab.load(llm)
    model = AutoModelForCausalLM.from_pretrained(llm)
    rows = generate_ids(model, vocab, prompts, media=media or None, grids=grids,
                        max_new_tokens=max_new_tokens, greedy=greedy, seed=seed)
    atomic_write(out, lambda tmp: tmp.write_text(json.dumps(rows if len(rows) > 1 else rows[0])))
    click.echo(f"wrote {len(rows)} sequence(s) to {out}; decode them with `mmtok detokenize --vocab {llm} {out} -o DIR`")
