"""Extend a transformers causal LM with media tokens (`mmtok extend`).

The result is an ordinary transformers checkpoint (`AutoTokenizer` / `AutoModelForCausalLM`
load it with no mmtok code) plus `mmtok_vocab.json` and copies of the media tokenizers.
Every new token is registered in one `add_tokens` call as special and `normalized=False`
(no normaliser can rewrite it and `skip_special_tokens` hides it); ids are checked to be
exactly the contiguous blocks the vocab file records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from mmtok.errors import MmtokError, first_line
from mmtok.files import check_output_dir, replace_directory
from mmtok.llm.init import INITS, embedding_stats, new_rows
from mmtok.llm.streams import StreamOptions
from mmtok.llm.vocab import MediaVocab
from mmtok.tokenizer import Tokenizer


def load_llm(llm: str | Path):
    """`(tokenizer, model)` from a local transformers folder or a hub id; one-line errors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        text_tok = AutoTokenizer.from_pretrained(llm)
        model = AutoModelForCausalLM.from_pretrained(llm)
    except (OSError, ValueError, KeyError) as err:
        raise MmtokError(f"{llm}: cannot load it as a transformers causal LM with a tokenizer ({first_line(err)})") from None
    return text_tok, model


def check_sizes(llm: str | Path, text_tok, model) -> None:
    """The tokenizer must belong to the model: every id it can produce needs an embedding row."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(text_tok) > rows:
        raise MmtokError(
            f"{llm}: its tokenizer has {len(text_tok)} tokens but the model only {rows} embedding rows; "
            "the tokenizer and model do not match (resize or pick the right tokenizer first)"
        )


def check_names(llm: str | Path, text_tok, tokens: list[str]) -> None:
    taken = set(text_tok.get_vocab())
    clash = [t for t in tokens if t in taken]
    if clash:
        raise MmtokError(
            f"{llm}: already has {len(clash)} of the new tokens (e.g. {clash[0]}); was it extended "
            "already? Extend the original model, or name the streams differently (-t NAME=PATH)"
        )


def is_tied(model) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def extend_llm(
    llm: str | Path, tokenizers: dict[str, Tokenizer], out: str | Path, init: str = "mean-noise",
    pad_to_multiple_of: int | None = None, options: StreamOptions | None = None, seed: int = 0,
    log: Callable[[str], object] = lambda _: None,
) -> MediaVocab:
    """Add one id block per tokenizer to the LLM at `llm`, initialise the new embedding (and
    untied output) rows with `init`, and write the extended checkpoint to `out` atomically."""
    if init not in INITS:
        raise MmtokError(f"--init must be one of {INITS}, got '{init}'")
    if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
        raise MmtokError(f"--pad-to-multiple-of must be >= 1, got {pad_to_multiple_of}")
    if not tokenizers:
        raise MmtokError("give at least one media tokenizer (-t PATH)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MmtokError(f"{out}: is a file where a folder is needed; choose a new output folder")
    check_output_dir(out)  # before minutes of loading
    if out.exists() and any(out.iterdir()):
        raise MmtokError(f"{out}: exists and is not empty; choose a new output folder")
    log(f"loading {llm}")
    text_tok, model = load_llm(llm)
    check_sizes(llm, text_tok, model)
    vocab = MediaVocab.create(tokenizers, len(text_tok), options)
    tokens = [t for s in vocab.streams for t in s.token_strings()]
    check_names(llm, text_tok, tokens)

    log(f"adding {len(tokens):,} tokens after {len(text_tok):,} text tokens")
    add_tokens(text_tok, tokens, vocab)
    tied = is_tied(model)
    old_rows = model.get_input_embeddings().weight.shape[0]
    # Never shrink: a model may already have spare rows past its tokenizer (they become pad rows).
    model.resize_token_embeddings(max(vocab.vocab_size, old_rows), pad_to_multiple_of=pad_to_multiple_of, mean_resizing=False)
    vocab = MediaVocab(vocab.streams, vocab.text_vocab_size, model.get_input_embeddings().weight.shape[0], tokenizers=tokenizers)

    log(f"initialising {vocab.embedding_rows - vocab.text_vocab_size:,} rows ({init})")
    initialise(model, vocab, init, seed)
    stats = embedding_stats(model.get_input_embeddings().weight, slice(vocab.text_vocab_size, vocab.vocab_size), slice(0, vocab.text_vocab_size))
    log(
        f"new rows: mean pairwise cosine {stats['new_mean_cosine']:.3f} (text rows {stats['text_mean_cosine']:.3f}), "
        f"mean norm {stats['norm_ratio']:.3f} x the text rows'"
    )
    if tied and not is_tied(model):
        raise MmtokError(f"{llm}: resizing untied the input and output embeddings; please report this")

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        text_tok.save_pretrained(tmp)
        vocab.save(tmp)
        vocab.bundle_tokenizers(tmp)

    log(f"writing {out}")
    replace_directory(out, fill)
    vocab.directory = out.resolve()
    return vocab


def add_tokens(text_tok, tokens: list[str], vocab: MediaVocab) -> None:
    """Register `tokens` in one call and check they got exactly the vocab's ids."""
    from tokenizers import AddedToken

    added = text_tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in tokens], special_tokens=True)
    first, last = text_tok.convert_tokens_to_ids([tokens[0], tokens[-1]])
    if added != len(tokens) or (first, last) != (vocab.text_vocab_size, vocab.vocab_size - 1) or len(text_tok) != vocab.vocab_size:
        raise MmtokError(
            f"the LLM tokenizer gave the new tokens ids {first}..{last} ({added} added), expected "
            f"{vocab.text_vocab_size}..{vocab.vocab_size - 1}; its added-token table is unusual, please report this"
        )


@torch.no_grad()
def initialise(model, vocab: MediaVocab, init: str, seed: int) -> None:
    """Write the new rows of the input embeddings and, when untied, of the output layer."""
    tables = [model.get_input_embeddings().weight]
    if not is_tied(model) and model.get_output_embeddings() is not None:
        tables.append(model.get_output_embeddings().weight)
    for i, weight in enumerate(tables):
        rows = new_rows(vocab, weight[: vocab.text_vocab_size], init, seed + i)
        weight[vocab.text_vocab_size :] = rows.to(weight.dtype)
