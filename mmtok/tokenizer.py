"""The contract every tokenizer implements, whatever its modality.

A tokenizer is a `torch.nn.Module` built from one frozen dataclass config:

- `encode(x) -> codes`: media in [-1, 1] to integer codes, deterministic, no gradient.
  image `[B,3,H,W]` -> `[B,h,w]`; audio `[B,C,T]` -> `[B,K,t]`; video `[B,3,T,H,W]` -> `[B,t,h,w]`.
- `decode(codes) -> x`: the inverse, same layout and range as `encode`'s input.
- `codebook_sizes`: one size per code stream.
- `save_pretrained(dir)` / `from_pretrained(dir)`: config.json + model.safetensors + README.md.
- `fingerprint`: a hash of config and weights that token files record, so codes are never
  decoded by a tokenizer that did not make them.

Concrete kinds register themselves with `@register_kind` so `mmtok.load` can rebuild them
from `config.json` alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmtok.errors import MmtokError

KINDS: dict[str, type[Tokenizer]] = {}


def register_kind(cls: type[Tokenizer]) -> type[Tokenizer]:
    """Class decorator: make `cls` loadable by its `kind` string."""
    KINDS[cls.kind] = cls
    return cls


def config_to_dict(config: Any) -> dict[str, Any]:
    """A frozen dataclass config as plain JSON-able values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_class: type, values: dict[str, Any], source: str) -> Any:
    """Build `config_class` from JSON values, strictly: unknown keys are an error.

    Lists are turned back into tuples so the frozen dataclass stays hashable.
    """
    known = {f.name for f in dataclasses.fields(config_class)}
    hints = typing.get_type_hints(config_class)
    unknown = sorted(set(values) - known)
    if unknown:
        raise MmtokError(
            f"{source}: unknown config fields {unknown} for {config_class.__name__}; "
            "the file was written by a newer or different mmtok, upgrade mmtok or fix the file"
        )
    fixed = {}
    for key, value in values.items():
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            value = config_from_dict(hints[key], value, source)  # nested config, e.g. quantizer
        fixed[key] = tuple(value) if isinstance(value, list) else value
    try:
        return config_class(**fixed)
    except (TypeError, ValueError) as err:
        raise MmtokError(f"{source}: invalid config for {config_class.__name__}: {err}") from None


class Tokenizer(nn.Module):
    """Base class of every mmtok tokenizer (see module docstring for the contract)."""

    kind: ClassVar[str]
    modality: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self.config = config
        self._fingerprint: str | None = None
        # Where the tokenizer was loaded from (like transformers' name_or_path); token files
        # record it so `mmtok decode` can find the tokenizer without -t.
        self.name_or_path: str = ""

    # -- codes -------------------------------------------------------------------------
    @property
    def codebook_sizes(self) -> list[int]:
        """Number of distinct codes in each code stream (one entry per stream)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @contextlib.contextmanager
    def eval_mode(self):
        """Eval mode inside the block, the previous mode restored after (encode / decode run
        in it, so calling them mid-training leaves training mode on)."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def code_vectors(self) -> list[torch.Tensor]:
        """One `[codebook_size, D]` float tensor per code stream: the latent vector each code
        stands for (used to initialise LLM embeddings from the codebook)."""
        quantizer = getattr(self, "quantizer", None)
        if quantizer is None or not hasattr(quantizer, "code_vectors"):
            raise MmtokError(f"{self.kind} tokenizers do not expose their codebook vectors; use another --init")
        vectors = quantizer.code_vectors()
        return [v.float().cpu() for v in (vectors if isinstance(vectors, list) else [vectors])]

    def token_layout(self, **options: Any):
        """How codes of one item flatten into an LLM id sequence (see `mmtok.layout`)."""
        raise NotImplementedError

    def check_codes(self, codes: torch.Tensor, source: str = "codes") -> None:
        """Raise a clear error if any code is outside this tokenizer's codebook(s)."""
        if codes.dtype.is_floating_point:
            raise MmtokError(f"{source}: codes must be integers, got {codes.dtype}")
        limit = min(self.codebook_sizes)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= limit):
            raise MmtokError(
                f"{source}: codes span [{int(codes.min())}, {int(codes.max())}] but this "
                f"tokenizer's codebook has {limit} entries (0..{limit - 1}); "
                "decode with the tokenizer that made them"
            )

    # -- identity ----------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """sha256 (first 16 hex digits) of kind, config and weights.

        Cached: call `invalidate_fingerprint()` after changing weights (training does).
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(self.kind.encode())
            h.update(json.dumps(config_to_dict(self.config), sort_keys=True).encode())
            for name, tensor in sorted(self.state_dict().items()):
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def invalidate_fingerprint(self) -> None:
        self._fingerprint = None

    def describe(self) -> dict[str, Any]:
        """Facts for `mmtok info`: kind, modality, codebooks, parameter count, fingerprint."""
        return {
            "kind": self.kind,
            "modality": self.modality,
            "codebook_sizes": self.codebook_sizes,
            "parameters": sum(p.numel() for p in self.parameters()),
            "fingerprint": self.fingerprint,
            "config": config_to_dict(self.config),
        }

    # -- persistence -------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, model_card: str | None = None, dtype: torch.dtype | None = None) -> Path:
        """Write config.json + model.safetensors + README.md (see `checkpoint.save_tokenizer`;
        `dtype=torch.float16` stores half-precision weights)."""
        from mmtok.checkpoint import save_tokenizer

        return save_tokenizer(self, Path(directory), model_card, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        import mmtok

        tok = mmtok.load(directory)  # also pretrained transformers codecs (audio/pretrained.py)
        if not isinstance(tok, cls):
            raise MmtokError(f"{directory}: holds a '{tok.kind}' tokenizer, not {cls.__name__}")
        return tok
