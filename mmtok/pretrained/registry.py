"""The pretrained families by `model_type`, and the one loader behind `mmtok.load` for
transformers configs (and behind the family-restricted loaders such as `load_pretrained`)."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmtok.config_json import CONFIG_NAME
from mmtok.errors import MmtokError
from mmtok.pretrained import FAMILIES
from mmtok.pretrained.base import PretrainedAdapter
from mmtok.pretrained.spec import read_transformers_config, resolve_spec

WHAT = "pass a tokenizer folder (saved by mmtok or transformers) or hf:ORG/NAME"


@functools.cache
def _all_families() -> tuple[type[PretrainedAdapter], ...]:
    return tuple(getattr(importlib.import_module(f"mmtok.pretrained.{module}"), name) for module, name in FAMILIES.items())


def families(media_type: str | None = None) -> tuple[type[PretrainedAdapter], ...]:
    """The adapter classes of `FAMILIES` (importing their modules registers their kinds); with
    `media_type`, only those that code it (see `Tokenizer.media_types`)."""
    return tuple(cls for cls in _all_families() if media_type is None or media_type in cls.media_types)


def by_model_type(classes: Iterable[type[PretrainedAdapter]]) -> dict[str, type[PretrainedAdapter]]:
    """`model_type` -> adapter, for every model_type the `classes` load or refuse."""
    table: dict[str, type[PretrainedAdapter]] = {}
    for cls in classes:
        for model_type in (*cls.model_types, *cls.refused):
            if table.get(model_type, cls) is not cls:  # two families cannot both claim one model_type
                raise RuntimeError(f"model_type {model_type!r} is claimed by {table[model_type].__name__} and {cls.__name__}")
            table[model_type] = cls
    return table


def load(
    spec: str | Path,
    among: Iterable[type[PretrainedAdapter]] | None = None,
    what: str = WHAT,
    unknown: str = "a model mmtok has an adapter for",
    meta: dict[str, Any] | None = None,
) -> PretrainedAdapter:
    """Load the transformers model `spec` names ("hf:ORG/NAME", "hf:/folder" or a folder) with
    the adapter its config.json's `model_type` picks, `among` the given adapter classes
    (default: every family). `meta`: that config.json when the caller has read it already
    (a local folder). Errors are one MmtokError line; `what` says what to pass instead and
    `unknown` names what the model_type should have been ("a supported audio codec")."""
    source = resolve_spec(spec)
    if meta is None:
        meta, named = read_transformers_config(source, what)
    else:
        named = str(Path(source.where) / CONFIG_NAME)
    table = by_model_type(families() if among is None else among)
    model_type = meta["model_type"]
    cls = table.get(model_type) if isinstance(model_type, str) else None
    if cls is None:
        loadable = sorted(t for t, c in table.items() if t not in c.refused)
        raise MmtokError(f"{named}: model_type {model_type!r} is not {unknown} (known: {loadable}); {what}")
    if model_type in cls.refused:
        raise MmtokError(f"{source.spec}: {cls.refused[model_type]}")
    return cls.load_from(source, meta)
