"""Emu3's vision tokenizer (transformers' Emu3VQVAE) behind the video contract (kind hf-emu3).

Every model is a tiny random-init one (32 channels, 4x spatial, 4x temporal, 64 codes) with
its codebook seeded from its own latents, saved with transformers' own `save_pretrained` and
loaded through `load_emu3`. References are the transformers model and Emu3's image processor
called directly. No mocks.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from transformers import Emu3Config, Emu3ForConditionalGeneration, Emu3ImageProcessor, Emu3VQVAE, Emu3VQVAEConfig

import mmtok
from mmtok.errors import MmtokError
from mmtok.media.image import to_model
from mmtok.pretrained.emu3 import (
    CLIP_MEAN,
    CLIP_STD,
    Emu3VideoConfig,
    Emu3VideoTokenizer,
    is_emu3_spec,
    load_emu3,
)
from mmtok.configs import KINDS

torch.set_num_threads(1)

VQ = dict(
    codebook_size=64,
    embed_dim=4,
    latent_channels=4,
    base_channels=32,  # GroupNorm(32 groups) is hard-coded: the fewest channels possible
    channel_multiplier=[1, 1, 1],  # spatial factor 4
    num_res_blocks=1,
    attn_resolutions=[],
    hidden_size=32,  # the middle block's attention runs on base_channels * multiplier[-1]
    num_attention_heads=1,
)
H, W = 16, 20  # multiples of 4: codes 4 x 5


def uint8_video(batch: int, frames: int, height: int = H, width: int = W, seed: int = 0) -> torch.Tensor:
    """`[B,T,3,H,W]` uint8: smooth random colour fields that drift from frame to frame."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(batch, 1, 3, height // 4 + 1, width // 4 + 1, generator=g)
    drift = torch.rand(batch, frames, 3, 1, 1, generator=g).cumsum(1) * 0.3
    coarse = (base + drift).reshape(batch * frames, 3, height // 4 + 1, width // 4 + 1) % 1
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=True)
    noise = 0.05 * torch.rand(batch * frames, 3, height, width, generator=g)
    return ((fine + noise).clamp(0, 1) * 255).round().to(torch.uint8).reshape(batch, frames, 3, height, width)


def as_mmtok(video_u8: torch.Tensor) -> torch.Tensor:
    """`[B,T,3,H,W]` uint8 -> mmtok's `[B,3,T,H,W]` in [-1,1] (as the media loaders make it)."""
    return to_model(video_u8).permute(0, 2, 1, 3, 4)


def processed(images_u8: torch.Tensor, processor: Emu3ImageProcessor) -> torch.Tensor:
    """`[N,3,H,W]` uint8 through Emu3's image processor (no resize) -> pixel_values `[N,3,H,W]`."""
    arrays = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in images_u8]
    return processor(arrays, do_resize=False, return_tensors="pt")["pixel_values"]


@torch.no_grad()
def tiny_emu3_vq() -> Emu3VQVAE:
    torch.manual_seed(0)
    model = Emu3VQVAE(Emu3VQVAEConfig(**VQ)).eval()
    # transformers' init puts the codebook in +-1/64, far from the latents, so a few entries
    # would take every code: seed it with jittered latents (about what a k-means init does)
    clips = as_mmtok(uint8_video(4, 4, seed=9)).permute(0, 2, 1, 3, 4)
    latents = model.quant_conv(model.encoder(clips).permute(0, 2, 1, 3, 4)).permute(0, 2, 3, 4, 1).reshape(-1, 4)
    g = torch.Generator().manual_seed(0)
    picks = latents[torch.randint(len(latents), (64,), generator=g)]
    model.quantize.embedding.weight.copy_(picks + 0.3 * latents.std() * torch.randn(picks.shape, generator=g))
    return model


def emu3_codes(model: Emu3VQVAE, pixel_values: torch.Tensor, sizes) -> list[torch.Tensor]:
    with torch.no_grad():
        return list(model.encode(pixel_values, torch.tensor(sizes), return_dict=True).image_tokens)


def clip_codes(model: Emu3VQVAE, video: torch.Tensor) -> torch.Tensor:
    """Emu3's autoencode.py way: `[B,3,T,H,W]` (T a multiple of 4) as independent 4-frame clips."""
    b, _, t, h, w = video.shape
    clips = video.permute(0, 2, 1, 3, 4).reshape(b * t // 4, 4, 3, h, w)
    return torch.stack(emu3_codes(model, clips, [[h, w]] * len(clips))).reshape(b, t // 4, h // 4, w // 4)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Emu3VQVAE]:
    folder = tmp_path_factory.mktemp("emu3") / "vq"
    model = tiny_emu3_vq()
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def tok(saved) -> Emu3VideoTokenizer:
    return load_emu3(saved[0])


# -- facts -----------------------------------------------------------------------------
def test_kind_and_geometry(saved, tok):
    assert isinstance(tok, Emu3VideoTokenizer) and KINDS["hf-emu3"] is Emu3VideoTokenizer
    assert tok.kind == "hf-emu3" and tok.modality == "video" and not tok.first_frame_alone
    assert (tok.temporal_downsample, tok.spatial_downsample, tok.codebook_sizes) == (4, 4, [64])
    assert [tok.latent_frames(n) for n in (1, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]
    assert tok.frames_for(2) == 8 and tok.first_frame_of(2) == 8 and tok.grid_shape(6, 17, 20) == (2, 5, 5)
    assert tok.config.image_mean == tok.config.image_std == (0.5, 0.5, 0.5)  # no preprocessor_config.json
    assert tok.name_or_path == str(saved[0].resolve()) and not tok.training
    info = tok.describe()
    assert info["temporal_downsample"] == 4 and info["first_frame_alone"] is False and info["parameters"] > 0


def test_built_from_the_config_alone(tok):
    """The Tokenizer contract: `cls(config)` rebuilds the architecture (random weights)."""
    fresh = Emu3VideoTokenizer(Emu3VideoConfig(**json.loads(json.dumps(tok.describe()["config"]))))
    assert fresh.model.state_dict().keys() == tok.model.state_dict().keys() and fresh.config == tok.config
    assert fresh.fingerprint != tok.fingerprint
    with pytest.raises(MmtokError, match="wraps 'emu3_vqgan' models"):
        Emu3VideoTokenizer(Emu3VideoConfig("dac", tok.config.hf_config))


# -- codes -----------------------------------------------------------------------------
def test_image_codes_are_emu3s(saved, tok):
    """An image (1-frame video) gets exactly the codes Emu3 gives it: its image processor,
    then `Emu3VQVAE.encode` of the 4D batch (which repeats the image 4 times)."""
    model = saved[1]
    images = uint8_video(3, 1, seed=1)[:, 0]
    codes = tok.encode(as_mmtok(images[:, None]))
    assert codes.shape == (3, 1, H // 4, W // 4) and codes.dtype == torch.int64
    reference = emu3_codes(model, processed(images, Emu3ImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3)), [[H, W]] * 3)
    assert torch.equal(codes[:, 0], torch.stack(reference))
    assert len(codes.unique()) > 16  # the codes spread over the codebook


def test_video_codes_are_emu3s_clip_by_clip(saved, tok):
    """Latent frame j = `Emu3VQVAE.encode` of frames 4j..4j+3 alone (Emu3's autoencode.py).
    One encode call on the whole video differs after the first group: its temporal convs are
    causal and carry context across groups."""
    model = saved[1]
    video = as_mmtok(uint8_video(2, 8, seed=2))
    codes = tok.encode(video)
    assert codes.shape == (2, 2, H // 4, W // 4)
    assert torch.equal(codes, clip_codes(model, video))
    whole = torch.stack(emu3_codes(model, video.permute(0, 2, 1, 3, 4), [[H, W]] * 2))
    assert torch.equal(whole[:, 0], codes[:, 0]) and not torch.equal(whole[:, 1], codes[:, 1])


@pytest.mark.parametrize("frames", [1, 2, 6, 9])
def test_partial_groups_repeat_the_last_frame(saved, tok, frames):
    video = as_mmtok(uint8_video(1, frames, seed=3))
    padded = torch.cat([video, video[:, :, -1:].expand(-1, -1, -frames % 4, -1, -1)], dim=2)
    codes = tok.encode(video)
    assert codes.shape == (1, -(-frames // 4), H // 4, W // 4)
    assert torch.equal(codes, clip_codes(saved[1], padded))


def test_sizes_that_are_not_multiples_of_the_factor(tok):
    """H and W are padded by reflection to multiples of 4 (`pad_space`), as every mmtok video
    tokenizer does; Emu3's processor would resize instead."""
    video = as_mmtok(uint8_video(1, 4, 18, 21, seed=4))
    codes = tok.encode(video)
    assert codes.shape == (1, 1, 5, 6) and torch.equal(codes, tok.encode(tok.pad(video)))
    assert tok.decode(codes, size=(4, 18, 21)).shape == (1, 3, 4, 18, 21)


def test_batches_and_image_sizes(saved, tok):
    """A batch codes each sample as alone. `image_sizes` is Emu3's answer to batches its
    processor zero-pads to one size: it crops each sample's codes, and a padded sample's codes
    are not its codes alone (the padding is in the receptive field)."""
    model = saved[1]
    video = as_mmtok(uint8_video(3, 4, seed=5))
    together = tok.encode(video)
    assert torch.equal(together, torch.cat([tok.encode(video[i : i + 1]) for i in range(3)]))
    small = video[:1, :, 0, :8, :12]  # one 8x12 image zero-padded into a 16x20 batch
    batch = torch.zeros(2, 3, H, W)
    batch[0, :, :8, :12], batch[1] = small[0], video[1, :, 0]
    cropped = emu3_codes(model, batch, [[8, 12], [H, W]])
    assert [tuple(c.shape) for c in cropped] == [(2, 3), (H // 4, W // 4)]
    assert torch.equal(cropped[1], tok.encode(video[1:2, :, :1])[0, 0])
    alone = tok.encode(small[:, :, None])[0, 0]
    assert alone.shape == (2, 3) and not torch.equal(alone, cropped[0])


def test_codes_follow_the_processors_normalisation(saved, tmp_path):
    """A preprocessor_config.json with other mean / std (transformers' Emu3ImageProcessor
    defaults to CLIP's) is applied on the way in and undone on the way out."""
    model = saved[1]
    folder = tmp_path / "clip"
    model.save_pretrained(folder)
    processor = Emu3ImageProcessor()  # CLIP mean / std
    processor.save_pretrained(folder)
    tok = load_emu3(folder)
    assert tok.config.image_mean == pytest.approx(CLIP_MEAN) and tok.config.image_std == pytest.approx(CLIP_STD)
    images = uint8_video(2, 1, seed=6)[:, 0]
    codes = tok.encode(as_mmtok(images[:, None]))
    assert torch.equal(codes[:, 0], torch.stack(emu3_codes(model, processed(images, processor), [[H, W]] * 2)))
    assert not torch.equal(codes, load_emu3(saved[0]).encode(as_mmtok(images[:, None])))
    with torch.no_grad():
        raw = model.decode(codes[:, 0])  # Emu3's image decode: [B,3,H,W] in the processor's space
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    expected = ((raw * std + mean) * 2 - 1).clamp(-1, 1)
    assert torch.allclose(tok.decode(codes, size=(1, H, W))[:, :, 0], expected, atol=1e-5)
    assert tok.fingerprint != load_emu3(saved[0]).fingerprint  # the normalisation is part of it


# -- decoding --------------------------------------------------------------------------
def test_decode_is_emu3s_decode_clip_by_clip(saved, tok):
    model = saved[1]
    video = as_mmtok(uint8_video(2, 7, seed=7))
    codes = tok.encode(video)
    out = tok.decode(codes)
    assert out.shape == (2, 3, 8, H, W) and out.dtype == torch.float32
    assert float(out.abs().max()) <= 1 and float(out.std()) > 0.05
    with torch.no_grad():
        clips = model.decode(codes.reshape(4, 1, H // 4, W // 4))  # [clips, 4, 3, H, W]
    expected = clips.reshape(2, 8, 3, H, W).permute(0, 2, 1, 3, 4).clamp(-1, 1)
    assert torch.equal(out, expected)
    assert torch.equal(tok.decode(codes, size=(7, H - 1, W - 2)), out[:, :, :7, : H - 1, : W - 2])
    # an image: Emu3's image decode keeps the first of the 4 frames one latent frame decodes to
    with torch.no_grad():
        image = model.decode(codes[:, 0]).clamp(-1, 1)
    assert torch.equal(tok.decode(codes[:, :1], size=(1, H, W))[:, :, 0], image)
    with pytest.raises(MmtokError, match="codebook has 64 entries"):
        tok.decode(torch.full((1, 1, 2, 2), 64))


# -- windows ---------------------------------------------------------------------------
@pytest.mark.parametrize("window", [1, 2])
def test_windows_are_independent_groups_so_windowed_coding_is_exact(tok, window):
    video = as_mmtok(uint8_video(1, 13, seed=8))
    codes = tok.encode(video)
    assert codes.shape == (1, 4, H // 4, W // 4)
    assert torch.equal(tok.encode_windowed(video, window=window), codes)
    # the same clips decoded in other batch sizes: float rounding only (measured: 3e-6, std 0.66)
    assert (tok.decode_windowed(codes, window=window) - tok.decode(codes)).abs().max() < 1e-5
    enc = tok.stream_encoder(window)
    pieces = [enc.push(video[:, :, i : i + 3]) for i in range(0, 13, 3)]
    assert [p.shape[1] for p in pieces] == [0, 1, 1, 1, 0] and torch.equal(torch.cat([*pieces, enc.flush()], 1), codes)


# -- saving ----------------------------------------------------------------------------
def test_save_round_trip_keeps_the_fingerprint(saved, tok, tmp_path):
    folder = tok.save_pretrained(tmp_path / "resaved")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "preprocessor_config.json"]
    assert tok.fingerprint in (folder / "README.md").read_text()
    again = load_emu3(folder)
    assert again.fingerprint == tok.fingerprint and again.config == tok.config
    video = as_mmtok(uint8_video(1, 4, seed=10))
    assert torch.equal(again.encode(video), tok.encode(video))
    by_transformers = Emu3VQVAE.from_pretrained(folder).state_dict()
    assert by_transformers.keys() == tok.model.state_dict().keys()
    assert all(torch.equal(by_transformers[k], v) for k, v in tok.model.state_dict().items())
    assert Emu3ImageProcessor.from_pretrained(folder).image_mean == [0.5, 0.5, 0.5]
    with torch.no_grad():  # other weights, other fingerprint
        next(again.parameters()).add_(1e-3)
    again.invalidate_fingerprint()
    assert again.fingerprint != tok.fingerprint


def test_half_precision_save_keeps_the_fingerprint(saved, tmp_path):
    tok = load_emu3(saved[0])
    before = tok.fingerprint
    folder = tok.save_pretrained(tmp_path / "half", dtype=torch.float16)
    with safetensors.safe_open(folder / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()} == {torch.float16}
    again = load_emu3(folder)
    assert tok.fingerprint != before and again.fingerprint == tok.fingerprint
    assert next(again.parameters()).dtype == torch.float32


def test_mmtok_load_dispatches_here(saved):
    if "emu3" not in inspect.getsource(mmtok.load):
        pytest.skip("mmtok.load does not dispatch to mmtok.video.pretrained yet")
    tok = mmtok.load(saved[0])
    assert isinstance(tok, Emu3VideoTokenizer) and tok.fingerprint == load_emu3(saved[0]).fingerprint
    assert isinstance(mmtok.load(f"hf:{saved[0]}"), Emu3VideoTokenizer)
    assert isinstance(Emu3VideoTokenizer.from_pretrained(saved[0]), Emu3VideoTokenizer)


def test_serves_video_and_images():
    """Emu3 declares both media types; its codes and token files stay video-shaped."""
    from mmtok.pretrained.registry import families

    assert Emu3VideoTokenizer.media_types == ("video", "image") and Emu3VideoTokenizer.modality == "video"
    assert Emu3VideoTokenizer in families("image") and Emu3VideoTokenizer in families("video")
    assert Emu3VideoTokenizer not in families("audio")


# -- full Emu3 checkpoints ---------------------------------------------------------------
@torch.no_grad()
def test_the_vqmodel_of_a_full_emu3_checkpoint(saved, tmp_path):
    """hf:BAAI/Emu3-Gen-hf and friends hold the VQ as `vqmodel.*` beside the LLM: only the
    shards holding it are read."""
    text = dict(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)
    text.update(pad_token_id=0, bos_token_id=1, eos_token_id=2)
    config = Emu3Config(vq_config=VQ, text_config=text, vocabulary_map={"<|visual token 000000|>": 299})
    full = Emu3ForConditionalGeneration(config).eval()
    full.model.vqmodel.load_state_dict(saved[1].state_dict())
    folder = tmp_path / "full"
    full.save_pretrained(folder, max_shard_size="100KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    assert len(set(index.values())) > 2 and any(k.startswith("vqmodel.") for k in index)
    assert is_emu3_spec(folder) and is_emu3_spec(f"hf:{folder}")
    tok = load_emu3(f"hf:{folder}")
    assert tok.name_or_path == f"hf:{folder.resolve()}"
    assert tok.fingerprint == load_emu3(saved[0]).fingerprint  # the same VQ weights and config
    video = as_mmtok(uint8_video(1, 4, seed=11))
    assert torch.equal(tok.encode(video), clip_codes(full.model.vqmodel, video))
    assert load_emu3(tok.save_pretrained(tmp_path / "vq-only")).fingerprint == tok.fingerprint

    # a checkpoint without (all of) the VQ tensors is refused
    def drop(prefix: str) -> None:
        for shard in {s for k, s in index.items() if k.startswith(prefix)}:
            state = safetensors.torch.load_file(folder / shard)
            safetensors.torch.save_file({k: v for k, v in state.items() if not k.startswith(prefix)}, folder / shard)
        kept = {k: s for k, s in index.items() if not k.startswith(prefix)}
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": kept}))

    drop("vqmodel.decoder.")
    with pytest.raises(MmtokError, match=r"the weights lack \d+ tensors \(\['decoder\."):
        load_emu3(folder)
    drop("vqmodel.")
    with pytest.raises(MmtokError, match="holds no vqmodel tensors"):
        load_emu3(folder)


# -- refusals --------------------------------------------------------------------------
def _mangle(folder: Path, how: str) -> None:
    config = folder / "config.json"
    if how == "no config.json":
        config.unlink()
    elif how == "broken config.json":
        config.write_text(config.read_text()[:40])
    elif how == "unknown model_type":
        config.write_text(json.dumps({**json.loads(config.read_text()), "model_type": "bert"}))
    elif how == "remote-code tokenizer":
        config.write_text(json.dumps({"model_type": "Emu3VisionVQ", "ch": 256, "ch_mult": [1, 2, 2, 4], "z_channels": 4}))
    elif how == "mmtok folder":
        config.write_text(json.dumps({"format_version": 1, "kind": "video-causal-vq", "model_type": "emu3_vqgan"}))
    elif how == "no weights":
        (folder / "model.safetensors").unlink()
    elif how == "missing weights":
        from safetensors.torch import load_file, save_file

        state = load_file(folder / "model.safetensors")
        save_file({k: v for k, v in state.items() if not k.startswith("decoder.")}, folder / "model.safetensors")
    elif how == "grey model":
        config.write_text(json.dumps({**json.loads(config.read_text()), "in_channels": 1}))


@pytest.mark.parametrize("prefix", ["", "hf:"])
@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("no folder", "no such folder"),
        ("no config.json", "missing config.json"),
        ("broken config.json", "not valid JSON"),
        ("unknown model_type", "'bert' is not an Emu3 VQ model"),
        ("remote-code tokenizer", "original remote-code Emu3 vision tokenizer.*hf:BAAI/Emu3-Gen-hf"),
        ("mmtok folder", "mmtok.load"),
        ("no weights", "cannot load the model weights"),
        ("missing weights", "the weights lack"),
        ("grey model", "mmtok video is RGB"),
    ],
)
def test_bad_folders_are_one_line_errors(saved, tmp_path, how, needle, prefix):
    folder = tmp_path / "model"
    if how != "no folder":
        saved[1].save_pretrained(folder)
        _mangle(folder, how)
    with pytest.raises(MmtokError, match=needle) as err:
        load_emu3(prefix + str(folder))
    assert "\n" not in str(err.value) and str(folder) in str(err.value)


def test_which_specs_are_emu3(saved, tmp_path):
    assert is_emu3_spec(saved[0]) and is_emu3_spec(str(saved[0])) and is_emu3_spec(f"hf:{saved[0]}")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dac"}))
    assert not is_emu3_spec(tmp_path) and not is_emu3_spec(f"hf:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "kind": "hf-emu3", "model_type": "emu3_vqgan"}))
    assert not is_emu3_spec(tmp_path)
    assert not any(is_emu3_spec(s) for s in ("hf:", "", str(tmp_path / "nope"), "hf:./nope"))


def test_unreachable_hub_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert not is_emu3_spec("hf:BAAI/Emu3-Gen-hf")  # so mmtok.load reports it through its audio path
    with pytest.raises(MmtokError, match=r"hf:BAAI/Emu3-Gen-hf: cannot read the model config.*HF_HUB_OFFLINE") as err:
        load_emu3("hf:BAAI/Emu3-Gen-hf")
    assert "\n" not in str(err.value)
    with pytest.raises(MmtokError, match="no such folder"):
        load_emu3("hf:./not-here")
