"""Quality and codebook metrics that training and evaluation share.

Images are float tensors `[B,3,H,W]` in [-1,1] (the tokenizers' range); PSNR and SSIM are
computed on the [0,1] scale, as image-compression papers report them. Audio is `[B,C,T]` in
[-1,1]; SI-SDR is Le Roux et al. 2019's. (The rest of the audio metrics, which need optional
packages, are in `mmtok.eval.audio_metrics`.)
"""

from __future__ import annotations

import math

import torch


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB, `[B]`; inputs `[B,C,H,W]` in [-1,1]."""
    mse = ((x.clamp(-1, 1) - y.clamp(-1, 1)) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM `[B]` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
    K1=0.01, K2=0.03, mean over channels and valid positions); inputs in [-1,1].

    The Gaussian is applied as two 1-D passes of shifted slices in float64: the same numbers
    as an 11x11 depthwise conv2d, ~10x faster on CPU, which has no fast float64 depthwise
    kernel (it matters for video: every frame is scored)."""
    x = (x.clamp(-1, 1).double() + 1) / 2
    y = (y.clamp(-1, 1).double() + 1) / 2
    g = _gaussian_1d()
    k = g.shape[0]

    def blur(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape[-2:]
        rows = sum(g[i] * t[..., i : h - k + 1 + i, :] for i in range(k))
        return sum(g[i] * rows[..., i : w - k + 1 + i] for i in range(k))

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()


# MS-SSIM's five scales halve the image four times and each needs a whole 11-pixel window:
# pytorch-msssim asks for a short side above (11 - 1) * 2**4 = 160 pixels.
MS_SSIM_MIN_SIDE = 161


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM `[B]` (Wang et al. 2003, five scales, the standard weights; via
    pytorch-msssim, on [0,1] in float32: within ~1e-6 of float64, at half the time);
    inputs `[B,3,H,W]` in [-1,1].

    NaN for images whose short side is below `MS_SSIM_MIN_SIDE`: with fewer scales the number
    would be a different metric, so it is reported as not available instead."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return torch.full((x.shape[0],), float("nan"))
    x = (x.clamp(-1, 1).float() + 1) / 2
    y = (y.clamp(-1, 1).float() + 1) / 2
    return _ms_ssim(x, y, data_range=1.0, size_average=False)


def codebook_usage(counts: torch.Tensor) -> dict[str, float]:
    """From a code histogram `[K]`: fraction of codes used, and perplexity (effective codes)."""
    total = counts.sum().clamp_min(1)
    p = counts.double() / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"usage": float((counts > 0).double().mean()), "perplexity": float(entropy.exp())}


def bits_per_pixel(codebook_size: int, downsample: int) -> float:
    """Fixed-rate bits per pixel of a `downsample`x`downsample`-per-code tokenizer."""
    return math.log2(codebook_size) / downsample**2


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-item SI-SDR in dB, `[B]` (channels and time flattened; both zero-meaned)."""
    est = estimate.flatten(1).double()
    ref = reference.flatten(1).double()
    est, ref = est - est.mean(1, keepdim=True), ref - ref.mean(1, keepdim=True)
    scale = (est * ref).sum(1, keepdim=True) / (ref.pow(2).sum(1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return (10 * torch.log10((target.pow(2).sum(1) + eps) / (noise.pow(2).sum(1) + eps))).float()
