"""The shipped image tokenizer loads strictly and still reconstructs the demo photos (all
from sources held out of its training) at the quality its model card reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mmtok
from mmtok.metrics import psnr, ssim
from mmtok.image.files import decode_image, encode_image
from mmtok.media.image import read_image, to_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tokenizers_trained" / "mmtok-image-f8"
SAMPLES = sorted((ROOT / "tests" / "media" / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def tok():
    return mmtok.load(SHIPPED)


def test_shipped_folder_is_complete(tok):
    meta = json.loads((SHIPPED / "config.json").read_text())
    assert meta["fingerprint"] == tok.fingerprint
    assert tok.codebook_sizes == [4375] and tok.downsample == 8
    assert (SHIPPED / "recipe.yaml").is_file() and "licence" in (SHIPPED / "README.md").read_text()
    assert (SHIPPED / "model.safetensors").stat().st_size < 8 * 2**20  # "a few MB"


def recorded(name: str) -> dict[str, dict]:
    """Per-image figures the model card's benchmark recorded, per method, for one held-out file."""
    results = json.loads((SHIPPED / "heldout_results.json").read_text())
    return {
        method: next(row for row in data["per_image"] if row["name"] == name)
        for method, data in results["methods"].items()
    }


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_reconstructs_unseen_photos(tok, path):
    """The samples are byte-identical copies of held-out corpus files
    (`skimage_<name>_full.jpg`): the CLI's pipeline must reproduce the benchmark's figures,
    which beat the k-means baseline on each of them."""
    image = read_image(path)
    tokens = encode_image(tok, image)
    assert tuple(tokens.codes.shape) == tok.grid_shape(*image.shape[-2:])
    recon = decode_image(tok, tokens)
    assert recon.shape == image.shape and recon.dtype == torch.uint8
    x, y = to_model(image)[None], to_model(recon)[None]
    figures = recorded(f"skimage_{path.stem}_full.jpg")
    ours, baseline = figures["mmtok-image-f8"], figures["patch k-means"]
    assert float(psnr(x, y)) == pytest.approx(ours["psnr"], abs=0.05)
    assert float(ssim(x, y)) == pytest.approx(ours["ssim"], abs=0.005)
    assert ours["psnr"] > baseline["psnr"] + 0.5 and ours["ssim"] > baseline["ssim"]


F16 = ROOT / "tokenizers_trained" / "mmtok-image-f16"


def f16_report_rows() -> dict[str, dict]:
    """Per-image figures of mmtok-image-f16 in its own `mmtok eval` report, by file name."""
    results = json.loads((F16 / "report" / "results.json").read_text())["image"]
    fingerprint = json.loads((F16 / "config.json").read_text())["fingerprint"]
    own = next(t for t in results["tokenizers"].values() if t["fingerprint"] == fingerprint)
    return {row["name"]: row for row in own["per_image"]}


def test_f16_folder_is_complete():
    tok = mmtok.load(F16)
    assert tok.codebook_sizes == [64000] and tok.downsample == 16
    assert tok.grid_shape(256, 256) == (16, 16)  # 256 tokens per 256x256 image
    assert (F16 / "recipe.yaml").is_file() and "licence" in (F16 / "README.md").read_text()
    assert (F16 / "model.safetensors").stat().st_size < 16 * 2**20


@pytest.mark.parametrize("path", [p for p in SAMPLES if f"skimage_{p.stem}_full.jpg" in f16_report_rows()], ids=lambda p: p.stem)
def test_f16_reproduces_its_report_on_unseen_photos(path):
    """The demo photos its report measured (held-out sources): the CLI's pipeline gives the
    report's figures, and f16 at a third of the bits stays within 4 dB of f8 on them."""
    tok = mmtok.load(F16)
    image = read_image(path)
    recon = decode_image(tok, encode_image(tok, image))
    x, y = to_model(image)[None], to_model(recon)[None]
    row = f16_report_rows()[f"skimage_{path.stem}_full.jpg"]
    assert float(psnr(x, y)) == pytest.approx(row["psnr"], abs=0.05)
    assert float(ssim(x, y)) == pytest.approx(row["ssim"], abs=0.005)
    f8 = recorded(f"skimage_{path.stem}_full.jpg")["mmtok-image-f8"]
    assert f8["psnr"] - 4 < row["psnr"] < f8["psnr"]
