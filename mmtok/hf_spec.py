"""Where a transformers-backed tokenizer comes from: "hf:ORG/NAME" (a hub id),
"hf:/local/folder", or a plain local folder. Shared by the pretrained audio and video adapters.

A hub id is only fetched when the hub answers: a first TCP connection with a short timeout
decides, and without one the hub libraries are put in offline mode (the local cache still
serves), so an unreachable hub fails in seconds instead of after a minute of retries."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

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
        go_offline_unless_hub_answers()
        return target, text, True
    directory = Path(text).expanduser()
    check_local(directory, text)
    return str(directory), str(directory.resolve()), False


HUB_PROBE_SECONDS = 3.0


def go_offline_unless_hub_answers(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """True if the hub (HF_ENDPOINT) accepts a connection within `timeout`; otherwise switch
    huggingface_hub / transformers to offline mode (cached files only) and return False."""
    import huggingface_hub.constants as hub

    if hub.is_offline_mode():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)), timeout):
            return True
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"
        hub.HF_HUB_OFFLINE = True
        return False
