"""The `.mmtok` token file: codes plus what is needed to decode them safely.

A safetensors file (no pickle, readable from any language) holding one tensor, `codes`, in
the smallest unsigned dtype that fits the codebook, and string metadata:

    format          "mmtok-tokens"
    version         format version (int as string)
    modality        "image" | "audio" | "video"
    tokenizer       tokenizer kind, e.g. "image-vq"
    fingerprint     the tokenizer's fingerprint; decoding checks it
    grid            code grid shape, JSON list
    original        modality facts needed to restore the input, JSON object
                    (image: {"height", "width"}; audio: {"sample_rate", "length", ...})
    source          name of the file the codes came from (informational)
    tokenizer_path  where the tokenizer was loaded from, a hint for decoding without -t
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from mmtok.errors import MmtokError
from mmtok.files import atomic_write
from mmtok.tokenizer import Tokenizer

TOKENS_FORMAT = "mmtok-tokens"
TOKENS_VERSION = 1
SUFFIX = ".mmtok"


def smallest_dtype(max_code: int) -> torch.dtype:
    """Smallest unsigned integer dtype holding codes `0..max_code` (int32/64 beyond 16 bits:
    safetensors has no uint32 in older torch)."""
    if max_code < 2**8:
        return torch.uint8
    if max_code < 2**16:
        return torch.uint16
    return torch.int32 if max_code < 2**31 else torch.int64


def code_range(codes: torch.Tensor, chunk: int = 1 << 22) -> tuple[int, int]:
    """(min, max) of integer codes, computed in chunks: torch has no min / max kernels for
    uint16, and widening a whole hour of video codes at once would take GBs."""
    if not codes.numel():
        return 0, 0
    flat = codes.reshape(-1)
    low, high = None, None
    for i in range(0, flat.numel(), chunk):
        part = flat[i : i + chunk].to(torch.int64)
        low = int(part.min()) if low is None else min(low, int(part.min()))
        high = int(part.max()) if high is None else max(high, int(part.max()))
    return low, high


@dataclass
class TokenFile:
    """Codes of one media item and the facts needed to decode them."""

    codes: torch.Tensor                # per-item layout, e.g. image [h,w], audio [K,t], video [t,h,w]
    modality: str
    tokenizer: str
    fingerprint: str
    original: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    tokenizer_path: str = ""

    @classmethod
    def from_codes(cls, tok: Tokenizer, codes: torch.Tensor, original: dict[str, Any], source: str = "") -> TokenFile:
        return cls(codes.cpu(), tok.modality, tok.kind, tok.fingerprint, original, source, tok.name_or_path)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename)."""
        path = Path(path)
        if self.codes.dtype.is_floating_point:
            raise MmtokError(f"{path}: codes must be non-negative integers, got {self.codes.dtype}")
        min_code, max_code = code_range(self.codes)
        if min_code < 0:
            raise MmtokError(f"{path}: codes must be non-negative integers, got min {min_code}")
        codes = self.codes.to(smallest_dtype(max_code)).contiguous()
        meta = {
            "format": TOKENS_FORMAT,
            "version": str(TOKENS_VERSION),
            "modality": self.modality,
            "tokenizer": self.tokenizer,
            "fingerprint": self.fingerprint,
            "grid": json.dumps(list(self.codes.shape)),
            "original": json.dumps(self.original),
            "source": self.source,
            "tokenizer_path": self.tokenizer_path,
        }
        atomic_write(path, lambda tmp: safetensors.torch.save_file({"codes": codes}, tmp, metadata=meta))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TokenFile:
        """Read a token file; raises MmtokError naming the file for anything malformed."""
        path = Path(path)
        if not path.is_file():
            raise MmtokError(f"{path}: no such token file; check the path")
        try:
            with safetensors.safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != TOKENS_FORMAT or "codes" not in f.keys():
                    raise MmtokError(f"{path}: not an mmtok token file; make one with `mmtok encode`")
                codes = f.get_tensor("codes")
        except MmtokError:
            raise
        except Exception as err:  # safetensors raises several error types for bad headers
            raise MmtokError(f"{path}: unreadable token file ({err}); re-encode the source media") from None
        if meta.get("version") != str(TOKENS_VERSION):
            raise MmtokError(f"{path}: token file version {meta.get('version')} is not supported (expected {TOKENS_VERSION}); re-encode it")
        try:
            original = json.loads(meta.get("original", "{}"))
        except json.JSONDecodeError:
            raise MmtokError(f"{path}: damaged metadata; re-encode the source media") from None
        missing = [k for k in ("modality", "tokenizer", "fingerprint") if not meta.get(k)]
        if missing or not isinstance(original, dict):
            raise MmtokError(f"{path}: damaged metadata (missing {missing}); re-encode the source media")
        return cls(
            codes.long(), meta["modality"], meta["tokenizer"], meta["fingerprint"], original,
            meta.get("source", ""), meta.get("tokenizer_path", ""),
        )

    def check_tokenizer(self, tok: Tokenizer, path: str | Path) -> None:
        """Refuse to decode with a tokenizer other than the one that wrote the codes."""
        if self.fingerprint != tok.fingerprint:
            raise MmtokError(
                f"{path}: codes were made by {self.tokenizer} tokenizer {self.fingerprint}, but the "
                f"given tokenizer is {tok.kind} {tok.fingerprint}; decode with the tokenizer that encoded it"
            )
        tok.check_codes(self.codes, str(path))
