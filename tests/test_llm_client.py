"""The whole client path with the shipped tokenizers: a causal LM saved by transformers is
extended, reloaded with plain transformers, generates under the media logits processor,
and what it generated is parsed and decoded to files that open."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
import soundfile
import torch
from conftest import run_mmtok, save_tiny_llm
from PIL import Image as PILImage
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from mmtok.llm import MediaVocab
from mmtok.llm.constrain import MediaLogitsProcessor

SHIPPED = Path(__file__).parent.parent / "tokenizers_trained"


@pytest.fixture(scope="module")
def shipped_llm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("client")
    llm = save_tiny_llm(root / "tiny-llama")
    out = root / "tiny-llama-mm"
    result = run_mmtok(
        "extend", "--llm", llm, "-o", out, "--pad-to-multiple-of", "128", "--row-separators",
        "-t", SHIPPED / "mmtok-image-f8", "-t", SHIPPED / "mmtok-audio-24k", "-t", SHIPPED / "mmtok-video-f8t4",
        "--audio-levels", "2", "--allow-drift",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_generate_parse_and_decode_with_plain_transformers(shipped_llm, tmp_path):
    text_tok = AutoTokenizer.from_pretrained(shipped_llm)
    model = AutoModelForCausalLM.from_pretrained(shipped_llm)
    vocab = MediaVocab.load(shipped_llm)
    image, audio, video = (vocab.stream(n) for n in ("image", "audio", "video"))
    prompts = ["A photo of the sea: <|image_start|>", "Listen: <|audio_start|>", "A clip: <|video_start|>"]
    text_tok.padding_side = "left"
    batch = text_tok(prompts, return_tensors="pt", padding=True)
    processor = MediaLogitsProcessor(vocab, grids={"image": (4, 5), "video": (2, 3, 3)}, max_audio_frames=6)
    torch.manual_seed(0)
    out = model.generate(
        **batch, logits_processor=LogitsProcessorList([processor]), do_sample=True, max_new_tokens=60,
        pad_token_id=text_tok.pad_token_id,
    )
    new = out[:, batch["input_ids"].shape[1] :]
    assert int(new.max()) < vocab.vocab_size        # never a pad_to_multiple_of row
    starts = [image.start_id, audio.start_id, video.start_id]
    sequences = []
    for row, start in zip(new, starts):
        parsed = vocab.parse(torch.cat([torch.tensor([start]), row]), policy="strict")
        media = [s for s in parsed.segments if s.stream is not None]
        assert media and not parsed.problems
        sequences.append(torch.cat([torch.tensor([start]), row]).tolist())
        first = media[0]
        if first.stream.name == "image":
            assert tuple(first.codes.shape) == (4, 5)
        elif first.stream.name == "video":
            assert tuple(first.codes.shape) == (2, 3, 3)
        else:
            assert first.codes.shape[0] == 2 and 1 <= first.codes.shape[1] <= 6

    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(sequences))
    result = run_mmtok("detokenize", "--vocab", shipped_llm, ids_file, "-o", tmp_path / "decoded", timeout=300)
    assert result.returncode == 0, result.stderr
    pngs = sorted((tmp_path / "decoded").rglob("*.png"))
    wavs = sorted((tmp_path / "decoded").rglob("*.wav"))
    mp4s = sorted((tmp_path / "decoded").rglob("*.mp4"))
    assert pngs and wavs and mp4s
    with PILImage.open(pngs[0]) as img:
        assert img.size == (5 * 8, 4 * 8)
    assert soundfile.info(str(wavs[0])).samplerate == 24000
    with av.open(str(mp4s[0])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (3 * 8, 3 * 8)
    assert (tmp_path / "decoded" / "000" / "transcript.md").is_file()


def test_generate_function_opens_each_span_explicitly_and_keeps_it_well_formed(shipped_llm):
    """`mmtok.llm.generate`: one left-padded batch; each row starts with its own prompt (no
    padding), then the span its `media` entry asked for, in the forced shape; a typed
    '<|image_start|>' stays text; the same seed gives the same ids."""
    from mmtok.llm import generate

    model = AutoModelForCausalLM.from_pretrained(shipped_llm)
    vocab = MediaVocab.load(shipped_llm)
    prompts = ["A photo of the sea, a long and calm one:", "Listen:", "typed <|image_start|> stays text"]
    kwargs = dict(media=["image", "audio", None], grids={"image": (3, 4), "audio": (5,)}, max_new_tokens=40, seed=3)
    rows = generate(model, vocab, prompts, **kwargs)
    assert rows == generate(model, vocab, prompts, **kwargs)
    for prompt, media, row in zip(prompts, ["image", "audio", None], rows):
        prompt_ids = vocab.prompt([prompt], media=media).input_ids.tolist()
        assert row[: len(prompt_ids)] == prompt_ids
        parsed = vocab.parse(torch.tensor(row), policy="strict")
        spans = [s for s in parsed.segments if s.stream is not None]
        if media is None:
            assert max(prompt_ids) < vocab.text_vocab_size
            continue
        assert spans[0].stream.modality == media and not parsed.problems
        assert tuple(spans[0].codes.shape[-2:] if media == "image" else spans[0].codes.shape[-1:]) == kwargs["grids"][media]
