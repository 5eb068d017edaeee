"""A tiny random-init causal LM for pipeline checks (tests, the demo, benchmarks).

No model hub is needed: the tokenizer is a byte-level BPE trained with `tokenizers` on
ordinary English text every Python install ships (the stdlib's help topics), and the model
is a 2-layer Llama with hidden size 32. It generates noise, but through exactly the code
paths a real LLM uses (`save_pretrained`, `AutoTokenizer`, `AutoModelForCausalLM`,
`generate`).

    python -m mmtok.llm.tiny OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def text_lines(limit: int | None = None) -> list[str]:
    """Ordinary English text that every Python install has: the non-empty lines of the
    stdlib's help topics (pydoc_data), about 9,000 lines."""
    from pydoc_data.topics import topics

    lines = [line for text in topics.values() for line in text.splitlines() if line.strip()]
    return lines[:limit]


def train_bpe(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained with `tokenizers` on `text_lines()`, wrapped as a
    transformers fast tokenizer with <s> / </s> / <pad>."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = RawTokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    raw.train_from_iterator(text_lines(3000), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def save_tiny_llm(directory: Path, tie_word_embeddings: bool = False, vocab_size: int = 400, seed: int = 0) -> Path:
    """A tiny random-init Llama (hidden 32, 2 layers) and its BPE tokenizer, saved with
    `save_pretrained` like any transformers checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM

    text_tok = train_bpe(vocab_size)
    config = LlamaConfig(
        vocab_size=len(text_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=tie_word_embeddings, bos_token_id=text_tok.bos_token_id,
        eos_token_id=text_tok.eos_token_id, pad_token_id=text_tok.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    text_tok.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m mmtok.llm.tiny OUT_DIR")
    print(save_tiny_llm(Path(sys.argv[1])))
