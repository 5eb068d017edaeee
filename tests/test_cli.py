"""The `mmtok` command line through the real console script (subprocess): encode / decode
round trips, `info`, and user errors (one `error:` line naming the file, exit != 0, no
output left behind)."""

from __future__ import annotations

import json
import shutil

import pytest
import safetensors.torch
import torch
from conftest import assert_cli_error, files_under, run_mmtok, sample_image, write_image

import mmtok
from mmtok import TokenFile
from mmtok.metrics import psnr
from mmtok.media.image import from_model, read_image, to_model

SIZES = {"a": (40, 48), "b": (40, 48), "c": (40, 48), "odd": (37, 53), "sub/d": (29, 30)}


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, tok_dir, image_folder):
    """`mmtok encode` of the sample folder, run once for the module."""
    out = tmp_path_factory.mktemp("cli") / "tokens"
    result = ok(run_mmtok("encode", image_folder, "-t", tok_dir, "-o", out))
    assert "wrote 5 token file(s)" in result.stdout
    return out


def test_encode_folder(encoded, tok_dir, image_folder):
    assert sorted(str(p.relative_to(encoded)) for p in files_under(encoded)) == sorted(f"{n}.mmtok" for n in SIZES)
    tok = mmtok.load(tok_dir)
    for name, (h, w) in SIZES.items():
        tf = TokenFile.load(encoded / f"{name}.mmtok")
        assert tf.original == {"height": h, "width": w}
        assert tf.codes.shape == tok.grid_shape(h, w)
        assert tf.fingerprint == tok.fingerprint
        assert tf.tokenizer_path == str(tok_dir.resolve())


def test_decode_folder_restores_sizes_and_compare(encoded, tok_dir, image_folder, tmp_path):
    out = tmp_path / "recon"
    result = ok(run_mmtok("decode", encoded, "-t", tok_dir, "-o", out))
    assert "wrote 5 image file(s)" in result.stdout
    tok = mmtok.load(tok_dir)
    expected_psnr = {}
    for name, (h, w) in SIZES.items():
        image = read_image(out / f"{name}.png")
        assert image.shape == (3, h, w)
        codes = TokenFile.load(encoded / f"{name}.mmtok").codes
        assert torch.equal(image, from_model(tok.decode(codes[None], (h, w))[0]))
        original = next(image_folder.glob(f"{name}.*"))
        expected_psnr[original.name] = float(psnr(to_model(read_image(original))[None], to_model(image)[None])[0])
    # `mmtok compare` pairs originals (c.jpg) with reconstructions (c.png) by relative name.
    report = ok(run_mmtok("compare", image_folder, out)).stdout
    rows = {line.split()[0]: float(line.split("PSNR")[1].split()[0]) for line in report.splitlines() if "PSNR" in line}
    assert "mean" in rows and len(rows) == 6
    for name, value in expected_psnr.items():
        assert rows[name] == pytest.approx(value, abs=0.01), name


def test_single_file_roundtrip_with_recorded_tokenizer(tok_dir, image_folder, tmp_path):
    """Encode one file to a named .mmtok, then decode it without -t (the tokenizer path
    recorded in the file) into a folder as JPEG, at the original size."""
    ok(run_mmtok("encode", image_folder / "odd.png", "-t", tok_dir, "-o", tmp_path / "odd.mmtok"))
    assert files_under(tmp_path) == [tmp_path / "odd.mmtok"]
    ok(run_mmtok("decode", tmp_path / "odd.mmtok", "-o", tmp_path / "recon", "--format", "jpg"))
    assert files_under(tmp_path / "recon") == [tmp_path / "recon" / "odd.jpg"]
    assert read_image(tmp_path / "recon" / "odd.jpg").shape == (3, 37, 53)


def test_info_tokenizer(tok_dir):
    facts = json.loads(ok(run_mmtok("info", tok_dir, "--json")).stdout)
    tok = mmtok.load(tok_dir)
    assert facts["kind"] == "image-vq" and facts["modality"] == "image"
    assert facts["codebook_sizes"] == [125] and facts["downsample"] == 4
    assert facts["fingerprint"] == tok.fingerprint
    assert facts["parameters"] == sum(p.numel() for p in tok.parameters())
    assert facts["config"]["quantizer"]["fsq_levels"] == [5, 5, 5]


def test_info_token_file(encoded, tok_dir):
    text = ok(run_mmtok("info", encoded / "odd.mmtok")).stdout
    assert "fingerprint" in text and mmtok.load(tok_dir).fingerprint in text
    facts = json.loads(ok(run_mmtok("info", encoded / "odd.mmtok", "--json")).stdout)
    assert facts["grid"] == [10, 14] and facts["tokens"] == 140
    assert facts["original"] == {"height": 37, "width": 53}
    assert facts["fingerprint"] == mmtok.load(tok_dir).fingerprint
    assert facts["source"] == "odd.png" and facts["modality"] == "image"


# -- errors --------------------------------------------------------------------------------
def test_wrong_tokenizer(encoded, other_tok_dir, tmp_path):
    result = run_mmtok("decode", encoded, "-t", other_tok_dir, "-o", tmp_path / "recon")
    line = assert_cli_error(result, ".mmtok", mmtok.load(other_tok_dir).fingerprint)
    assert "fingerprint" in line or "tokenizer" in line
    assert files_under(tmp_path) == []


def test_out_of_range_codes(tok_dir, tmp_path):
    tok = mmtok.load(tok_dir)
    codes = torch.zeros(3, 3, dtype=torch.long)
    codes[1, 2] = 200  # codebook has 125 entries
    TokenFile(codes, "image", tok.kind, tok.fingerprint, {"height": 12, "width": 12}).save(tmp_path / "bad.mmtok")
    result = run_mmtok("decode", tmp_path / "bad.mmtok", "-t", tok_dir, "-o", tmp_path / "out")
    assert_cli_error(result, "bad.mmtok", "200")
    assert files_under(tmp_path / "out") == []


def test_missing_input(tok_dir, tmp_path):
    result = run_mmtok("encode", tmp_path / "missing.png", "-t", tok_dir, "-o", tmp_path / "out")
    assert_cli_error(result, "missing.png")
    assert not (tmp_path / "out").exists()


def test_empty_folder(tok_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_mmtok("encode", tmp_path / "empty", "-t", tok_dir, "-o", tmp_path / "out")
    assert_cli_error(result, "empty")
    assert not (tmp_path / "out").exists()


def test_corrupt_image_in_folder(tok_dir, image_folder, tmp_path):
    """Truncated (header fine, data cut) and the largest, so it is encoded after the others
    were written: they must be rolled back."""
    src = tmp_path / "src"
    shutil.copytree(image_folder, src)
    bad = write_image(src / "broken.png", sample_image(64, 64, seed=11))
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    result = run_mmtok("encode", src, "-t", tok_dir, "-o", tmp_path / "out", "--batch-size", "1")
    assert_cli_error(result, "broken.png")
    assert files_under(tmp_path / "out") == []


def test_decode_without_t_when_tokenizer_gone(tok_dir, tmp_path):
    tok = mmtok.load(tok_dir)
    TokenFile(torch.zeros(2, 2, dtype=torch.long), "image", tok.kind, tok.fingerprint, {"height": 8, "width": 8},
              tokenizer_path=str(tmp_path / "moved-away")).save(tmp_path / "t.mmtok")
    result = run_mmtok("decode", tmp_path / "t.mmtok", "-o", tmp_path / "out")
    assert_cli_error(result, "t.mmtok", "-t")
    assert files_under(tmp_path / "out") == []


def test_damaged_token_file(tmp_path):
    """A token file whose metadata lost a field (fingerprint): one `error:` line, no traceback."""
    meta = {"format": "mmtok-tokens", "version": "1", "modality": "image", "tokenizer": "image-vq", "original": "{}"}
    safetensors.torch.save_file({"codes": torch.zeros(2, 2, dtype=torch.uint8)}, tmp_path / "damaged.mmtok", metadata=meta)
    assert_cli_error(run_mmtok("info", tmp_path / "damaged.mmtok"), "damaged.mmtok")
