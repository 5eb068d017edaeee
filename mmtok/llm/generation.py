"""Generate interleaved text and media ids from an extended LLM, every media span kept
well-formed by `MediaLogitsProcessor`: the loop behind `mmtok generate`, for use from Python.

    from mmtok.llm import MediaVocab, generate
    vocab = MediaVocab.load("llama-mm")
    model = AutoModelForCausalLM.from_pretrained("llama-mm")
    rows = generate(model, vocab, ["A photo of a cat:"], media=["image"], grids={"image": (16, 16)})
    vocab.parse(rows[0])                                    # -> text and media parts
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessorList

from mmtok.errors import MmtokError
from mmtok.llm.constrain import MediaLogitsProcessor
from mmtok.llm.sequence import left_padded, pad_id_of
from mmtok.llm.vocab import MediaVocab


def generate(
    model, vocab: MediaVocab, prompts: Sequence[str], media: Sequence[str | None] | None = None,
    grids: dict[str, tuple[int, ...]] | None = None, max_new_tokens: int = 256, greedy: bool = False, seed: int = 0,
) -> list[list[int]]:
    """Sample (or greedily decode) one continuation per prompt, in one left-padded batch.

    prompts: plain text, one batch row each (a string like '<|image_start|>' stays text).
    media: per prompt, the stream name or modality of a media span to open after the prompt
        ("image", "audio", "video", a stream name), or None for plain text; one entry serves
        every prompt. Omitted: no span is opened.
    grids: modality -> forced span shape ((H, W) codes for image, (T, H, W) for video,
        (frames,) for audio); modalities the vocabulary does not hold are ignored.
    Returns, per prompt, its ids without padding followed by the generated ids up to and
    including the first end-of-sequence: a list of ints in [0, len(vocab)).
    """
    openers = _openers(media, len(prompts))
    text_tok = vocab.text_tokenizer
    held = {s.modality for s in vocab.streams}
    processor = MediaLogitsProcessor(vocab, grids={k: v for k, v in (grids or {}).items() if v and k in held})
    pad_id = pad_id_of(text_tok)
    batch = left_padded([vocab.prompt([p], media=m).input_ids for p, m in zip(prompts, openers)], pad_id)
    torch.manual_seed(seed)
    with torch.no_grad():
        ids = model.generate(
            **batch, logits_processor=LogitsProcessorList([processor]), do_sample=not greedy,
            max_new_tokens=max_new_tokens, pad_token_id=pad_id,
        )
    prompt_len = batch["input_ids"].shape[1]
    return [
        row[:prompt_len][mask.bool()].tolist() + until_eos(row[prompt_len:].tolist(), text_tok.eos_token_id)
        for row, mask in zip(ids, batch["attention_mask"])
    ]


def _openers(media: Sequence[str | None] | None, n_prompts: int) -> list[str | None]:
    """The span to open after each of `n_prompts` prompts ("text" and None open none)."""
    media = list(media or [None])
    if len(media) not in (1, n_prompts):
        raise MmtokError(f"media given {len(media)} times for {n_prompts} prompts; give it once, or once per prompt")
    media = media * n_prompts if len(media) == 1 else media
    return [None if m in (None, "text") else m for m in media]


def until_eos(generated: list[int], eos: int | None) -> list[int]:
    """Generated ids up to and including the first end-of-sequence (rows that finished early
    are filled with padding after it)."""
    return generated[: generated.index(eos) + 1] if eos in generated else generated
