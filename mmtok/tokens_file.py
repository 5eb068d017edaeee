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

`load` checks all of it against one schema (`ORIGINAL_SCHEMA`) before anything is decoded:
integer codes only (a float or bool tensor is not cast), a non-empty grid equal to the
codes' shape, and the `original` facts of the modality with their types and ranges
(positive sample rates and fps within what mmtok reads, sizes within its input limits), so
a file that lies fails with one line instead of a traceback or a huge allocation.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from mmtok.errors import MmtokError
from mmtok.files import atomic_write
from mmtok.tokenizer import Tokenizer

# The `original` facts each modality records: name -> (type, min, max, required). The limits
# are those mmtok enforces on inputs (media.image / media.audio / media.video).
_MAX_SIDE = 1 << 20
_MAX_SAMPLES = 1 << 40  # ~ 290 days at 44.1 kHz; consistency with the codes is checked on decode
ORIGINAL_SCHEMA: dict[str, dict[str, tuple[type, float, float, bool]]] = {
    "image": {"height": (int, 1, _MAX_SIDE, False), "width": (int, 1, _MAX_SIDE, False)},
    "audio": {
        "sample_rate": (int, 4_000, 384_000, True), "channels": (int, 1, 1024, False),
        "num_samples": (int, 1, _MAX_SAMPLES, True), "codec_samples": (int, 1, _MAX_SAMPLES, True),
    },
    "video": {
        "fps": (float, 1e-3, 1000.0, True), "num_frames": (int, 1, 1 << 31, True), "height": (int, 1, _MAX_SIDE, True),
        "width": (int, 1, _MAX_SIDE, True), "source_fps": (float, 1e-3, 1e6, False),
        "source_height": (int, 1, _MAX_SIDE, False), "source_width": (int, 1, _MAX_SIDE, False),
        "rotation": (int, -360, 360, False),
    },
}

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


def reproducible_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes whose header has sorted keys, so equal codes give equal files.

    safetensors serialises its metadata map in hash order, which changes from save to save;
    token files are compared and deduplicated by their bytes, so the header is rewritten
    canonically (sorted, compact JSON, space-padded to 8 bytes as the format allows). The
    tensor data and its offsets are untouched.
    """
    raw = safetensors.torch.save(tensors, metadata=metadata)
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.dumps(json.loads(raw[8:8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + raw[8 + size:]


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
        data = reproducible_safetensors({"codes": codes}, meta)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
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
            grid = json.loads(meta.get("grid", "null"))
        except (json.JSONDecodeError, RecursionError):
            raise MmtokError(f"{path}: damaged metadata; re-encode the source media") from None
        missing = [k for k in ("modality", "tokenizer", "fingerprint") if not meta.get(k)]
        if missing:
            raise MmtokError(f"{path}: damaged metadata (missing {missing}); re-encode the source media")
        if not isinstance(original, dict):
            raise MmtokError(f"{path}: damaged metadata (\"original\" is not a JSON object); re-encode the source media")
        check_schema(path, meta["modality"], codes, grid, original)
        return cls(
            codes.long(), meta["modality"], meta["tokenizer"], meta["fingerprint"], original,
            meta.get("source", ""), meta.get("tokenizer_path", ""),
        )

    def checked_original(self, source: str | Path) -> dict[str, Any]:
        """`original`, checked against its media type's schema as `load` checks it (a token
        file made in memory, e.g. by `from_codes`, is checked here): what the decoders read."""
        check_schema(Path(source), self.modality, self.codes, None, self.original)
        return self.original

    def check_tokenizer(self, tok: Tokenizer, path: str | Path) -> None:
        if self.modality != tok.modality:
            raise MmtokError(f"{path}: holds {self.modality} codes, but the given tokenizer is a {tok.modality} tokenizer; "
                             "decode with the tokenizer that encoded it")
        """Refuse to decode with a tokenizer other than the one that wrote the codes."""
        if self.fingerprint != tok.fingerprint:
            raise MmtokError(
                f"{path}: codes were made by {self.tokenizer} tokenizer {self.fingerprint}, but the "
                f"given tokenizer is {tok.kind} {tok.fingerprint}; decode with the tokenizer that encoded it"
            )
        tok.check_codes(self.codes, str(path))


def check_schema(path: Path, modality: str, codes: torch.Tensor, grid: Any, original: dict[str, Any]) -> None:
    """Raise MmtokError naming `path` unless the codes and metadata fit the token-file schema
    (see the module docstring)."""
    fix = "re-encode the source media"
    if modality not in ORIGINAL_SCHEMA:
        raise MmtokError(f"{path}: unknown modality {modality!r} (expected one of {sorted(ORIGINAL_SCHEMA)}); {fix}")
    if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dtype == torch.bool:
        raise MmtokError(f"{path}: codes are stored as {codes.dtype}, not integers; the file was not written by mmtok, {fix}")
    if grid is not None and grid != list(codes.shape):
        raise MmtokError(f"{path}: metadata grid {str(grid)[:40]} differs from the codes' shape {list(codes.shape)}; {fix}")
    if codes.numel() == 0:
        raise MmtokError(f"{path}: the code grid {list(codes.shape)} is empty (no codes to decode); {fix}")
    for name, (kind, low, high, required) in ORIGINAL_SCHEMA[modality].items():
        if name not in original:
            if required:
                raise MmtokError(f"{path}: metadata lacks the original {name} of the {modality}; {fix}")
            continue
        value = original[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not math.isfinite(value) or not low <= value <= high:
            wanted = "an integer" if kind is int else "a number"
            raise MmtokError(f"{path}: metadata {name} = {json.dumps(value)[:40]} is not {wanted} in [{low}, {high}]; {fix}")
