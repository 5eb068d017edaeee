"""The tokenizer contract, for every image kind (FSQ, VQ, LFQ quantizers and the dVAE):
shapes for any input size, integer codes in range, determinism, decode consistency,
save/load equality, strict loading, no gradients, and train/eval mode left as found."""

from __future__ import annotations

import json
import math

import pytest
import safetensors.torch
import torch
from conftest import KINDS, make_tokenizer, tiny_config

import mmtok
from mmtok import MmtokError
from mmtok.image import ImageDVAE, ImageVQ, ImageVQConfig
from mmtok.quantize import QuantizerConfig

CODEBOOK = {"fsq": 125, "vq": 64, "lfq": 16, "dvae": 32}
ODD_SIZES = [(1, 1), (3, 5), (16, 16), (37, 51), (9, 4)]


def rand_images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g) * 2 - 1


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


# -- codes ---------------------------------------------------------------------------------
def test_facts(kind):
    tok = make_tokenizer(kind)
    assert tok.modality == "image"
    assert tok.downsample == 4
    assert tok.codebook_sizes == [CODEBOOK[kind]]
    assert tok.grid_shape(37, 51) == (10, 13)
    assert tok.grid_shape(32, 4) == (8, 1)


@pytest.mark.parametrize("size", ODD_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_encode_shape_dtype_range(kind, size):
    tok = make_tokenizer(kind)
    h, w = size
    codes = tok.encode(rand_images(2, h, w))
    assert codes.shape == (2, math.ceil(h / 4), math.ceil(w / 4))
    assert tuple(codes.shape[1:]) == tok.grid_shape(h, w)
    assert codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < CODEBOOK[kind]


def test_codes_vary_with_content(kind):
    """An encoder that maps everything to one code would pass shape tests; this one must not."""
    tok = make_tokenizer(kind)
    codes = tok.encode(rand_images(2, 32, 32))
    assert codes.unique().numel() >= 3
    assert not torch.equal(codes, tok.encode(-rand_images(2, 32, 32)))


def test_encode_deterministic(kind):
    tok = make_tokenizer(kind)
    x = rand_images(2, 37, 51)
    first = tok.encode(x)
    assert torch.equal(first, tok.encode(x.clone()))
    # A second instance built the same way gives the same codes.
    assert torch.equal(first, make_tokenizer(kind).encode(x))


def test_encode_batch_invariant(kind):
    """Codes of an image do not depend on the other images in its batch."""
    tok = make_tokenizer(kind)
    x = rand_images(3, 24, 28)
    batched = tok.encode(x)
    single = torch.cat([tok.encode(x[i : i + 1]) for i in range(3)])
    assert (batched == single).float().mean() >= 0.99


def test_encode_rejects_bad_layout(kind):
    tok = make_tokenizer(kind)
    with pytest.raises(ValueError):
        tok.encode(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError):
        tok.encode(torch.zeros(1, 1, 16, 16))


def test_padding_is_invisible(kind):
    """encode pads to the model multiple itself: encoding the padded input gives the same
    codes, and decode(size=...) is exactly the crop of the full decode."""
    tok = make_tokenizer(kind)
    x = rand_images(1, 37, 51)
    padded = tok.pad(x)
    assert padded.shape[-2:] == (40, 52)
    assert torch.equal(padded[..., :37, :51], x)
    codes = tok.encode(x)
    assert torch.equal(codes, tok.encode(padded))
    full = tok.decode(codes)
    assert full.shape == (1, 3, 40, 52)
    assert torch.equal(tok.decode(codes, size=(37, 51)), full[..., :37, :51])


# -- decode --------------------------------------------------------------------------------
def test_decode_shape_range_deterministic(kind):
    tok = make_tokenizer(kind)
    codes = tok.encode(rand_images(2, 37, 51))
    out = tok.decode(codes, size=(37, 51))
    assert out.shape == (2, 3, 37, 51)
    assert out.dtype == torch.float32
    assert float(out.min()) >= -1 and float(out.max()) <= 1
    assert torch.equal(out, tok.decode(codes.clone(), size=(37, 51)))
    assert tok.decode(codes).shape == (2, 3, 40, 52)


def test_decode_of_encode_matches_forward(kind):
    """decode(encode(x)) is the model's own quantized reconstruction: the code -> embedding
    lookup used by decode agrees with the quantizer's forward pass."""
    tok = make_tokenizer(kind)
    x = rand_images(2, 32, 32)
    recon = tok(x)["recon"].clamp(-1, 1)
    assert torch.allclose(tok.decode(tok.encode(x)), recon, atol=1e-5)


def test_encode_of_decode(kind):
    tok = make_tokenizer(kind)
    codes = torch.randint(0, CODEBOOK[kind], (2, 5, 7), generator=torch.Generator().manual_seed(0))
    images = tok.decode(codes)
    assert images.shape == (2, 3, 20, 28)
    again = tok.encode(images)
    assert again.shape == codes.shape
    assert int(again.min()) >= 0 and int(again.max()) < CODEBOOK[kind]
    assert torch.equal(again, tok.encode(tok.decode(codes)))


def test_decode_all_codes(kind):
    """Every id of the codebook decodes (no hole in the id range)."""
    tok = make_tokenizer(kind)
    n = CODEBOOK[kind]
    out = tok.decode(torch.arange(n).reshape(1, 1, n))
    assert out.shape == (1, 3, 4, 4 * n) and torch.isfinite(out).all()


@pytest.mark.parametrize("bad", ["too_big", "negative", "float"])
def test_decode_rejects_bad_codes(kind, bad):
    tok = make_tokenizer(kind)
    codes = torch.zeros(1, 3, 3, dtype=torch.long)
    if bad == "too_big":
        codes[0, 1, 1] = CODEBOOK[kind]
    elif bad == "negative":
        codes[0, 0, 0] = -1
    else:
        codes = codes.float()
    with pytest.raises(MmtokError, match="codes"):
        tok.decode(codes)
    with pytest.raises(MmtokError):
        tok.check_codes(codes)


def test_check_codes_accepts_full_range(kind):
    tok = make_tokenizer(kind)
    tok.check_codes(torch.tensor([0, CODEBOOK[kind] - 1]))
    tok.check_codes(torch.zeros(0, dtype=torch.long))


def test_decode_rejects_bad_layout(kind):
    with pytest.raises(ValueError):
        make_tokenizer(kind).decode(torch.zeros(4, 4, dtype=torch.long))


# -- gradients and modes -------------------------------------------------------------------
def test_no_grad(kind):
    tok = make_tokenizer(kind)
    x = rand_images(1, 16, 16).requires_grad_(True)
    codes = tok.encode(x)
    out = tok.decode(codes)
    assert not codes.requires_grad and not out.requires_grad
    assert out.grad_fn is None
    assert all(p.grad is None for p in tok.parameters())


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_mode_restored(kind, mode):
    tok = make_tokenizer(kind)
    tok.train(mode == "train")
    codes = tok.encode(rand_images(1, 16, 16))
    assert tok.training == (mode == "train")
    tok.decode(codes)
    assert tok.training == (mode == "train")
    assert all(m.training == (mode == "train") for m in tok.modules())


def test_encode_same_in_train_mode(kind):
    """encode always runs in inference mode (dVAE: argmax, no Gumbel noise; VQ: no EMA)."""
    tok = make_tokenizer(kind)
    x = rand_images(2, 24, 24)
    expected = tok.encode(x)
    tok.train()
    assert torch.equal(tok.encode(x), expected)


@pytest.mark.parametrize("variant", [*KINDS, "vq-kmeans"])
def test_encode_decode_leave_state_untouched(variant):
    """Encoding and decoding must not modify the model (no EMA update, no k-means init):
    otherwise its weights, and so its fingerprint, drift from what token files recorded."""
    if variant == "vq-kmeans":
        torch.manual_seed(0)
        q = QuantizerConfig(kind="vq", codebook_size=64, codebook_dim=4)  # kmeans_init=True
        tok = ImageVQ(ImageVQConfig(**{**tiny_config("fsq").__dict__, "quantizer": q}))
    else:
        tok = make_tokenizer(variant)
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    for training in (False, True):
        tok.train(training)
        tok.decode(tok.encode(rand_images(2, 24, 24)))
    after = tok.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(kind):
    cpu = make_tokenizer(kind)
    gpu = make_tokenizer(kind).cuda()
    x = rand_images(2, 37, 51)
    codes = gpu.encode(x.cuda())
    assert codes.device.type == "cuda" and codes.dtype == torch.int64
    assert (codes.cpu() == cpu.encode(x)).float().mean() >= 0.9  # TF32 convs may flip a few ties
    out = gpu.decode(codes.cpu().cuda(), size=(37, 51))
    assert out.device.type == "cuda" and out.shape == (2, 3, 37, 51)
    same_codes = cpu.encode(x)
    assert torch.allclose(gpu.decode(same_codes.cuda()).cpu(), cpu.decode(same_codes), atol=2e-2)
    assert gpu.fingerprint == cpu.fingerprint


# -- dVAE specifics ------------------------------------------------------------------------
def test_dvae_schedule():
    tok = make_tokenizer("dvae")
    c = tok.config
    tau0, kl0 = tok.schedule(0.0)
    assert tau0 == pytest.approx(c.tau_start) and kl0 == 0.0
    tau_mid, kl_mid = tok.schedule(c.kl_warmup / 2)
    assert kl_mid == pytest.approx(c.kl_weight / 2)
    assert c.tau_end < tau_mid < c.tau_start
    tau_end, kl_end = tok.schedule(c.tau_anneal)
    assert tau_end == pytest.approx(c.tau_end) and kl_end == pytest.approx(c.kl_weight)
    assert tok.schedule(1.0) == pytest.approx((c.tau_end, c.kl_weight))
    taus = [tok.schedule(p)[0] for p in torch.linspace(0, 1, 11).tolist()]
    assert all(a >= b for a, b in zip(taus, taus[1:]))


def test_dvae_training_forward():
    tok = make_tokenizer("dvae").train()
    x = rand_images(2, 16, 16)
    out = tok(x, 0.5)
    assert out["recon"].shape == (2, 3, 16, 16)
    assert out["ids"].shape == (2, 4, 4) and out["ids"].dtype == torch.int64
    assert out["aux_loss"].ndim == 0 and float(out["aux_loss"].detach()) >= 0
    assert out["recon"].requires_grad
    (out["recon"].pow(2).mean() + out["aux_loss"]).backward()
    # Gradients reach the encoder through the Gumbel relaxation.
    grads = [p.grad for p in tok.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # At progress 0 the KL weight is 0, so aux_loss is exactly 0.
    assert float(tok(x, 0.0)["aux_loss"].detach()) == 0.0


# -- save / load ---------------------------------------------------------------------------
def test_save_load_roundtrip(kind, tmp_path):
    tok = make_tokenizer(kind)
    folder = tok.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["kind"] == tok.kind and meta["fingerprint"] == tok.fingerprint and meta["format_version"] == 1
    loaded = mmtok.load(folder)
    assert type(loaded) is type(tok)
    assert loaded.config == tok.config
    assert loaded.fingerprint == tok.fingerprint
    assert not loaded.training
    assert loaded.name_or_path == str(folder.resolve())
    a, b = tok.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    x = rand_images(2, 37, 51)
    assert torch.equal(loaded.encode(x), tok.encode(x))
    codes = tok.encode(x)
    assert torch.equal(loaded.decode(codes), tok.decode(codes))
    # from_pretrained on the concrete class works, on another class it refuses.
    assert type(type(tok).from_pretrained(folder)) is type(tok)
    assert type(mmtok.Tokenizer.from_pretrained(folder)) is type(tok)
    other = ImageVQ if kind == "dvae" else ImageDVAE
    with pytest.raises(MmtokError, match="not"):
        other.from_pretrained(folder)


def test_fingerprint_identifies_weights_and_config(kind):
    a, b = make_tokenizer(kind, seed=0), make_tokenizer(kind, seed=1)
    assert a.fingerprint == make_tokenizer(kind, seed=0).fingerprint
    assert a.fingerprint != b.fingerprint
    assert len(a.fingerprint) == 16 and int(a.fingerprint, 16) >= 0


def test_fingerprint_depends_on_config():
    torch.manual_seed(0)
    a = ImageVQ(tiny_config("fsq"))
    torch.manual_seed(0)
    # Same weights (FSQ levels have no parameters), different quantizer config.
    b = ImageVQ(ImageVQConfig(**{**tiny_config("fsq").__dict__, "quantizer": QuantizerConfig(kind="fsq", fsq_levels=(3, 5, 7))}))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.fingerprint != b.fingerprint


def test_save_after_weights_change_stays_loadable(tmp_path):
    """A tokenizer whose weights change after its fingerprint was first read (fine-tuning a
    loaded tokenizer in one's own loop) must still save a checkpoint that loads."""
    tok = make_tokenizer("fsq")
    old = tok.fingerprint  # e.g. read by describe() or a TokenFile
    weight = next(tok.decoder.parameters())
    with torch.no_grad():
        weight.add_(0.01)
    tok.save_pretrained(tmp_path / "tuned")
    loaded = mmtok.load(tmp_path / "tuned")
    assert loaded.fingerprint != old
    assert torch.equal(next(loaded.decoder.parameters()), weight)


def test_save_half_precision(kind, tmp_path):
    """dtype=float16 halves the file; loading gives float32 weights equal to the rounded ones,
    the recorded fingerprint, and the same codes as the saved (rounded) model."""
    tok = make_tokenizer(kind)
    full = {k: v.clone() for k, v in tok.state_dict().items()}
    folder = tok.save_pretrained(tmp_path / "half", dtype=torch.float16)
    stored = safetensors.torch.load_file(folder / "model.safetensors")
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    changed = [k for k, v in tok.state_dict().items() if v.is_floating_point() and not torch.equal(v, full[k])]
    assert changed  # the in-memory weights were rounded too, so the fingerprint stays truthful
    loaded = mmtok.load(folder)
    assert loaded.fingerprint == tok.fingerprint
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())
    x = rand_images(2, 24, 40)
    assert torch.equal(loaded.encode(x), tok.encode(x))


def test_save_over_existing_folder_keeps_foreign_files(tmp_path):
    folder = tmp_path / "tok"
    make_tokenizer("fsq", seed=0).save_pretrained(folder)
    (folder / "recipe.yaml").write_text("kind: image-vq\n")
    (folder / "README.md").write_text("# my card\n")
    second = make_tokenizer("fsq", seed=1)
    second.save_pretrained(folder)
    assert (folder / "recipe.yaml").read_text() == "kind: image-vq\n"
    assert (folder / "README.md").read_text() == "# my card\n"
    assert mmtok.load(folder).fingerprint == second.fingerprint
    assert not [p for p in tmp_path.iterdir() if p.name != "tok"], "temp folder left behind"


def test_custom_model_card(tmp_path):
    folder = make_tokenizer("fsq").save_pretrained(tmp_path / "tok", model_card="# card\n")
    assert (folder / "README.md").read_text() == "# card\n"


# -- strict load failures (one test per way a checkpoint can be wrong) ---------------------
@pytest.fixture
def saved(tmp_path):
    return make_tokenizer("fsq").save_pretrained(tmp_path / "tok")


def edit_config(folder, edit):
    path = folder / "config.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def load_error(folder) -> str:
    with pytest.raises(MmtokError) as info:
        mmtok.load(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_load_missing_folder(tmp_path):
    assert "no such" in load_error(tmp_path / "nope")


def test_load_missing_config(saved):
    (saved / "config.json").unlink()
    assert "config.json" in load_error(saved)


def test_load_invalid_json(saved):
    (saved / "config.json").write_text("{not json")
    assert "JSON" in load_error(saved)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_load_bad_format_version(saved, version):
    edit_config(saved, lambda m: m.update(format_version=version) if version is not None else m.pop("format_version"))
    assert "format_version" in load_error(saved)


def test_load_unknown_kind(saved):
    edit_config(saved, lambda m: m.update(kind="image-magic"))
    assert "image-magic" in load_error(saved)


def test_load_unknown_config_field(saved):
    edit_config(saved, lambda m: m["config"].update(dropout=0.1))
    assert "dropout" in load_error(saved)


def test_load_unknown_nested_config_field(saved):
    edit_config(saved, lambda m: m["config"]["quantizer"].update(rotation_trick=True))
    assert "rotation_trick" in load_error(saved)


def test_load_invalid_config_value(saved):
    edit_config(saved, lambda m: m["config"].update(patch_size=0))
    assert "patch_size" in load_error(saved)


def test_load_config_does_not_match_weights(saved):
    edit_config(saved, lambda m: m["config"].update(channels=16))
    load_error(saved)


def test_load_missing_weights(saved):
    (saved / "model.safetensors").unlink()
    assert "model.safetensors" in load_error(saved)


def test_load_refuses_pickle(saved):
    """Only safetensors is read: a pickled state dict next to the config is not a fallback."""
    tok = mmtok.load(saved)
    (saved / "model.safetensors").unlink()
    torch.save(tok.state_dict(), saved / "pytorch_model.bin")
    assert "model.safetensors" in load_error(saved)


def _rewrite_weights(folder, edit):
    path = folder / "model.safetensors"
    state = safetensors.torch.load_file(path)
    edit(state)
    safetensors.torch.save_file(state, path)


def _a_bias(state) -> str:
    return next(k for k in sorted(state) if k.startswith("decoder.") and k.endswith(".bias"))


def test_load_missing_key(saved):
    removed = []
    _rewrite_weights(saved, lambda s: removed.append(_a_bias(s)) or s.pop(removed[0]))
    assert removed[0] in load_error(saved)


def test_load_unexpected_key(saved):
    _rewrite_weights(saved, lambda s: s.update({"decoder.extra": torch.zeros(3)}))
    assert "decoder.extra" in load_error(saved)


def test_load_wrong_shape(saved):
    _rewrite_weights(saved, lambda s: s.update({_a_bias(s): torch.zeros(5)}))
    load_error(saved)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_load_corrupt_weights_file(saved, damage):
    path = saved / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x00\x01not safetensors" * 10, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    assert "model.safetensors" in load_error(saved)


def test_load_tampered_weights_fingerprint(saved):
    """Bytes changed inside the tensor data (header still valid): only the fingerprint can
    tell, and loading must refuse."""
    path = saved / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # a byte of the last tensor's data
    path.write_bytes(bytes(data))
    assert "fingerprint" in load_error(saved)


def test_load_weights_from_other_checkpoint(saved, tmp_path):
    other = make_tokenizer("fsq", seed=1).save_pretrained(tmp_path / "other")
    (saved / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    assert "fingerprint" in load_error(saved)
