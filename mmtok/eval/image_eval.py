"""`mmtok eval` for image tokenizers: measure (`image_measure`) quality, bits, codebook use and
determinism of each tokenizer, side by side with JPEG / WebP at the same bits per pixel and
patch k-means with the same token grid, all on the same files; report (`image_report`) the
sections and every number in `report.results["image"]`.

    evaluate_images({"f8": tok}, files, report, EvalOptions(baselines=("jpeg", "webp", "kmeans")))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmtok.errors import MmtokError
from mmtok.eval.image_measure import measure
from mmtok.eval.image_report import write_image_report
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report


def evaluate_images(tokenizers: Mapping[str, Any], files: Sequence[Path], report: Report, options: EvalOptions) -> None:
    """Measure every tokenizer and the baselines named in `options.baselines` (jpeg, webp,
    kmeans) on `files` at their native size, and fill `report` (see the module docstring)."""
    files = [Path(f) for f in files]
    if not files:
        raise MmtokError("--data: no image files to evaluate; pass image files or folders")
    write_image_report(report, tokenizers, measure(tokenizers, files, options))
