"""The `.mmtok` token file: round trip, smallest dtype on disk, metadata readable without
mmtok, fingerprint checks, and one clear error for every kind of malformed file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import safetensors
import safetensors.torch
import torch
from conftest import files_under, make_tokenizer

from mmtok import MmtokError, TokenFile
from mmtok.tokens_file import smallest_dtype


def stored(path):
    """(codes tensor as stored, metadata) read with plain safetensors, as another language would."""
    with safetensors.safe_open(path, framework="pt") as f:
        return f.get_tensor("codes"), f.metadata()


def test_roundtrip_all_fields(tmp_path):
    codes = torch.randint(0, 125, (7, 9), generator=torch.Generator().manual_seed(0))
    tf = TokenFile(codes, "image", "image-vq", "0123456789abcdef", {"height": 27, "width": 36}, "cat.png", "/models/tok")
    path = tf.save(tmp_path / "cat.mmtok")
    assert path == tmp_path / "cat.mmtok"
    back = TokenFile.load(path)
    assert torch.equal(back.codes, codes) and back.codes.dtype == torch.int64
    assert (back.modality, back.tokenizer, back.fingerprint) == ("image", "image-vq", "0123456789abcdef")
    assert back.original == {"height": 27, "width": 36}
    assert (back.source, back.tokenizer_path) == ("cat.png", "/models/tok")


def test_metadata_is_plain_safetensors(tmp_path):
    tf = TokenFile(torch.zeros(2, 3, dtype=torch.long), "image", "image-vq", "abc", {"height": 8, "width": 12}, "x.png")
    codes, meta = stored(tf.save(tmp_path / "x.mmtok"))
    assert codes.shape == (2, 3)
    assert meta["format"] == "mmtok-tokens" and meta["version"] == "1"
    assert json.loads(meta["grid"]) == [2, 3]
    assert json.loads(meta["original"]) == {"height": 8, "width": 12}
    assert meta["fingerprint"] == "abc" and meta["modality"] == "image" and meta["tokenizer"] == "image-vq"


@pytest.mark.parametrize(
    ("max_code", "dtype"),
    [(0, torch.uint8), (255, torch.uint8), (256, torch.uint16), (65535, torch.uint16), (65536, torch.int32), (2**31 - 1, torch.int32)],
)
def test_smallest_dtype(max_code, dtype):
    assert smallest_dtype(max_code) == dtype


@pytest.mark.parametrize(("max_code", "dtype"), [(124, torch.uint8), (300, torch.uint16), (65535, torch.uint16), (70000, torch.int32)])
def test_stored_in_smallest_dtype_and_exact(tmp_path, max_code, dtype):
    codes = torch.tensor([[0, max_code // 2], [max_code, 1]])
    path = TokenFile(codes, "image", "image-vq", "f").save(tmp_path / "t.mmtok")
    raw, _ = stored(path)
    assert raw.dtype == dtype
    assert torch.equal(TokenFile.load(path).codes, codes)


def test_file_is_small(tmp_path):
    """A 64x64 grid of 8-bit codes costs ~4 KiB plus a small header, not 8 bytes per code."""
    codes = torch.randint(0, 200, (64, 64))
    path = TokenFile(codes, "image", "image-vq", "f").save(tmp_path / "t.mmtok")
    assert path.stat().st_size < 64 * 64 + 2048


def test_from_codes_records_tokenizer(tok, tmp_path):
    codes = tok.encode(torch.zeros(1, 3, 12, 16))[0]
    tf = TokenFile.from_codes(tok, codes, {"height": 12, "width": 16}, "z.png")
    assert (tf.modality, tf.tokenizer, tf.fingerprint) == ("image", "image-vq", tok.fingerprint)
    assert tf.tokenizer_path == tok.name_or_path and tf.tokenizer_path
    back = TokenFile.load(tf.save(tmp_path / "z.mmtok"))
    back.check_tokenizer(tok, "z.mmtok")  # does not raise


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "t.mmtok"
    TokenFile(torch.zeros(2, 2, dtype=torch.long), "image", "image-vq", "a").save(path)
    TokenFile(torch.ones(3, 3, dtype=torch.long), "image", "image-vq", "b").save(path)
    back = TokenFile.load(path)
    assert back.fingerprint == "b" and back.codes.shape == (3, 3)
    assert files_under(tmp_path) == [path]  # no temp file left
    assert (path.stat().st_mode & 0o777) != 0o600, "atomic write must not leave mkstemp's 0600 mode"


def test_failed_save_leaves_no_temp_file(tmp_path):
    (tmp_path / "t.mmtok").mkdir()  # a folder where the file should go: one clear error
    with pytest.raises(MmtokError, match="is a folder"):
        TokenFile(torch.zeros(2, 2, dtype=torch.long), "image", "image-vq", "a").save(tmp_path / "t.mmtok")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("codes", [torch.tensor([[-1, 3]]), torch.tensor([[0.5, 2.0]])], ids=["negative", "float"])
def test_save_refuses_codes_it_cannot_store_exactly(tmp_path, codes):
    """Codes are stored as unsigned integers: -1 would silently become 255, 0.5 become 0."""
    with pytest.raises((MmtokError, ValueError, TypeError)):
        TokenFile(codes, "image", "image-vq", "a").save(tmp_path / "t.mmtok")
    assert files_under(tmp_path) == []


# -- check_tokenizer -----------------------------------------------------------------------
def test_check_tokenizer_wrong_fingerprint(tok, tmp_path):
    other = make_tokenizer("fsq", seed=1)
    codes = other.encode(torch.zeros(1, 3, 8, 8))[0]
    tf = TokenFile.from_codes(other, codes, {"height": 8, "width": 8})
    with pytest.raises(MmtokError) as info:
        tf.check_tokenizer(tok, tmp_path / "a.mmtok")
    message = str(info.value)
    assert "a.mmtok" in message and other.fingerprint in message and tok.fingerprint in message


def test_check_tokenizer_out_of_range(tok):
    tf = TokenFile(torch.tensor([[0, 125]]), "image", tok.kind, tok.fingerprint)
    with pytest.raises(MmtokError, match="b.mmtok.*125"):
        tf.check_tokenizer(tok, "b.mmtok")


# -- malformed files -----------------------------------------------------------------------
def load_error(path) -> str:
    with pytest.raises(MmtokError) as info:
        TokenFile.load(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_load_missing(tmp_path):
    assert "no such" in load_error(tmp_path / "nope.mmtok")


@pytest.mark.parametrize("content", [b"", b"hello world", b"\xff" * 100])
def test_load_not_safetensors(tmp_path, content):
    path = tmp_path / "x.mmtok"
    path.write_bytes(content)
    load_error(path)


def test_load_truncated(tmp_path):
    path = TokenFile(torch.zeros(32, 32, dtype=torch.long), "image", "image-vq", "a").save(tmp_path / "t.mmtok")
    path.write_bytes(path.read_bytes()[:-100])
    load_error(path)


def test_load_other_safetensors_file(tmp_path, tok_dir):
    """A tokenizer's weights file is valid safetensors but not a token file."""
    assert "not an mmtok token file" in load_error(tok_dir / "model.safetensors")


def _write_raw(path, meta, codes=None):
    codes = torch.zeros(2, 2, dtype=torch.uint8) if codes is None else codes
    safetensors.torch.save_file({"codes": codes}, path, metadata=meta)
    return path


GOOD_META = {
    "format": "mmtok-tokens", "version": "1", "modality": "image", "tokenizer": "image-vq",
    "fingerprint": "abc", "grid": "[2, 2]", "original": "{}", "source": "", "tokenizer_path": "",
}


def test_raw_good_meta_loads(tmp_path):
    """Control for the damaged-metadata cases below: the hand-written header is valid."""
    assert TokenFile.load(_write_raw(tmp_path / "t.mmtok", GOOD_META)).fingerprint == "abc"


@pytest.mark.parametrize("version", ["2", "0", "one"])
def test_load_unsupported_version(tmp_path, version):
    assert "version" in load_error(_write_raw(tmp_path / "t.mmtok", {**GOOD_META, "version": version}))


def test_load_no_codes_tensor(tmp_path):
    path = tmp_path / "t.mmtok"
    safetensors.torch.save_file({"ids": torch.zeros(2, 2, dtype=torch.uint8)}, path, metadata=GOOD_META)
    load_error(path)


@pytest.mark.parametrize("damage", ["original_not_json", "original_not_object", "no_fingerprint", "no_modality", "no_tokenizer"])
def test_load_damaged_metadata(tmp_path, damage):
    meta = dict(GOOD_META)
    if damage == "original_not_json":
        meta["original"] = "{height: 3"
    elif damage == "original_not_object":
        meta["original"] = "[1, 2]"
    else:
        meta.pop(damage.removeprefix("no_"))
    load_error(_write_raw(tmp_path / "t.mmtok", meta))


def test_same_codes_give_byte_identical_files(tmp_path):
    """Token files are reproducible: safetensors writes its metadata map in hash order, which
    changes from save to save and process to process; the header must not."""
    codes = torch.arange(12).reshape(3, 4)
    tf = TokenFile(codes, "image", "image-vq", "0123456789abcdef", {"height": 24, "width": 32}, "cat.png", "/models/tok")
    saved = [tf.save(tmp_path / f"{k}.mmtok").read_bytes() for k in range(6)]
    script = ("import sys, torch; from mmtok import TokenFile; TokenFile(torch.arange(12).reshape(3, 4), 'image', 'image-vq', "
              "'0123456789abcdef', {'height': 24, 'width': 32}, 'cat.png', '/models/tok').save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "other.mmtok")], check=True)
    assert all(b == saved[0] for b in saved + [(tmp_path / "other.mmtok").read_bytes()])
    assert torch.equal(TokenFile.load(tmp_path / "0.mmtok").codes, codes)
