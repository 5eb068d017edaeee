"""The shipped image tokenizer loads strictly and still reconstructs the demo photos (all
from sources held out of its training) at the quality its model card reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mmtok
from mmtok.eval.metrics import psnr, ssim
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
