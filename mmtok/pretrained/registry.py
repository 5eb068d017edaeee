"""The pretrained families, and the loader behind `mmtok.load` for transformers configs: the
adapter is picked among every family (or the given ones) by `model_type` (`base.load_among`)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmtok.pretrained import FAMILIES
from mmtok.pretrained.base import PretrainedAdapter, load_among

WHAT = "pass a tokenizer folder (saved by mmtok or transformers) or hf:ORG/NAME"


@functools.cache
def _all_families() -> tuple[type[PretrainedAdapter], ...]:
    return tuple(getattr(importlib.import_module(f"mmtok.pretrained.{module}"), name) for module, name in FAMILIES.items())


def families(media_type: str | None = None) -> tuple[type[PretrainedAdapter], ...]:
    """The adapter classes of `FAMILIES` (importing their modules registers their kinds); with
    `media_type`, only those that code it (see `Tokenizer.media_types`)."""
    return tuple(cls for cls in _all_families() if media_type is None or media_type in cls.media_types)


def load(
    spec: str | Path,
    among: Iterable[type[PretrainedAdapter]] | None = None,
    what: str = WHAT,
    unknown: str = "a model mmtok has an adapter for",
    meta: dict[str, Any] | None = None,
) -> PretrainedAdapter:
    """`base.load_among` the adapter classes `among` (default: every family)."""
    return load_among(spec, families() if among is None else among, what, unknown, meta)
