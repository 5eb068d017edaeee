"""A tokenizer stored inside a bigger checkpoint: Emu3's VQ-VAE as `vqmodel.*` beside the LLM
of a full Emu3 model (hf:BAAI/Emu3-Gen-hf); GLM-Image's vision encoder and VQ as
`model.visual.*` and `model.vqmodel.*`. Only the safetensors files that hold the tokenizer's
tensors are read (and, for a hub id, downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from mmtok.errors import MmtokError
from mmtok.pretrained.spec import Source


def load_submodel(
    source: Source, model_class: type, hf_config: Any, prefixes: tuple[str, ...], parts: tuple[str, ...] = ("",)
) -> tuple[nn.Module, list[str]]:
    """`model_class(hf_config)` with the tensors of `source` whose names are one of `prefixes`
    followed by one of `parts` (the prefix removed, the part kept: prefixes ("model.", "") and
    parts ("visual.", "vqmodel.") read `model.visual.x` as `visual.x`, and leave
    `model.language_model.*` alone). Returns the model and the names of tensors it lacks;
    raises MmtokError when the checkpoint holds none, or tensors the model has no place for.
    (Other errors are the caller's to report.)"""
    from safetensors import safe_open
    from transformers.utils import cached_file

    where, spec, subfolder = source.where, source.spec, source.subfolder
    index = cached_file(where, "model.safetensors.index.json", subfolder=subfolder, _raise_exceptions_for_missing_entries=False)
    if index is not None:
        weight_map = json.loads(Path(index).read_text())["weight_map"]
    else:
        single = cached_file(where, "model.safetensors", subfolder=subfolder, _raise_exceptions_for_missing_entries=False)
        if single is None:
            raise MmtokError(f"{spec}: no model.safetensors(.index.json) found; only safetensors checkpoints are read")
        with safe_open(single, "pt") as f:
            weight_map = dict.fromkeys(f.keys(), "model.safetensors")
    starts = tuple(prefix + part for prefix in prefixes for part in parts)
    wanted = {key: shard for key, shard in weight_map.items() if key.startswith(starts)}
    if not wanted:
        raise MmtokError(f"{spec}: this checkpoint holds no {starts[0].rstrip('.')} tensors (keys starting with {list(starts)})")
    state = {}
    for shard in sorted(set(wanted.values())):
        with safe_open(cached_file(where, shard, subfolder=subfolder), "pt") as f:
            for key in (k for k, s in wanted.items() if s == shard):
                prefix = next(p for p in prefixes if key.startswith(tuple(p + part for part in parts)))
                state[key[len(prefix) :]] = f.get_tensor(key)
    model = model_class(hf_config)
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        unexpected = sorted(result.unexpected_keys)
        raise MmtokError(
            f"{spec}: the {starts[0].rstrip('.')} weights have {len(unexpected)} tensors this {model_class.__name__} lacks "
            f"({unexpected[:3]}); the checkpoint is from another version"
        )
    return model, sorted(result.missing_keys)

