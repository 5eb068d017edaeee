"""Quality and codebook metrics, checked against closed forms and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import sample_image

from mmtok.metrics import bits_per_pixel, codebook_usage, psnr, ssim
from mmtok.media.image import to_model

skimage_metrics = pytest.importorskip("skimage.metrics")


def natural_pair(h: int, w: int, seed: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A natural-ish image in [-1,1] and a noisy copy of it, `[1,3,H,W]` each."""
    x = to_model(sample_image(h, w, seed))[None]
    g = torch.Generator().manual_seed(seed)
    return x, (x + noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)


# -- PSNR ----------------------------------------------------------------------------------
def test_psnr_closed_form():
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.2   # 0.1 on the [0,1] scale: MSE 0.01 -> 20 dB
    y[1] += 0.02  # 0.01 -> 40 dB
    out = psnr(x, y)
    assert out.shape == (2,)
    assert out.tolist() == pytest.approx([20.0, 40.0], abs=1e-3)
    assert psnr(x, y).tolist() == psnr(y, x).tolist()


def test_psnr_identical_is_finite_and_high():
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    value = float(psnr(x, x)[0])
    assert math.isfinite(value) and value >= 90


def test_psnr_matches_skimage():
    x, y = natural_pair(40, 52, seed=1, noise=0.1)
    ref = skimage_metrics.peak_signal_noise_ratio(
        ((x[0] + 1) / 2).double().numpy(), ((y[0] + 1) / 2).double().numpy(), data_range=1
    )
    assert float(psnr(x, y)[0]) == pytest.approx(ref, abs=1e-3)


def test_psnr_clamps_out_of_range():
    """Values outside [-1,1] (unclamped decoder output) are clamped before comparison."""
    x = torch.ones(1, 3, 4, 4)
    assert float(psnr(x, x * 3)[0]) >= 90


# -- SSIM ----------------------------------------------------------------------------------
def skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    return skimage_metrics.structural_similarity(
        ((x + 1) / 2).double().numpy(), ((y + 1) / 2).double().numpy(),
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=0,
    )


@pytest.mark.parametrize(("h", "w", "noise"), [(32, 32, 0.05), (41, 67, 0.2), (24, 90, 0.5)])
def test_ssim_matches_skimage(h, w, noise):
    x, y = natural_pair(h, w, seed=h, noise=noise)
    assert float(ssim(x, y)[0]) == pytest.approx(skimage_ssim(x[0], y[0]), abs=1e-3)


def test_ssim_batch_and_properties():
    pairs = [natural_pair(32, 40, seed=s, noise=n) for s, n in [(1, 0.02), (2, 0.3)]]
    x = torch.cat([p[0] for p in pairs])
    y = torch.cat([p[1] for p in pairs])
    out = ssim(x, y)
    assert out.shape == (2,) and out.dtype == torch.float32
    for i in range(2):
        assert float(out[i]) == pytest.approx(skimage_ssim(x[i], y[i]), abs=1e-3)
    assert float(out[0]) > float(out[1])  # more noise, lower SSIM
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert torch.allclose(ssim(x, y), ssim(y, x), atol=1e-6)


def test_ssim_of_unrelated_images_is_low():
    x = to_model(sample_image(48, 48, seed=1))[None]
    y = to_model(sample_image(48, 48, seed=2))[None]
    assert float(ssim(x, y)[0]) < 0.5


# -- codebook ------------------------------------------------------------------------------
def test_codebook_usage_closed_forms():
    assert codebook_usage(torch.tensor([4, 0, 4, 0])) == pytest.approx({"usage": 0.5, "perplexity": 2.0})
    assert codebook_usage(torch.full((16,), 3)) == pytest.approx({"usage": 1.0, "perplexity": 16.0})
    assert codebook_usage(torch.tensor([0, 9, 0])) == pytest.approx({"usage": 1 / 3, "perplexity": 1.0})
    p = np.array([0.5, 0.25, 0.25])
    expected = math.exp(-(p * np.log(p)).sum())
    assert codebook_usage(torch.tensor([2, 1, 1, 0]))["perplexity"] == pytest.approx(expected)


def test_codebook_usage_empty_histogram():
    out = codebook_usage(torch.zeros(8, dtype=torch.long))
    assert out["usage"] == 0.0 and math.isfinite(out["perplexity"])


def test_bits_per_pixel():
    assert bits_per_pixel(1024, 8) == pytest.approx(10 / 64)
    assert bits_per_pixel(125, 4) == pytest.approx(math.log2(125) / 16)
    assert bits_per_pixel(2**18, 16) == pytest.approx(18 / 256)
