"""Image files <-> token files from Python (what `mmtok encode/decode` run): batching by
size, output layout, pre-flight checks and rollback so a failure leaves no output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import files_under, make_tokenizer, png_bytes, sample_image, write_image
from PIL import Image

from mmtok import MmtokError, TokenFile
from mmtok.image.files import decode_token_files, encode_image_files
from mmtok.media.image import from_model, read_image, to_model

EXPECTED = {"a.mmtok": (40, 48), "b.mmtok": (40, 48), "c.mmtok": (40, 48), "odd.mmtok": (37, 53), "sub/d.mmtok": (29, 30)}


def rel(paths, root):
    return sorted(str(p.relative_to(root)) for p in paths)


class Bar:
    """What a tqdm bar offers the file functions: a total and updates."""

    def __init__(self):
        self.total, self.updates = None, []

    def update(self, n):
        self.updates.append(n)


def test_encode_folder(tok, image_folder, tmp_path):
    progress = Bar()
    written = encode_image_files(tok, [image_folder], tmp_path / "tok", batch_size=2, progress=progress)
    assert rel(written, tmp_path / "tok") == sorted(EXPECTED)
    assert rel(files_under(tmp_path / "tok"), tmp_path / "tok") == sorted(EXPECTED)
    assert progress.total == 5 and sum(progress.updates) == 5
    for name, (h, w) in EXPECTED.items():
        tf = TokenFile.load(tmp_path / "tok" / name)
        assert tf.original == {"height": h, "width": w}
        assert tf.fingerprint == tok.fingerprint and tf.tokenizer == "image-vq"
        assert tf.tokenizer_path == tok.name_or_path
        source = image_folder / name.replace(".mmtok", ".jpg" if name == "c.mmtok" else ".png")
        assert tf.source == source.name
        direct = tok.encode(to_model(read_image(source))[None])[0]
        assert (tf.codes == direct).float().mean() >= 0.99, name


def test_batch_size_does_not_change_codes(tok, image_folder, tmp_path):
    encode_image_files(tok, [image_folder], tmp_path / "b1", batch_size=1)
    encode_image_files(tok, [image_folder], tmp_path / "b16", batch_size=16)
    for name in EXPECTED:
        a, b = TokenFile.load(tmp_path / "b1" / name).codes, TokenFile.load(tmp_path / "b16" / name).codes
        assert (a == b).float().mean() >= 0.99


def test_decode_folder(tok, image_folder, tmp_path):
    encode_image_files(tok, [image_folder], tmp_path / "tok")
    progress = Bar()
    written = decode_token_files(tok, [tmp_path / "tok"], tmp_path / "rec", progress=progress)
    assert rel(written, tmp_path / "rec") == sorted(n.replace(".mmtok", ".png") for n in EXPECTED)
    assert progress.total == 5 and sum(progress.updates) == 5
    for name, (h, w) in EXPECTED.items():
        image = read_image(tmp_path / "rec" / name.replace(".mmtok", ".png"))
        assert image.shape == (3, h, w)
        codes = TokenFile.load(tmp_path / "tok" / name).codes
        assert torch.equal(image, from_model(tok.decode(codes[None], (h, w))[0]))


def test_decode_batch_size_does_not_change_images(tok, image_folder, tmp_path):
    """a, b and c share a size, so batch_size=16 decodes them in one batch."""
    encode_image_files(tok, [image_folder], tmp_path / "tok")
    decode_token_files(tok, [tmp_path / "tok"], tmp_path / "b1", batch_size=1)
    decode_token_files(tok, [tmp_path / "tok"], tmp_path / "b16", batch_size=16)
    for name in EXPECTED:
        png = name.replace(".mmtok", ".png")
        a, b = read_image(tmp_path / "b1" / png), read_image(tmp_path / "b16" / png)
        assert (a.int() - b.int()).abs().max() <= 1, name  # batched convs may round differently


def test_single_file_names(tok, image_folder, tmp_path):
    out = encode_image_files(tok, [image_folder / "odd.png"], tmp_path / "one.mmtok")
    assert out == [tmp_path / "one.mmtok"]
    back = decode_token_files(tok, [tmp_path / "one.mmtok"], tmp_path / "one.png")
    assert back == [tmp_path / "one.png"] and read_image(back[0]).shape == (3, 37, 53)
    # A single file into a folder keeps its name.
    assert encode_image_files(tok, [image_folder / "odd.png"], tmp_path / "dir") == [tmp_path / "dir" / "odd.mmtok"]
    assert decode_token_files(tok, [tmp_path / "dir"], tmp_path / "rec", ".jpg") == [tmp_path / "rec" / "odd.jpg"]


def test_colliding_output_names(tok, tmp_path):
    write_image(tmp_path / "x" / "same.png", sample_image(8, 8))
    write_image(tmp_path / "y" / "same.png", sample_image(8, 8))
    with pytest.raises(MmtokError, match="same output name"):
        encode_image_files(tok, [tmp_path / "x" / "same.png", tmp_path / "y" / "same.png"], tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_preflight_rejects_non_image_before_writing(tok, image_folder, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(image_folder, src)
    (src / "zzz.png").write_text("not an image")
    with pytest.raises(MmtokError, match="zzz.png"):
        encode_image_files(tok, [src], tmp_path / "out")
    assert files_under(tmp_path / "out") == []


def test_rollback_on_truncated_image(tok, image_folder, tmp_path):
    """A truncated file passes the header check; it is the largest, so encoded last (after
    the others were written): everything written must be removed."""
    src = tmp_path / "src"
    shutil.copytree(image_folder, src)
    big = write_image(src / "zz_big.png", sample_image(64, 64, seed=9))
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    with pytest.raises(MmtokError, match="zz_big.png"):
        encode_image_files(tok, [src], tmp_path / "out", batch_size=1)
    assert files_under(tmp_path / "out") == []


def test_decode_checks_every_file_first(tok, image_folder, tmp_path):
    encode_image_files(tok, [image_folder], tmp_path / "tok")
    other = make_tokenizer("fsq", seed=1)
    encode_image_files(other, [image_folder / "a.png"], tmp_path / "tok" / "zz_other.mmtok")
    with pytest.raises(MmtokError, match="zz_other.mmtok"):
        decode_token_files(tok, [tmp_path / "tok"], tmp_path / "rec")
    assert files_under(tmp_path / "rec") == []


def test_decode_size_mismatch(tok, tmp_path):
    codes = torch.zeros(3, 4, dtype=torch.long)
    TokenFile(codes, "image", tok.kind, tok.fingerprint, {"height": 40, "width": 40}).save(tmp_path / "t.mmtok")
    with pytest.raises(MmtokError, match="t.mmtok"):
        decode_token_files(tok, [tmp_path / "t.mmtok"], tmp_path / "rec")
    assert files_under(tmp_path / "rec") == []


def test_exif_rotated_photos(tok, tmp_path):
    """Phone photos: stored 48x40 (WxH) with EXIF 'rotate 90'; they are 40 wide x 48 tall as
    shown. Mixed with an unrotated photo of the same stored size, each must be encoded at
    its shown size, and decode must give that size back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    for i in range(2):
        write_image(tmp_path / "src" / f"rot{i}.jpg", sample_image(40, 48, seed=i), exif=exif, quality=95)
    write_image(tmp_path / "src" / "plain.jpg", sample_image(40, 48, seed=5), quality=95)
    encode_image_files(tok, [tmp_path / "src"], tmp_path / "tok")
    for name, (h, w) in {"rot0": (48, 40), "rot1": (48, 40), "plain": (40, 48)}.items():
        tf = TokenFile.load(tmp_path / "tok" / f"{name}.mmtok")
        assert tf.original == {"height": h, "width": w}, name
        assert tf.codes.shape == tok.grid_shape(h, w), name
        direct = tok.encode(to_model(read_image(tmp_path / "src" / f"{name}.jpg"))[None])[0]
        assert (tf.codes == direct).float().mean() >= 0.99, name
    decode_token_files(tok, [tmp_path / "tok"], tmp_path / "rec")
    assert read_image(tmp_path / "rec" / "rot0.png").shape == (3, 48, 40)
    assert read_image(tmp_path / "rec" / "plain.png").shape == (3, 40, 48)


def test_decompression_bomb_in_folder(tok, image_folder, tmp_path):
    """A PNG header claiming 50k x 50k pixels is refused in the pre-flight, before any output."""
    src = tmp_path / "src"
    shutil.copytree(image_folder, src)
    (src / "bomb.png").write_bytes(png_bytes(np.zeros((1, 3), dtype=np.uint8), 8, 2, size=(50_000, 50_000)))
    with pytest.raises(MmtokError, match="bomb.png"):
        encode_image_files(tok, [src], tmp_path / "out")
    assert files_under(tmp_path / "out") == []
