"""transformers' image VQ-VAEs behind mmtok's image contract (mmtok/pretrained/janus.py,
chameleon.py, image_vq.py), on tiny random-init models saved locally: codes equal the model's
own encode of what its image processor makes of the same pixels; Janus decodes, Chameleon is
encode-only everywhere (Python, `mmtok decode`, `mmtok eval`, detokenize) but serves LLM input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import extend_tiny, sample_image, write_image
from transformers import (
    ChameleonConfig,
    ChameleonForConditionalGeneration,
    ChameleonImageProcessorPil,
    GlmImageVQVAEConfig,
    ChameleonVQVAE,
    ChameleonVQVAEConfig,
    JanusConfig,
    JanusForConditionalGeneration,
    JanusImageProcessorPil,
    JanusVQVAE,
    JanusVQVAEConfig,
)
from transformers.models.glm_image.modeling_glm_image import GlmImageVQVAEVectorQuantizer

import mmtok
from mmtok.errors import MmtokError
from mmtok.image.files import TILE_ABOVE_PIXELS, encode_batch
from mmtok.media.image import to_model
from mmtok.pretrained.chameleon import ChameleonImageTokenizer
from mmtok.pretrained.janus import JanusImageTokenizer
from mmtok.pretrained.registry import families

SIDE = 32  # the processors' resolution here: 32 / 2 (two levels) = 16x16 codes
JANUS_VQ = dict(embed_dim=4, num_embeddings=64, latent_channels=32, base_channels=32, channel_multiplier=[1, 2],
                num_res_blocks=1, num_patches=16, projection_dim=8, image_token_embed_dim=8)
CHAMELEON_VQ = dict(embed_dim=4, num_embeddings=64, latent_channels=32, base_channels=32, channel_multiplier=[1, 2],
                    num_res_blocks=1, resolution=SIDE, attn_resolutions=[16])


def janus_processor(**kw) -> JanusImageProcessorPil:
    return JanusImageProcessorPil(image_mean=[0.5] * 3, image_std=[0.5] * 3, size={"height": SIDE, "width": SIDE}, **kw)


def chameleon_processor() -> ChameleonImageProcessorPil:
    return ChameleonImageProcessorPil(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE})


@pytest.fixture(scope="module")
def janus(tmp_path_factory):
    """(folder, the transformers model): a tiny JanusVQVAE and its processor, saved by transformers."""
    torch.manual_seed(0)
    model = JanusVQVAE(JanusVQVAEConfig(**JANUS_VQ)).eval()
    folder = tmp_path_factory.mktemp("janus") / "vq"
    model.save_pretrained(folder)
    janus_processor().save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def chameleon(tmp_path_factory):
    torch.manual_seed(1)
    model = ChameleonVQVAE(ChameleonVQVAEConfig(**CHAMELEON_VQ)).eval()
    folder = tmp_path_factory.mktemp("chameleon") / "vq"
    model.save_pretrained(folder)
    chameleon_processor().save_pretrained(folder)
    return folder, model


def images(sizes, seed=0) -> list[torch.Tensor]:
    return [sample_image(h, w, seed=seed + i) for i, (h, w) in enumerate(sizes)]


@torch.no_grad()
def reference_codes(model, processor, uint8_images) -> torch.Tensor:
    """What the model's family gives: its processor on the uint8 pixels, then the VQ's encoder
    and its codebook search. Chameleon: `encode(...).image_tokens` (Euclidean search). Janus:
    its encoder with Janus' own search, l2-normalised latents and codes (LlamaGen VQ-16,
    `codebook_l2_norm`), done here by transformers' GLM-Image quantizer, which searches that
    way, holding Janus' codebook (transformers' JanusVQVAE.encode searches by plain distance)."""
    values = processor(images=[im.numpy() for im in uint8_images], return_tensors="pt").pixel_values
    n = len(uint8_images)
    if isinstance(model, ChameleonVQVAE):
        return model.encode(values, return_dict=True).image_tokens.reshape(n, SIDE // 2, SIDE // 2)
    search = GlmImageVQVAEVectorQuantizer(GlmImageVQVAEConfig(embed_dim=model.config.embed_dim, num_embeddings=model.config.num_embeddings))
    search.embedding.weight.copy_(model.quantize.embedding.weight)
    return search(model.quant_conv(model.encoder(values)))[2].reshape(n, SIDE // 2, SIDE // 2)


# -- codes --------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["janus", "chameleon"])
@pytest.mark.parametrize("size", [(SIDE, SIDE), (40, 30), (21, 64)])
def test_codes_are_the_models_after_its_processor(request, family, size):
    folder, model = request.getfixturevalue(family)
    processor = janus_processor() if family == "janus" else chameleon_processor()
    tok = mmtok.load(folder)
    batch = images([size] * 2, seed=3)
    codes = tok.encode(to_model(torch.stack(batch)))
    assert codes.shape == (2, 16, 16) and codes.dtype == torch.int64
    assert torch.equal(codes, reference_codes(model, processor, batch))
    assert len(codes.unique()) > 8  # spread over the codebook
    assert tok.grid_shape(*size) == (16, 16)


@torch.no_grad()
def test_janus_codes_are_janus_not_transformers_euclidean_search(janus):
    """transformers' JanusVQVAE.encode searches by plain distance, Janus by cosine: they
    disagree wherever the codebook's norms differ (here, random init: often)."""
    folder, model = janus
    batch = images([(SIDE, SIDE)] * 2, seed=11)
    values = janus_processor()(images=[im.numpy() for im in batch], return_tensors="pt").pixel_values
    theirs = model.encode(values, return_dict=True).image_tokens.reshape(2, 16, 16)
    ours = mmtok.load(folder).encode(to_model(torch.stack(batch)))
    assert torch.equal(ours, reference_codes(model, janus_processor(), batch)) and not torch.equal(ours, theirs)


def test_facts_and_tokens_per_image(janus, chameleon):
    tok = mmtok.load(janus[0])
    info = tok.describe()
    assert isinstance(tok, JanusImageTokenizer) and tok.codebook_sizes == [64] and tok.resolution == SIDE
    assert info["tokens_per_image"] == {"256x256": 256, "512x512": 256, "1024x1024": 256} and info["can_decode"]
    cham = mmtok.load(chameleon[0])
    assert isinstance(cham, ChameleonImageTokenizer) and not cham.describe()["can_decode"]
    assert {JanusImageTokenizer, ChameleonImageTokenizer} <= set(families("image"))


def test_large_images_are_resized_not_tiled(janus):
    """Above TILE_ABOVE_PIXELS ordinary tokenizers tile; these resize like the processor."""
    folder, model = janus
    tok = mmtok.load(folder)
    big = sample_image(1100, 1000, seed=4)
    assert 1100 * 1000 > TILE_ABOVE_PIXELS
    assert torch.equal(encode_batch(tok, big[None]), reference_codes(model, janus_processor(), [big]))


# -- decoding -----------------------------------------------------------------------------
@torch.no_grad()
def test_janus_decode_is_the_models(janus):
    folder, model = janus
    tok = mmtok.load(folder)
    codes = tok.encode(to_model(torch.stack(images([(SIDE, SIDE)] * 2))))
    out = tok.decode(codes)
    assert out.shape == (2, 3, SIDE, SIDE)
    # mean = std = 0.5 and rescale 1/255: the model's pixel space is [-1,1]
    assert torch.allclose(out, model.decode(codes.reshape(2, -1)).clamp(-1, 1), atol=1e-5)
    wide = tok.decode(codes, size=(20, 40))  # padding (6 rows top and bottom at 32px) cropped, resized back
    assert wide.shape == (2, 3, 20, 40)
    with pytest.raises(ValueError, match=r"expected codes \[B,16,16\]"):
        tok.decode(codes[:, :8])
    with pytest.raises(MmtokError, match="codebook has 64 entries"):
        tok.decode(torch.full((1, 16, 16), 64))


def test_chameleon_decode_is_one_error(chameleon):
    tok = mmtok.load(chameleon[0])
    with pytest.raises(MmtokError, match="hf-chameleon is encode-only") as err:
        tok.decode(torch.zeros(1, 16, 16, dtype=torch.long))
    assert "\n" not in str(err.value) and str(chameleon[0]) in str(err.value)


# -- loading and saving -------------------------------------------------------------------
def test_save_round_trip_keeps_the_fingerprint(janus, chameleon, tmp_path):
    for folder, _ in (janus, chameleon):
        tok = mmtok.load(folder)
        again = mmtok.load(tok.save_pretrained(tmp_path / folder.parent.name))
        assert again.fingerprint == tok.fingerprint and again.config == tok.config
        assert (tmp_path / folder.parent.name / "preprocessor_config.json").is_file()
        assert isinstance(mmtok.load(f"hf:{folder}"), type(tok))


def test_the_processor_is_part_of_the_config(janus, tmp_path):
    """A bare VQ folder gets Janus' own processor (mean = std = 0.5, 384 px); other settings
    change the codes and the fingerprint."""
    folder, model = janus
    bare = tmp_path / "bare"
    model.save_pretrained(bare)
    with pytest.raises(MmtokError, match=f"{bare}: hf-janus: num_patches 16 does not match the processor's 384px / 2 = 192"):
        mmtok.load(bare)
    clip = tmp_path / "clip"
    model.save_pretrained(clip)
    JanusImageProcessorPil(size={"height": SIDE, "width": SIDE}).save_pretrained(clip)  # CLIP mean / std
    tok, other = mmtok.load(folder), mmtok.load(clip)
    assert tok.fingerprint != other.fingerprint
    batch = images([(SIDE, SIDE)], seed=5)
    clip_processor = JanusImageProcessorPil(size={"height": SIDE, "width": SIDE})
    assert torch.equal(other.encode(to_model(torch.stack(batch))), reference_codes(model, clip_processor, batch))
    (clip / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 30, "width": 31}}))
    with pytest.raises(MmtokError, match=f"{clip}: .*is not square"):
        mmtok.load(clip)
    (clip / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(MmtokError, match=f"{clip}: cannot read preprocessor_config.json"):
        mmtok.load(clip)


@torch.no_grad()
def test_the_vq_of_a_full_janus_checkpoint(janus, tmp_path):
    """hf:deepseek-community/Janus-Pro-1B holds the VQ as `model.vqmodel.*` beside SigLIP and the LLM."""
    folder, model = janus
    text = dict(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=SIDE, patch_size=2)  # JanusConfig sets the VQ num_patches = 32 / 2
    full = JanusForConditionalGeneration(JanusConfig(text_config=text, vision_config=vision, vq_config=JANUS_VQ)).eval()
    full.model.vqmodel.load_state_dict(model.state_dict())
    out = tmp_path / "full"
    full.save_pretrained(out, max_shard_size="100KB")
    janus_processor().save_pretrained(out)
    tok = mmtok.load(out)
    assert isinstance(tok, JanusImageTokenizer) and tok.fingerprint == mmtok.load(folder).fingerprint
    batch = images([(40, 30)], seed=6)
    assert torch.equal(tok.encode(to_model(torch.stack(batch))), reference_codes(full.model.vqmodel, janus_processor(), batch))


@torch.no_grad()
def test_the_vq_of_a_full_chameleon_checkpoint(chameleon, tmp_path):
    """hf:facebook/chameleon-7b holds the VQ encoder as `model.vqmodel.*` beside the LLM."""
    folder, model = chameleon
    image_tokens = {"<image>": 3, **{f"IMGIMG{chr(65 + i)}Z": 10 + i for i in range(8)}}
    config = ChameleonConfig(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                             num_key_value_heads=1, vq_config=CHAMELEON_VQ, vocabulary_map=image_tokens)
    full = ChameleonForConditionalGeneration(config).eval()
    full.model.vqmodel.load_state_dict(model.state_dict())
    out = tmp_path / "full"
    full.save_pretrained(out, max_shard_size="100KB")
    chameleon_processor().save_pretrained(out)
    tok = mmtok.load(f"hf:{out}")
    assert isinstance(tok, ChameleonImageTokenizer) and tok.fingerprint == mmtok.load(folder).fingerprint


# -- the CLI and the LLM path ---------------------------------------------------------------
def test_cli_encode_decode_and_eval(janus, chameleon, tmp_path):
    """The commands a user runs, in-process (interpreter starts cost ~15 s each here)."""
    from click.testing import CliRunner
    from PIL import Image

    from mmtok.cli.main import main

    def mmtok_cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    src = write_image(tmp_path / "in" / "a.png", sample_image(40, 30, seed=7))
    for name, (folder, _) in (("janus", janus), ("chameleon", chameleon)):
        result = mmtok_cli("encode", src, "-t", folder, "-o", tmp_path / f"{name}.mmtok")
        assert result.exit_code == 0, result.output
    result = mmtok_cli("decode", tmp_path / "janus.mmtok", "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").size == (30, 40)
    for args in (("decode", tmp_path / "chameleon.mmtok", "-o", tmp_path / "no.png"),
                 ("eval", "-t", chameleon[0], "--data", tmp_path / "in", "--out", tmp_path / "report")):
        result = mmtok_cli(*args)  # the console script prints an MmtokError as one "error:" line
        assert isinstance(result.exception, MmtokError) and result.exit_code != 0, result.output
        assert "hf-chameleon is encode-only" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "no.png").exists() and not (tmp_path / "report").exists()
    result = mmtok_cli("eval", "-t", janus[0], "--data", tmp_path / "in", "--out", tmp_path / "janus-report", "--no-baselines")
    assert result.exit_code == 0, result.output
    assert "16x16 per image at any size (resized to the model's 32x32 first)" in (tmp_path / "janus-report" / "report.md").read_text()


def test_encode_only_tokenizer_serves_llm_input(chameleon, llm_dir, tmp_path):
    """`mmtok extend` + `vocab.build` with Image parts, and `mmtok pretokenize` of a folder,
    work with an encode-only stream; detokenize writes the text and says the image was not decoded."""
    from mmtok.llm import Image as ImagePart
    from mmtok.llm import MediaVocab
    from mmtok.llm.detokenize import detokenize
    from mmtok.llm.pretokenize import pretokenize
    from mmtok.llm.shards import TokenShards

    out = tmp_path / "llm-mm"
    extend_tiny(llm_dir, out, {"image": chameleon[0]}, max_dim=16, init="codebook")  # rows from the VQ's codebook
    vocab = MediaVocab.load(out)
    image = sample_image(40, 30, seed=8)
    src = write_image(tmp_path / "data" / "a.png", image)
    seq = vocab.build(["look:", ImagePart(str(src))])
    tok = mmtok.load(chameleon[0])
    assert torch.equal(tok.code_vectors()[0], chameleon[1].quantize.embedding.weight)  # what --init codebook used
    codes = tok.encode(to_model(image[None]))[0]
    _, decoded_codes = vocab.decode_ids(_media_span(seq))
    assert torch.equal(decoded_codes, codes)  # the ids hold exactly the tokenizer's codes
    summary = pretokenize(tmp_path / "data", vocab, tmp_path / "shards", progress=False)
    assert summary.tokenized == 1 and summary.failed == 0
    ids, _ = TokenShards(tmp_path / "shards")[0]  # a folder item: BOS + the image span + EOS
    assert _media_span_ids(np.asarray(ids).tolist(), vocab) == _media_span(seq)
    results = detokenize(vocab, [seq.input_ids], tmp_path / "detok")
    assert results[0].media[0][1] is None and not list((tmp_path / "detok").rglob("*.png"))
    transcript = "".join(f.read_text() for f in (tmp_path / "detok").rglob("*.md"))
    assert "not decoded, its tokenizer is encode-only" in transcript and "look:" in transcript


def _media_span_ids(ids: list[int], vocab) -> list[int]:
    """The media span of `ids` (from the first media id to the last): ids at or above the text vocabulary."""
    media = [i for i, t in enumerate(ids) if t >= vocab.text_vocab_size]
    return ids[media[0] : media[-1] + 1]


def _media_span(seq) -> list[int]:
    """The ids of the one media span in `seq` (its start and end markers included)."""
    media = (seq.modality != 0).nonzero().flatten()
    return seq.input_ids[int(media[0]) : int(media[-1]) + 1].tolist()
