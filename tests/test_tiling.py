"""Tiled encode / decode of large images: with a halo wider than the receptive field the
result matches whole-image encoding (per-position norms keep the encoder local)."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tokenizer, sample_image

from mmtok.image.files import TILE_ABOVE_PIXELS, decode_image, encode_image
from mmtok.image.tiling import decode_tiled, encode_tiled
from mmtok.media.image import from_model, to_model

H, W = 101, 131  # grid 26 x 33 at f=4: tiles of 4 codes leave ragged edges


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return sample_image(H, W, seed=7)


def whole_codes(tok, image):
    return tok.encode(to_model(image)[None])[0]


@pytest.mark.parametrize("kind", ["fsq", "vq", "dvae"])
def test_encode_tiled_matches_whole(kind, image):
    tok = make_tokenizer(kind)
    whole = whole_codes(tok, image)
    assert whole.unique().numel() >= 5, "image too plain for a meaningful comparison"
    tiled = encode_tiled(tok, image, tile=4, halo=8)
    assert tiled.shape == whole.shape == (26, 33) and tiled.dtype == torch.int64
    assert (tiled == whole).float().mean() >= 0.99


@pytest.mark.parametrize("kind", ["fsq", "dvae"])
def test_decode_tiled_matches_whole(kind, image):
    tok = make_tokenizer(kind)
    codes = whole_codes(tok, image)
    whole = from_model(tok.decode(codes[None], (H, W))[0])
    tiled = decode_tiled(tok, codes, (H, W), tile=4, halo=8)
    assert tiled.shape == (3, H, W) and tiled.dtype == torch.uint8
    assert (tiled.int() - whole.int()).abs().max() <= 2


def test_halo_matters(image):
    """Control: without context the tiles see zero padding and disagree with the whole image,
    so the agreement asserted above is a real property, not a blind spot of the fixture."""
    tok = make_tokenizer("fsq")
    whole = whole_codes(tok, image)
    assert (encode_tiled(tok, image, tile=4, halo=0) == whole).float().mean() < 0.95
    dec_whole = from_model(tok.decode(whole[None], (H, W))[0])
    assert (decode_tiled(tok, whole, (H, W), tile=4, halo=0).int() - dec_whole.int()).abs().max() > 2


@pytest.mark.parametrize(("tile", "halo"), [(64, 0), (7, 16), (1, 8)])
def test_tile_sizes(image, tile, halo):
    """One tile covering the image is exact; odd tiles and 1-code tiles still agree."""
    tok = make_tokenizer("fsq")
    whole = whole_codes(tok, image)
    tiled = encode_tiled(tok, image, tile=tile, halo=halo)
    if tile >= max(whole.shape):
        assert torch.equal(tiled, whole)
    else:
        assert (tiled == whole).float().mean() >= 0.99


def test_large_image_goes_through_tiles():
    """encode_image / decode_image switch to the tiled path above TILE_ABOVE_PIXELS and still
    give whole-image results at the original (non-multiple) size."""
    tok = make_tokenizer("fsq")
    h, w = 1023, 1030
    assert h * w > TILE_ABOVE_PIXELS
    image = sample_image(h, w, seed=3)
    tf = encode_image(tok, image, "big.png")
    assert tf.original == {"height": h, "width": w}
    assert tf.codes.shape == (256, 258)
    assert (tf.codes == whole_codes(tok, image)).float().mean() >= 0.99
    out = decode_image(tok, tf)
    assert out.shape == (3, h, w) and out.dtype == torch.uint8
    direct = from_model(tok.decode(tf.codes[None], (h, w))[0])
    assert (out.int() - direct.int()).abs().max() <= 2
