"""The tokenizer contract (mmtok/tokenizer.py), checked the same way for every registered kind:
our trained kinds and every transformers adapter, each a tiny random-init model saved to a
folder and loaded back with `mmtok.load`, as a user would.

Per kind: codes are int64 in range with the shape the tokenizer announces (`grid_shape` /
`num_frames`), encode is deterministic and independent of the rest of its batch, decode gives
back the input's layout (or, encode-only, refuses in one error), out-of-range codes are refused,
the token layout flattens and unflattens codes exactly inside its id range, save -> load keeps
the fingerprint and the codes, nothing gets gradients, train/eval mode is left as found, and
`describe()` leads with tokens. A kind registered without a tiny builder here fails the first
test, so a new family cannot skip the contract."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from conftest import make_codec, make_tokenizer, make_video_tokenizer, make_vocos
from test_image_glm import PROCESSOR as GLM_PROCESSOR
from test_image_glm import tiny_config as tiny_glm_config
from test_image_pretrained import CHAMELEON_VQ, JANUS_VQ, chameleon_processor, janus_processor
from test_video_pretrained import tiny_emu3_vq
from tiny_audio_codecs import BUILDERS as AUDIO_CODECS
from transformers import (
    ChameleonVQVAE,
    ChameleonVQVAEConfig,
    GlmImageForConditionalGeneration,
    GlmImageImageProcessorPil,
    JanusVQVAE,
    JanusVQVAEConfig,
)

import mmtok
import mmtok.kinds  # noqa: F401  (registers every kind, the pretrained families included)
from mmtok.errors import MmtokError
from mmtok.configs import KINDS

torch.set_num_threads(1)


def _ours(build):
    """A builder for one of our kinds: the tiny model saved with mmtok's save_pretrained."""
    return lambda folder: build().save_pretrained(folder)


def _transformers(build, processor=None):
    """A builder for an adapter: the tiny transformers model (and its image processor) saved
    with transformers' own save_pretrained, as a published checkpoint is."""

    def save(folder: Path) -> Path:
        torch.manual_seed(0)
        build().eval().save_pretrained(folder)
        if processor is not None:
            processor().save_pretrained(folder)
        return folder

    return save


BUILDERS = {
    "image-vq": _ours(lambda: make_tokenizer("fsq")),
    "image-dvae": _ours(lambda: make_tokenizer("dvae")),
    "audio-codec": _ours(make_codec),
    "audio-vocos-fsq": _ours(make_vocos),
    "video-causal-vq": _ours(make_video_tokenizer),
    "hf-emu3": _transformers(tiny_emu3_vq),
    "hf-janus": _transformers(lambda: JanusVQVAE(JanusVQVAEConfig(**JANUS_VQ)), janus_processor),
    "hf-chameleon": _transformers(lambda: ChameleonVQVAE(ChameleonVQVAEConfig(**CHAMELEON_VQ)), chameleon_processor),
    "hf-glm-image": _transformers(lambda: GlmImageForConditionalGeneration(tiny_glm_config()), lambda: GlmImageImageProcessorPil(**GLM_PROCESSOR)),
    **{f"hf-{name}": _transformers(build) for name, build in AUDIO_CODECS.items()},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """kind -> its saved tiny model's folder, built on first use."""
    root = tmp_path_factory.mktemp("every-kind")

    @functools.cache
    def folder(kind: str) -> Path:
        return BUILDERS[kind](root / kind)

    return folder


@pytest.fixture(params=sorted(BUILDERS))
def tok(request, folders) -> mmtok.Tokenizer:
    return mmtok.load(folders(request.param))


def media(tok, seed: int = 0) -> torch.Tensor:
    """A batch of random media in [-1, 1] in the tokenizer's layout: two 24x28 images, two
    half-second clips at its rate and channel count (at speech-like levels), or one 5-frame
    16x20 video."""
    g = torch.Generator().manual_seed(seed)
    if tok.modality == "audio":
        return (torch.rand(2, tok.channels, tok.sample_rate // 2, generator=g) * 2 - 1) * 0.3
    shape = (2, 3, 24, 28) if tok.modality == "image" else (1, 3, 5, 16, 20)
    return torch.rand(shape, generator=g) * 2 - 1


def announced_shape(tok, x: torch.Tensor) -> tuple[int, ...]:
    """The codes' shape the tokenizer's own size functions predict for `x`."""
    if tok.modality == "image":
        return (x.shape[0], *tok.grid_shape(*x.shape[-2:]))
    if tok.modality == "audio":
        return (x.shape[0], len(tok.codebook_sizes), tok.num_frames(x.shape[-1]))
    return (x.shape[0], *tok.grid_shape(*x.shape[-3:]))


def decoded_shape(tok, x: torch.Tensor) -> tuple[int, ...]:
    """The shape `decoded` gives back: that of `x`, except that audio is at the decoder's
    `output_sample_rate` (NeuCodec reads 16 kHz and writes 24 kHz)."""
    if tok.modality == "audio":
        return (*x.shape[:2], tok.output_length(x.shape[-1]))
    return tuple(x.shape)


def decoded(tok, codes: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """decode(codes) at the size of `x`."""
    if tok.modality == "audio":
        return tok.decode(codes, length=x.shape[-1])
    return tok.decode(codes, size=tuple(x.shape[2:]))


def test_every_registered_kind_has_a_tiny_builder():
    assert set(BUILDERS) == set(KINDS)


def test_codes_are_integers_in_range_with_the_announced_shape(tok):
    x = media(tok)
    codes = tok.encode(x)
    assert codes.dtype == torch.int64
    assert tuple(codes.shape) == announced_shape(tok, x)
    sizes = torch.tensor(tok.codebook_sizes).reshape(-1, 1) if tok.modality == "audio" else tok.codebook_sizes[0]
    assert int(codes.min()) >= 0 and bool((codes < sizes).all())
    assert codes.unique().numel() >= 2  # an encoder that maps everything to one code would pass the rest
    tok.check_codes(codes)


def test_encode_is_deterministic_and_independent_of_the_batch(tok):
    x = media(tok)
    codes = tok.encode(x)
    assert torch.equal(codes, tok.encode(x.clone()))
    one_at_a_time = torch.cat([tok.encode(x[i : i + 1]) for i in range(len(x))])
    assert (codes == one_at_a_time).float().mean() >= 0.99


def test_decode_gives_back_the_input_layout_or_refuses_in_one_error(tok):
    x = media(tok)
    codes = tok.encode(x)
    if not tok.can_decode:
        with pytest.raises(MmtokError, match="decode"):
            tok.decode(codes)
        return
    out = decoded(tok, codes, x)
    assert out.shape == decoded_shape(tok, x) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    assert torch.equal(out, decoded(tok, codes.clone(), x))


@pytest.mark.parametrize("bad", ["past the codebook", "negative"])
def test_out_of_range_codes_are_refused(tok, bad):
    codes = tok.encode(media(tok))
    codes[(0,) * codes.dim()] = tok.codebook_sizes[0] if bad == "past the codebook" else -1
    with pytest.raises(MmtokError):
        tok.check_codes(codes)
    if tok.can_decode:
        with pytest.raises(MmtokError):
            tok.decode(codes)


def test_token_layout_flattens_and_unflattens_exactly(tok):
    codes = tok.encode(media(tok))[0]
    layout = tok.token_layout()
    ids = layout.flatten(codes)
    assert int(ids.min()) >= 0 and int(ids.max()) < layout.vocab_size
    back = layout.unflatten(ids) if tok.modality == "audio" else layout.unflatten(ids, tuple(codes.shape))
    assert torch.equal(back, codes)


def test_save_and_load_keep_the_fingerprint_and_the_codes(tok, tmp_path):
    x = media(tok)
    again = mmtok.load(tok.save_pretrained(tmp_path / "saved"))
    assert (again.kind, again.fingerprint) == (tok.kind, tok.fingerprint)
    assert torch.equal(again.encode(x), tok.encode(x))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_no_gradients_and_mode_left_as_found(tok, mode):
    tok.train(mode == "train")
    x = media(tok).requires_grad_(True)
    codes = tok.encode(x)
    out = decoded(tok, codes, x) if tok.can_decode else None
    assert not codes.requires_grad and (out is None or out.grad_fn is None)
    assert all(p.grad is None for p in tok.parameters())
    assert all(m.training == (mode == "train") for m in tok.modules())


def test_describe_leads_with_tokens(tok):
    info = tok.describe()
    assert next(iter(info)).startswith("tokens_per_")
    assert info["kind"] == tok.kind and info["codebook_sizes"] == tok.codebook_sizes
