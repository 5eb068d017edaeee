"""Saving and loading tokenizers: `config.json` + `model.safetensors` + `README.md`.

Loading never unpickles (safetensors only), is strict (no missing or unexpected weights)
and checks the format version, so a checkpoint either loads exactly or fails with one
clear line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import safetensors.torch
import torch

from mmtok.config_json import CONFIG_NAME, read_config_json, schema_of
from mmtok.configs import KINDS, build_checked, config_from_dict, config_to_dict
from mmtok.errors import MmtokError
from mmtok.files import replace_directory

if TYPE_CHECKING:  # annotations only: the contract calls this module to save and load itself
    from mmtok.tokenizer import Tokenizer

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".ckpt"}


def default_model_card(tok: Tokenizer) -> str:
    info = tok.describe()
    return (
        f"# mmtok {info['kind']} tokenizer\n\n"
        f"- modality: {info['modality']}\n- codebook sizes: {info['codebook_sizes']}\n"
        f"- parameters: {info['parameters']:,}\n- fingerprint: `{info['fingerprint']}`\n\n"
        "No training data, metrics or licence were recorded for this checkpoint.\n"
    )


def save_tokenizer(
    tok: Tokenizer, directory: Path, model_card: str | None = None, dtype: torch.dtype | None = None,
) -> Path:
    """Write the tokenizer to `directory` atomically (a temp dir renamed into place).

    `dtype` (e.g. torch.float16) stores floating-point weights at that precision, halving a
    shipped file. The in-memory weights are rounded to it first, in place, so the recorded
    fingerprint is the one a later `load` (which casts back to float32) reproduces.
    """
    state = rounded_state(tok, dtype)
    tok.invalidate_fingerprint()  # weights may have changed since the fingerprint was cached

    def fill(tmp: Path) -> None:
        safetensors.torch.save_file(state, tmp / WEIGHTS_NAME, metadata={"kind": tok.kind})
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": tok.kind,
            "modality": tok.modality,
            "fingerprint": tok.fingerprint,
            "config": config_to_dict(tok.config),
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / CARD_NAME).write_text(model_card if model_card is not None else _existing_card(directory, tok))

    return replace_directory(directory, fill)


def rounded_state(module: torch.nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """`module`'s state dict on the CPU, floating-point tensors cast to `dtype` (all kept as
    they are when None). The module's own weights are rounded to `dtype` in place, so its
    fingerprint is the one a later float32 load of this state reproduces."""
    live = module.state_dict()
    state = {k: v.detach().cpu().contiguous() for k, v in live.items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        with torch.no_grad():
            for k, v in live.items():
                v.copy_(state[k])
    return state


def _existing_card(directory: Path, tok: Tokenizer) -> str:
    card = directory / CARD_NAME
    return card.read_text() if card.is_file() else default_model_card(tok)


SAVED_WHAT = "pass a folder made by save_pretrained"


def check_config(meta: dict, path: Path) -> dict:
    """Validate the mmtok schema of a parsed `config.json` (`path`): format version and kind."""
    if schema_of(meta) == "transformers":
        raise MmtokError(f"{path}: a transformers model ({meta['model_type']!r}), not an mmtok checkpoint; load it with mmtok.load")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise MmtokError(
            f"{path}: format_version {version!r} is not supported (this mmtok reads "
            f"{FORMAT_VERSION}); install the mmtok version that wrote it"
        )
    if not isinstance(meta.get("kind"), str) or meta["kind"] not in KINDS:
        raise MmtokError(f"{path}: unknown tokenizer kind {meta.get('kind')!r}; known: {sorted(KINDS)}")
    return meta


def load_tokenizer(directory: Path, meta: dict | None = None) -> Tokenizer:
    """Rebuild a tokenizer from `directory`, strictly, without unpickling anything. `meta`:
    its config.json when the caller has read it already (`mmtok.load` reads it once). Its kind
    must be registered: `mmtok.kinds` registers every built-in one."""
    if meta is None:
        meta = read_config_json(directory, str(directory), SAVED_WHAT)
    check_config(meta, directory / CONFIG_NAME)
    cls = KINDS[meta["kind"]]
    source = str(directory / CONFIG_NAME)
    config = config_from_dict(cls.config_class, meta.get("config", {}), source)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        pickled = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise MmtokError(f"{weights}: missing; the folder holds pickled weights ({pickled[0]}), which mmtok never loads "
                             "(unpickling runs code); convert them to safetensors")
        raise MmtokError(f"{weights}: missing; the checkpoint is incomplete (re-download or re-save it)")
    tok = build_checked(cls, config, source)  # a huge or unbuildable config allocates nothing
    try:
        state = safetensors.torch.load_file(weights)
    except Exception as err:  # safetensors raises several types for corrupt files
        raise MmtokError(f"{weights}: unreadable safetensors file ({err}); re-download or re-save it") from None
    missing, unexpected = _key_mismatch(tok, state)
    if missing or unexpected:
        raise MmtokError(
            f"{weights}: weights do not match the config (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); the checkpoint was edited or is from another version"
        )
    try:
        tok.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise MmtokError(f"{weights}: weights do not match the config ({first})") from None
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise MmtokError(f"{weights}: weight {bad} holds NaN or infinite values; the checkpoint is damaged (re-download or retrain it)")
    tok.eval()
    tok.name_or_path = str(directory.resolve())
    recorded = meta.get("fingerprint")
    if recorded and recorded != tok.fingerprint:
        raise MmtokError(
            f"{directory}: weights fingerprint {tok.fingerprint} differs from the recorded "
            f"{recorded}; the files were modified or mixed from two checkpoints"
        )
    return tok


def _key_mismatch(tok: Tokenizer, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(tok.state_dict())
    return sorted(expected - set(state)), sorted(set(state) - expected)
