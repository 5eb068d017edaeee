"""Where a transformers-backed tokenizer comes from: "hf:ORG/NAME" (a hub id),
"hf:/local/folder", or a plain local folder. Shared by the pretrained audio and video adapters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmtok.errors import MmtokError

HF_PREFIX = "hf:"


def resolve_spec(spec: str | Path, check_local: Callable[[Path, str], None]) -> tuple[str, str, bool]:
    """`(where to load from, name_or_path to record, is a hub id)` for `spec`.

    `name_or_path` is what token files record so decoding can find the tokenizer again:
    "hf:" + the absolute path for hf:/local specs, the absolute path for plain folders, the
    spec itself for hub ids. `check_local(folder, spec)` raises clear errors for local
    folders before transformers gives its longer ones.
    """
    text = str(spec)
    if text.startswith(HF_PREFIX):
        target = text[len(HF_PREFIX) :]
        local = Path(target).expanduser()
        if target and local.is_dir():
            check_local(local, text)
            return str(local), HF_PREFIX + str(local.resolve()), False
        if not target or target.startswith(("/", ".", "~")) or local.exists():
            raise MmtokError(f"{text}: no such folder; give hf:ORG/NAME for a hub model or hf:/path/to/a/transformers/folder")
        return target, text, True
    directory = Path(text).expanduser()
    check_local(directory, text)
    return str(directory), str(directory.resolve()), False
