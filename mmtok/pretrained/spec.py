"""Where a transformers-backed tokenizer comes from, and its config.json.

A spec is "hf:ORG/NAME" (a hub id), "hf:ORG/NAME/SUBFOLDER" (the model in a subfolder of a
hub repository: a diffusers pipeline such as zai-org/GLM-Image keeps its transformers model in
vision_language_encoder/), "hf:/local/folder", or a plain local folder saved by transformers.
`resolve_spec` says where to load from and what name token files record;
`read_transformers_config` reads the config.json there once (from the hub for a hub id) so
the registry can pick the adapter by its `model_type`; `peek_model_type` classifies a spec
without any network access.

A hub id is only fetched when the hub answers: a first TCP connection with a short timeout
decides, and without one the hub libraries are put in offline mode (the local cache still
serves), so an unreachable hub fails in seconds instead of after a minute of retries.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmtok.config_json import CONFIG_NAME, PIPELINE_INDEX, read_config_json, schema_of
from mmtok.errors import MmtokError, first_line
from mmtok.files import parse_json, sniff_json

HF_PREFIX = "hf:"


@dataclass(frozen=True)
class Source:
    """A resolved spec: `spec` as given (errors name it), `where` transformers loads from (a
    local folder or a hub id) and `subfolder` in it (every transformers loader and `cached_file`
    takes `subfolder=`), `name_or_path` token files record ("hf:" + the absolute path for
    hf:/local specs, the absolute path for plain folders, the spec itself for hub ids)."""

    spec: str
    where: str
    name_or_path: str
    hub: bool
    subfolder: str = ""

    @property
    def advice(self) -> str:
        """What to do when reading from here fails."""
        if self.hub:
            return "check the id and the network (and that HF_HUB_OFFLINE is unset), or download the model and pass its folder"
        return "re-download or re-save the model"


def resolve_spec(spec: str | Path) -> Source:
    """Where `spec` loads from. Raises MmtokError for an "hf:" spec naming no folder and no
    valid hub id; local folders are checked when their config.json is read."""
    text = str(spec)
    if text.startswith(HF_PREFIX):
        target = text[len(HF_PREFIX) :]
        local = Path(target).expanduser()
        if target and local.is_dir():
            return Source(text, str(local), HF_PREFIX + str(local.resolve()), hub=False)
        if not target or target.startswith(("/", ".", "~")) or local.exists():
            raise MmtokError(f"{text}: no such folder; give hf:ORG/NAME for a hub model or hf:/path/to/a/transformers/folder")
        go_offline_unless_hub_answers()
        repo, subfolder = _split_hub_id(target)
        return Source(text, repo, text, hub=True, subfolder=subfolder)
    directory = Path(text).expanduser()
    return Source(text, str(directory), str(directory.resolve()), hub=False)


def read_transformers_config(source: Source, what: str) -> tuple[dict[str, Any], str]:
    """(the parsed config.json of `source`, how errors name it: its path, or the spec for a
    hub id). Refuses an mmtok folder (mmtok's own schema, see `mmtok.config_json`)."""
    if source.hub:
        from transformers.utils import cached_file

        try:
            meta = parse_json(Path(cached_file(source.where, CONFIG_NAME, subfolder=source.subfolder)).read_text())
        except Exception as err:  # hub, file and JSON errors come in many types
            if not source.subfolder and _hub_file(source.where, PIPELINE_INDEX) is not None:
                raise MmtokError(f"{source.spec}: a diffusers pipeline ({PIPELINE_INDEX}), no {CONFIG_NAME}; pass its subfolder that holds the "
                                 f"transformers model, e.g. {source.spec}/vision_language_encoder (GLM-Image)") from None
            raise MmtokError(f"{source.spec}: cannot read the model config ({first_line(err, typed=True)}); {source.advice}") from None
        named = source.spec
        if not isinstance(meta, dict):
            raise MmtokError(f"{named}: its {CONFIG_NAME} is not a JSON object; {what}")
    else:
        meta = read_config_json(Path(source.where), source.spec, what)
        named = str(Path(source.where) / CONFIG_NAME)
    if schema_of(meta) == "mmtok":
        raise MmtokError(f"{source.spec}: is an mmtok tokenizer folder, not a transformers one; load it with mmtok.load")
    return meta, named


def peek_model_type(spec: str | Path) -> str | None:
    """The `model_type` of the transformers config.json `spec` names, without any network
    access: a local folder (plain or "hf:/path"), or a hub id already in the local cache.
    None for anything else (an mmtok folder, no or an unreadable config.json, a hub id not
    cached); the loaders report those properly."""
    text = str(spec)
    target = text[len(HF_PREFIX) :] if text.startswith(HF_PREFIX) else text
    if not target:
        return None
    local = Path(target).expanduser()
    if local.is_dir():
        path = local / CONFIG_NAME
    elif text.startswith(HF_PREFIX) and not target.startswith(("/", ".", "~")):
        from huggingface_hub import try_to_load_from_cache

        repo, subfolder = _split_hub_id(target)
        try:
            found = try_to_load_from_cache(repo, f"{subfolder}/{CONFIG_NAME}" if subfolder else CONFIG_NAME)
        except Exception:  # an invalid repo id
            return None
        if not isinstance(found, str):  # None (not cached) or a cached "does not exist"
            return None
        path = Path(found)
    else:
        return None
    meta = sniff_json(path)  # (a FIFO or a deeply nested file gives None)
    if not isinstance(meta, dict) or schema_of(meta) != "transformers" or not isinstance(meta["model_type"], str):
        return None
    return meta["model_type"]


def _split_hub_id(target: str) -> tuple[str, str]:
    """"ORG/NAME/SUB/FOLDER" -> ("ORG/NAME", "SUB/FOLDER"); "ORG/NAME" -> ("ORG/NAME", "")."""
    parts = target.split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _hub_file(repo: str, filename: str) -> str | None:
    """The local path of `filename` in the hub repository `repo` (fetched if the hub answers), or None."""
    from transformers.utils import cached_file

    try:
        return cached_file(repo, filename, _raise_exceptions_for_missing_entries=False)
    except Exception:  # unreachable hub, invalid id: the caller reports its own error
        return None


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
