"""`config.json`, the file every tokenizer folder starts with, and its two schemas.

- mmtok's own, written by `mmtok.checkpoint.save_tokenizer`:

      {"format_version": 1, "kind": "image-vq", "modality": "image", "fingerprint": "...", "config": {...}}

  rebuilt through the kind registry (`mmtok.configs.KINDS`, keyed on "kind");
- a transformers config, written by transformers' `save_pretrained`:

      {"model_type": "encodec", "sampling_rate": 24000, ...}

  loaded by a pretrained adapter (`mmtok.pretrained`, keyed on "model_type").

`format_version` marks mmtok's schema: a config that has it is mmtok's, whatever else it
holds. One without it but with a `model_type` is a transformers config. One with neither is
a damaged mmtok config (its loader then says that format_version is missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from mmtok.errors import MmtokError
from mmtok.files import read_json

CONFIG_NAME = "config.json"
PIPELINE_INDEX = "model_index.json"  # a diffusers pipeline: one subfolder per model
Schema = Literal["mmtok", "transformers"]


def schema_of(meta: dict[str, Any]) -> Schema:
    """Which of the two schemas the parsed config.json `meta` follows (see the module docstring)."""
    return "transformers" if "format_version" not in meta and "model_type" in meta else "mmtok"


def read_config_json(directory: Path, spec: str, what: str) -> dict[str, Any]:
    """The parsed `directory/config.json`, a JSON object, in either schema.

    Errors are one MmtokError line: a missing folder or file names `spec` (what the user
    typed), an unreadable, invalid or non-object file names the file; `what` says what to
    pass instead (e.g. "pass a folder made by save_pretrained").
    """
    if not directory.is_dir():
        raise MmtokError(f"{spec}: no such folder; {what}")
    path = directory / CONFIG_NAME
    if not path.exists():
        if (directory / PIPELINE_INDEX).is_file():  # its models are in subfolders (zai-org/GLM-Image's layout)
            raise MmtokError(f"{spec}: a diffusers pipeline folder ({PIPELINE_INDEX}), no {CONFIG_NAME}; pass its subfolder that holds the "
                             "transformers model (GLM-Image: vision_language_encoder)")
        raise MmtokError(f"{spec}: missing {CONFIG_NAME}; {what}")
    meta = read_json(path, "not valid JSON", "re-download or re-save the tokenizer")
    if not isinstance(meta, dict):
        raise MmtokError(f"{path}: expected a JSON object (mmtok's format_version, kind and config, or a transformers model_type); {what}")
    return meta
