"""`mmtok.load`: one read of config.json picks the loader.

    mmtok's own schema     -> the kind registry   (`mmtok.configs.KINDS`, key "kind")
    a transformers config  -> the pretrained one  (`mmtok.pretrained.registry`, key "model_type")

(the two schemas: `mmtok.config_json`). An "hf:" spec always names a transformers model: a
hub id, whose config.json is fetched once (the hub is not asked anything else to classify
it), or "hf:/local/folder".
"""

from __future__ import annotations

from pathlib import Path

import mmtok.kinds  # noqa: F401  (registers every built-in kind)
from mmtok.checkpoint import load_tokenizer
from mmtok.config_json import read_config_json, schema_of
from mmtok.pretrained import registry
from mmtok.pretrained.spec import HF_PREFIX
from mmtok.tokenizer import Tokenizer

WHAT = "pass a folder made by save_pretrained (mmtok or transformers), or hf:ORG/NAME"


def load(path: str | Path) -> Tokenizer:
    """Load a tokenizer (`mmtok.load`): a folder written by `save_pretrained` (config.json +
    model.safetensors; strict, no pickle), or a pretrained model from transformers: a hub id
    `hf:facebook/encodec_24khz`, "hf:/local/folder", or a folder saved by transformers (the
    families of `mmtok.pretrained`). Raises MmtokError with the reason."""
    text = str(path)
    if text.startswith(HF_PREFIX):
        return registry.load(text)
    directory = Path(text).expanduser()
    meta = read_config_json(directory, text, WHAT)
    if schema_of(meta) == "mmtok":
        return load_tokenizer(directory, meta)
    return registry.load(text, meta=meta)
