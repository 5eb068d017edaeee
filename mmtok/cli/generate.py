"""`mmtok generate`: sample from an extended LLM under `MediaLogitsProcessor` and write the
ids as JSON for `mmtok detokenize` (a pipeline check, and a template for your own loop)."""

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


def until_eos(generated: list[int], eos: int | None) -> list[int]:
    """Generated ids up to and including the first end-of-sequence (rows that finished early
    are filled with padding after it)."""
    return generated[: generated.index(eos) + 1] if eos in generated else generated


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
    import torch
    from transformers import AutoModelForCausalLM, LogitsProcessorList

    from mmtok.llm import MediaLogitsProcessor, MediaVocab
    from mmtok.llm.sequence import left_padded, pad_id_of

    vocab = MediaVocab.load(llm)
    grids = {"image": parse_grid(image_grid, 2, "--image-grid"), "video": parse_grid(video_grid, 3, "--video-grid"),
             "audio": (audio_frames,) if audio_frames else None}
    modalities = {m for s in vocab.streams for m in s.media_types}
    processor = MediaLogitsProcessor(vocab, grids={k: v for k, v in grids.items() if v and k in modalities})
    text_tok = vocab.text_tokenizer
    model = AutoModelForCausalLM.from_pretrained(llm)
    if len(media) not in (0, 1, len(prompts)):
        raise MmtokError(f"--media given {len(media)} times for {len(prompts)} prompts; give it once, or once per prompt")
    opens = [None if m == "text" else m for m in (media * len(prompts) if len(media) == 1 else media or (None,) * len(prompts))]
    batch = left_padded([vocab.prompt([p], media=m).input_ids for p, m in zip(prompts, opens)], pad_id_of(text_tok))
    torch.manual_seed(seed)
    ids = model.generate(
        **batch, logits_processor=LogitsProcessorList([processor]), do_sample=not greedy,
        max_new_tokens=max_new_tokens, pad_token_id=pad_id_of(text_tok),
    )
    prompt_len = batch["input_ids"].shape[1]
    rows = [
        row[:prompt_len][mask.bool()].tolist() + until_eos(row[prompt_len:].tolist(), text_tok.eos_token_id)
        for row, mask in zip(ids, batch["attention_mask"])
    ]
    atomic_write(out, lambda tmp: tmp.write_text(json.dumps(rows if len(rows) > 1 else rows[0])))
    click.echo(f"wrote {len(rows)} sequence(s) to {out}; decode them with `mmtok detokenize --vocab {llm} {out} -o DIR`")
