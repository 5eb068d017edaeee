"""No injection: text never becomes control or media ids. Every token string the vocab
added (start / end / header / separator / code tokens) and the LLM's own special tokens,
typed into text, tokenize as ordinary text in `vocab.build`, in the text of a `mmtok
pretokenize` JSONL and in `mmtok generate` prompts; `modality` agrees with the ids, and a
media span is opened only by an explicit call (`vocab.prompt(..., media=)`, `--media`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import assert_text_only, hostile_text, run_mmtok, sample_image, write_image

from mmtok.errors import MmtokError
from mmtok.llm import Image, MediaVocab, TokenShards
from mmtok.llm.pretokenize import pretokenize


@pytest.fixture(scope="module")
def vocab(extended_dir) -> MediaVocab:
    return MediaVocab.load(extended_dir)


def test_build_keeps_token_strings_as_text(vocab, tmp_path):
    text = hostile_text(vocab)
    image = write_image(tmp_path / "a.png", sample_image(8, 12, seed=1))
    seq = vocab.build([text, Image(image), text], bos=True, eos=True)
    (_, start, stop), = seq.spans
    text_positions = torch.ones(len(seq), dtype=torch.bool)
    text_positions[start:stop] = False
    assert_text_only(vocab, seq.input_ids[text_positions][1:-1])   # without the BOS / EOS we asked for
    assert (seq.modality[text_positions] == 0).all() and (seq.modality[start:stop] == 1).all()
    # modality agrees with the ids everywhere: media ids exactly where modality says media
    assert torch.equal(seq.input_ids >= vocab.text_vocab_size, seq.modality > 0)
    parsed = vocab.parse(seq.input_ids, policy="strict")
    assert not parsed.problems and len(parsed.media) == 1
    assert torch.equal(torch.cat([s.ids for s in parsed.segments]), seq.input_ids)
    # the text decodes back to the very strings typed in
    decoded = vocab.text_tokenizer.decode(seq.input_ids[1:start].tolist())
    assert decoded == text


def test_prompt_opens_a_span_only_when_asked(vocab):
    plain = vocab.prompt(["A photo: <|image_start|>"])
    assert_text_only(vocab, plain.input_ids)
    opened = vocab.prompt(["A photo:"], media="image")
    assert opened.input_ids[-1] == vocab.stream("image").start_id and opened.modality[-1] == 1
    assert torch.equal(opened.input_ids[:-1], vocab.build(["A photo:"]).input_ids)
    with pytest.raises(MmtokError, match="no 'pdf' stream"):
        vocab.prompt(["x"], media="pdf")


def test_pretokenize_jsonl_text_holding_every_token_string(vocab, extended_dir, tmp_path):
    text = hostile_text(vocab)
    write_image(tmp_path / "a.png", sample_image(8, 12, seed=1))
    manifest = tmp_path / "data.jsonl"
    manifest.write_text(
        json.dumps({"id": "hostile", "parts": [{"text": text}, {"image": "a.png"}, {"text": text}]}) + "\n"
        + json.dumps({"id": "text", "parts": [text]}) + "\n"
    )
    summary = pretokenize(manifest, extended_dir, tmp_path / "out", progress=False)
    assert (summary.tokenized, summary.failed) == (2, 0)
    shards = TokenShards(tmp_path / "out")
    for i in range(len(shards)):
        ids, modality = (torch.from_numpy(np.asarray(a).astype(np.int64)) for a in shards[i])
        assert torch.equal(ids >= vocab.text_vocab_size, modality > 0)
        assert_text_only(vocab, ids[modality == 0][1:-1])   # BOS / EOS at the ends are ours
        parsed = vocab.parse(ids, policy="strict")
        assert not parsed.problems and torch.equal(torch.cat([s.ids for s in parsed.segments]), ids)
        assert len(parsed.media) == (1 if shards.item_ids()[i] == "hostile" else 0)


def test_generate_prompts_are_text_unless_media_is_given(vocab, extended_dir, tmp_path):
    out = tmp_path / "ids.json"
    result = run_mmtok("generate", "--llm", extended_dir, "-p", "A photo: <|image_start|><|image_dim_2|>", "-p", "A photo:",
                 "--media", "text", "--media", "image", "--image-grid", "2x3", "--max-new-tokens", "12",
                 "-o", out, "--greedy", timeout=300)
    assert result.returncode == 0, result.stderr
    typed, asked = json.loads(out.read_text())
    prompt_len = len(vocab.build(["A photo: <|image_start|><|image_dim_2|>"]))
    assert_text_only(vocab, torch.tensor(typed[:prompt_len]))
    start = len(vocab.build(["A photo:"]))
    assert asked[start] == vocab.stream("image").start_id
    media = vocab.parse(asked, policy="strict").media
    assert len(media) == 1 and tuple(media[0].codes.shape) == (2, 3)
