"""GLM-Image's image tokenizer (mmtok/pretrained/glm_image.py) on tiny random-init models saved
by transformers: codes equal transformers' own `get_image_features` + `get_image_tokens` on
what GLM-Image's image processor makes of the same pixels; the grid follows the processor's
size rules; encode-only everywhere, but LLM input works."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import extend_tiny, sample_image, write_image
from transformers import GlmImageConfig, GlmImageForConditionalGeneration, GlmImageImageProcessorPil, GlmImageModel

import mmtok
from mmtok.errors import MmtokError
from mmtok.image.files import TILE_ABOVE_PIXELS, encode_batch
from mmtok.media.image import to_model
from mmtok.pretrained.glm_image import GLM_IMAGE_PROCESSOR, GlmImageTokenizer
from mmtok.pretrained.registry import families

PATCH = 4
TEXT = dict(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            vision_vocab_size=80, pad_token_id=0, eos_token_id=1,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5})
VISION = dict(depth=1, hidden_size=32, num_heads=2, intermediate_size=64, image_size=32, patch_size=PATCH)
VQ = dict(embed_dim=8, num_embeddings=64, latent_channels=32)
# GLM-Image's processor scaled down: short side >= 32 px, long side <= 128 px (before halving), 4 px patches
PROCESSOR = dict(GLM_IMAGE_PROCESSOR, min_pixels=32 * 32, max_pixels=128 * 128, patch_size=PATCH)


def tiny_config(**vision) -> GlmImageConfig:
    return GlmImageConfig(text_config=TEXT, vision_config={**VISION, **vision}, vq_config=VQ,
                          image_token_id=299, image_start_token_id=64, image_end_token_id=65)


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    """(folder, the transformers model): a tiny GlmImageForConditionalGeneration and its
    processor, saved by transformers in shards (the vision encoder and VQ beside the LLM)."""
    torch.manual_seed(0)
    model = GlmImageForConditionalGeneration(tiny_config()).eval()
    folder = tmp_path_factory.mktemp("glm") / "full"
    model.save_pretrained(folder, max_shard_size="20KB")
    GlmImageImageProcessorPil(**PROCESSOR).save_pretrained(folder)
    return folder, model


def images(sizes, seed=0) -> list[torch.Tensor]:
    return [sample_image(h, w, seed=seed + i) for i, (h, w) in enumerate(sizes)]


@torch.no_grad()
def transformers_codes(model, uint8_images, processor_settings=PROCESSOR) -> tuple[torch.Tensor, torch.Tensor]:
    """(the image token ids the GLM-Image model makes of these images, concatenated; their
    `image_grid_thw`): its processor, then `get_image_features` and `get_image_tokens`."""
    inputs = GlmImageImageProcessorPil(**processor_settings)(images=[im.numpy() for im in uint8_images], return_tensors="pt")
    features = model.get_image_features(inputs.pixel_values, inputs.image_grid_thw).pooler_output
    return model.get_image_tokens(features), inputs.image_grid_thw


# -- codes --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(64, 48), (40, 100), (300, 260)])
def test_codes_are_the_models_after_its_processor(glm, size):
    folder, model = glm
    tok = mmtok.load(folder)
    batch = images([size] * 2, seed=3)
    codes = tok.encode(to_model(torch.stack(batch)))
    theirs, grid_thw = transformers_codes(model, batch)
    grid = tok.grid_shape(*size)
    assert grid_thw.tolist() == [[1, *grid]] * 2 and codes.shape == (2, *grid) and codes.dtype == torch.int64
    assert torch.equal(codes.flatten(), theirs)
    assert len(codes.unique()) > 8  # spread over the codebook


def test_a_batch_codes_as_one_image_at_a_time(glm):
    tok = mmtok.load(glm[0])
    batch = images([(64, 48)] * 4, seed=9)
    together = tok.encode(to_model(torch.stack(batch)))
    alone = torch.cat([tok.encode(to_model(im[None])) for im in batch])
    assert torch.equal(together, alone)


def test_large_images_are_resized_not_tiled(glm):
    folder, model = glm
    tok = mmtok.load(folder)
    big = sample_image(1100, 1000, seed=4)
    assert 1100 * 1000 > TILE_ABOVE_PIXELS
    codes = encode_batch(tok, big[None])
    theirs, grid_thw = transformers_codes(model, [big])
    assert codes.shape[1:] == tuple(grid_thw[0, 1:].tolist()) and torch.equal(codes.flatten(), theirs)


def test_sizes_the_processor_refuses_are_one_error(glm):
    tok = mmtok.load(glm[0])
    for height, width in ((20, 100), (3, 40)):  # aspect ratio over 4; a side under a patch
        with pytest.raises(MmtokError, match=f"hf-glm-image cannot take a {width}x{height} image") as err:
            tok.encode(to_model(sample_image(height, width)[None]))
        assert "\n" not in str(err.value)


# -- facts --------------------------------------------------------------------------------
def test_grid_and_tokens_per_image_follow_the_published_processor(tmp_path):
    """zai-org/GLM-Image is a diffusers pipeline: the model is in vision_language_encoder/,
    without a preprocessor_config.json, so it gets the published processor: one code per 32x32
    input pixels, the short side scaled up to 512 px, the long side down to 2048."""
    torch.manual_seed(2)
    pipeline = tmp_path / "GLM-Image"
    GlmImageForConditionalGeneration(tiny_config(patch_size=16)).save_pretrained(pipeline / "vision_language_encoder")
    (pipeline / "model_index.json").write_text('{"_class_name": "GlmImagePipeline"}')
    with pytest.raises(MmtokError, match="a diffusers pipeline folder .*pass its subfolder .*vision_language_encoder"):
        mmtok.load(pipeline)
    tok = mmtok.load(pipeline / "vision_language_encoder")
    info = tok.describe()
    assert info["tokens_per_image"] == {"256x256": 256, "512x512": 256, "1024x1024": 1024}
    assert not info["can_decode"] and info["downsample"] == 32 and tok.codebook_sizes == [64]
    processor = GlmImageImageProcessorPil(**GLM_IMAGE_PROCESSOR)
    for height, width in ((256, 256), (1024, 1024), (2048, 2048), (4000, 3000), (1080, 1920), (300, 1100)):
        grid = processor.get_number_of_image_patches(height, width)
        assert np.prod(tok.grid_shape(height, width)) == grid
    assert tok.grid_shape(1080, 1920) == (34, 60) and tok.grid_shape(4000, 3000) == (64, 48)
    assert GlmImageTokenizer in families("image")


# -- loading and saving -------------------------------------------------------------------
def test_saved_folder_holds_the_two_parts_that_transformers_reads(glm, tmp_path):
    folder, model = glm
    tok = mmtok.load(f"hf:{folder}")
    saved = tok.save_pretrained(tmp_path / "saved")
    again = mmtok.load(saved)
    assert isinstance(again, GlmImageTokenizer) and again.fingerprint == tok.fingerprint and again.config == tok.config
    assert (saved / "preprocessor_config.json").is_file() and "encode-only" in (saved / "README.md").read_text()
    theirs, info = GlmImageModel.from_pretrained(saved, output_loading_info=True)
    assert info["missing_keys"] and all(k.startswith("language_model.") for k in info["missing_keys"]) and not info["unexpected_keys"]
    for part in ("visual", "vqmodel"):
        ours = getattr(model.model, part).state_dict()
        assert all(torch.equal(v, ours[k]) for k, v in getattr(theirs, part).state_dict().items())


def test_a_part_alone_is_refused(glm, tmp_path):
    """transformers saves GLM-Image's VQ or its ViT alone; neither makes codes from pixels."""
    folder, model = glm
    for part in ("vqmodel", "visual"):
        getattr(model.model, part).save_pretrained(tmp_path / part)
        with pytest.raises(MmtokError, match=f"^{tmp_path / part}: GLM-Image's VQ codes its vision encoder's features, not pixels"):
            mmtok.load(tmp_path / part)


def test_the_hub_pipeline_and_its_subfolder(glm, monkeypatch, tmp_path):
    """hf:zai-org/GLM-Image is a diffusers pipeline; hf:zai-org/GLM-Image/vision_language_encoder
    is its transformers model. Read here from a hub cache laid out as huggingface_hub keeps it
    (offline: the hub is unreachable)."""
    import huggingface_hub

    from mmtok.pretrained.spec import peek_model_type

    folder, model = glm
    repo = tmp_path / "hub" / "models--zai-org--GLM-Image"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folder, repo / "snapshots" / commit / "vision_language_encoder")
    (repo / "snapshots" / commit / "model_index.json").write_text('{"_class_name": "GlmImagePipeline"}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = "hf:zai-org/GLM-Image/vision_language_encoder"
    assert peek_model_type(spec) == "glm_image" and peek_model_type("hf:zai-org/GLM-Image") is None
    tok = mmtok.load(spec)
    assert isinstance(tok, GlmImageTokenizer) and tok.fingerprint == mmtok.load(folder).fingerprint and tok.name_or_path == spec
    with pytest.raises(MmtokError, match=f"^hf:zai-org/GLM-Image: a diffusers pipeline .*e.g. {spec} ") as err:
        mmtok.load("hf:zai-org/GLM-Image")
    assert "\n" not in str(err.value)


def test_a_processor_that_does_not_fit_the_encoder_is_refused(glm, tmp_path):
    folder, model = glm
    model.save_pretrained(tmp_path / "bad")
    GlmImageImageProcessorPil(**{**PROCESSOR, "patch_size": 8}).save_pretrained(tmp_path / "bad")
    with pytest.raises(MmtokError, match=f"{tmp_path / 'bad'}: hf-glm-image: the image processor .*patch_size 8.* does not fit"):
        mmtok.load(tmp_path / "bad")


# -- the CLI and the LLM path ---------------------------------------------------------------
def test_cli_encode_info_and_decode_refused(glm, tmp_path):
    """The commands a user runs, in-process (interpreter starts cost ~15 s each here)."""
    from click.testing import CliRunner

    from mmtok.cli.main import main
    from mmtok.tokens_file import TokenFile

    def mmtok_cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    folder, model = glm
    image = sample_image(64, 48, seed=7)
    src = write_image(tmp_path / "in" / "a.png", image)
    result = mmtok_cli("encode", src, "-t", folder, "-o", tmp_path / "a.mmtok")
    assert result.exit_code == 0, result.output
    assert torch.equal(TokenFile.load(tmp_path / "a.mmtok").codes.flatten(), transformers_codes(model.model, [image])[0])
    result = mmtok_cli("info", folder)
    assert result.exit_code == 0 and "hf-glm-image" in result.output and "'1024x1024': 256" in result.output, result.output
    result = mmtok_cli("decode", tmp_path / "a.mmtok", "-o", tmp_path / "no.png")
    assert isinstance(result.exception, MmtokError) and result.exit_code != 0, result.output
    assert "hf-glm-image is encode-only" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "no.png").exists()
    result = mmtok_cli("eval", "-t", folder, "--data", tmp_path / "in", "--out", tmp_path / "report")
    assert isinstance(result.exception, MmtokError) and "hf-glm-image is encode-only" in str(result.exception)
    assert not (tmp_path / "report").exists()
    write_image(tmp_path / "in" / "wide.png", sample_image(20, 100))  # aspect ratio 5: refused before anything is written
    result = mmtok_cli("encode", tmp_path / "in", "-t", folder, "-o", tmp_path / "codes")
    assert isinstance(result.exception, MmtokError) and "wide.png: hf-glm-image cannot take a 100x20 image" in str(result.exception)
    assert not (tmp_path / "codes").exists()


def test_encode_only_tokenizer_serves_llm_input(glm, llm_dir, tmp_path):
    """`mmtok extend --init codebook`, `vocab.build` with an image and `pretokenize` of a folder."""
    from mmtok.llm import Image as ImagePart
    from mmtok.llm import MediaVocab
    from mmtok.llm.pretokenize import pretokenize

    folder, model = glm
    out = tmp_path / "llm-mm"
    extend_tiny(llm_dir, out, {"image": folder}, max_dim=64, init="codebook")
    tok = mmtok.load(folder)
    assert torch.equal(tok.code_vectors()[0], model.model.vqmodel.quantize.embedding.weight)  # what --init codebook used
    vocab = MediaVocab.load(out)
    image = sample_image(64, 48, seed=8)
    src = write_image(tmp_path / "data" / "a.png", image)
    seq = vocab.build(["look:", ImagePart(str(src))])
    media = (seq.modality != 0).nonzero().flatten()
    _, codes = vocab.decode_ids(seq.input_ids[int(media[0]) : int(media[-1]) + 1].tolist())
    assert torch.equal(codes, tok.encode(to_model(image[None]))[0]) and codes.shape == (8, 6)
    summary = pretokenize(tmp_path / "data", vocab, tmp_path / "shards", progress=False)
    assert summary.tokenized == 1 and summary.failed == 0
