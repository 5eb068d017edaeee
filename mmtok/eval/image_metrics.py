"""Image scores on top of the core metrics (`mmtok.metrics`): PSNR, SSIM and MS-SSIM of one
decoded image (`image_scores`: `mmtok eval`'s, and `mmtok compare`'s through the image
`Modality`), and their means and medians over per-image rows (`quality_summary`), the same
for tokenizers and classic codecs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mmtok.media.image import to_model
from mmtok.metrics import ms_ssim, psnr, ssim


def image_scores(original: torch.Tensor, recon: torch.Tensor) -> dict[str, float | None]:
    """PSNR (dB), SSIM and MS-SSIM of a `[3,H,W]` uint8 reconstruction against its original;
    `ms_ssim` is None for images too small for its five scales (`metrics.MS_SSIM_MIN_SIDE`)."""
    x, y = to_model(original)[None], to_model(recon)[None]
    multi = float(ms_ssim(x, y)[0])
    return {"psnr": float(psnr(x, y)[0]), "ssim": float(ssim(x, y)[0]), "ms_ssim": None if math.isnan(multi) else multi}


def quality_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and median of `tokens` (per image; None for a classic codec, whose rows have
    none), `bpp`, `psnr`, `ssim` and `ms_ssim` over per-image rows, in that order (MS-SSIM
    over the images that have one; `ms_ssim_images` says how many; None if none)."""
    out: dict[str, Any] = {}
    for key in ("tokens", "bpp", "psnr", "ssim", "ms_ssim"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[f"{key}_mean"] = statistics.fmean(values) if values else None
        out[f"{key}_median"] = statistics.median(values) if values else None
    out["images"] = len(rows)
    out["ms_ssim_images"] = sum(r.get("ms_ssim") is not None for r in rows)
    return out
