"""The contract every tokenizer implements, whatever its modality.

A tokenizer is a `torch.nn.Module` built from one frozen dataclass config:

- `encode(x) -> codes`: media in [-1, 1] to integer codes, deterministic, no gradient.
  image `[B,3,H,W]` -> `[B,h,w]`; audio `[B,C,T]` -> `[B,K,t]`; video `[B,3,T,H,W]` -> `[B,t,h,w]`.
- `decode(codes) -> x`: the inverse, same layout and range as `encode`'s input. Encode-only
  tokenizers (`can_decode = False`: a pretrained VQ whose decoder was never released, e.g.
  Chameleon's) make codes for LLM input only; their `decode` raises one MmtokError line,
  and mmtok's decode paths call `require_decoder` before reading anything.
- `codebook_sizes`: one size per code stream.
- `media_types` (its `modality` first) and `token_layout(media_type=...)`: what it codes and
  how the codes of one item of each media type become a flat id sequence for an LLM (see
  `mmtok.layout`); `for_media(media_type)` is what codes a second media type (Emu3's images,
  as one-frame videos).
- `save_pretrained(dir)` / `from_pretrained(dir)`: config.json + model.safetensors + README.md.
- `fingerprint`: a hash of config and weights that token files record, so codes are never
  decoded by a tokenizer that did not make them.

Concrete kinds register themselves with `@register_kind` so `mmtok.load` can rebuild them
from `config.json` alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmtok.checkpoint import load_tokenizer, save_tokenizer
from mmtok.configs import config_to_dict
from mmtok.errors import MmtokError


class Tokenizer(nn.Module):
    """Base class of every mmtok tokenizer (see module docstring for the contract)."""

    kind: ClassVar[str]
    modality: ClassVar[str]  # what its codes are laid out as ("image", "audio" or "video")
    # Every media type it codes, `modality` first: Emu3's VQ-VAE codes video and images (an
    # image as a one-frame video). Defaults to `(modality,)`.
    media_types: ClassVar[tuple[str, ...]] = ()
    config_class: ClassVar[type]
    trainable: ClassVar[bool] = True  # False: loadable, but not a kind for `mmtok train` recipes
    can_decode: ClassVar[bool] = True  # False: encode-only (see the module docstring)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "modality" in vars(cls) and "media_types" not in vars(cls):
            cls.media_types = (cls.modality,)
        if cls.media_types and getattr(cls, "modality", cls.media_types[0]) != cls.media_types[0]:
            raise TypeError(f"{cls.__name__}.media_types {cls.media_types} must start with its modality '{cls.modality}'")

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

    def require_decoder(self, source: str = "") -> None:
        """Raise MmtokError (one line naming `source`) if this tokenizer is encode-only."""
        if not self.can_decode:
            where = source or self.name_or_path or self.kind
            raise MmtokError(
                f"{where}: {self.kind} is encode-only (the model has no decoder): its codes are LLM input and cannot be "
                "turned back into media; decode with a tokenizer that has a decoder"
            )

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

    def code_vectors(self) -> list[torch.Tensor]:
        """One `[codebook_size, D]` float tensor per code stream: the latent vector each code
        stands for (used to initialise LLM embeddings from the codebook). Kinds that hold a
        quantizer override this (`mmtok.quantize.HasQuantizer`, the pretrained image VQs);
        the others refuse."""
        raise MmtokError(f"{self.kind} tokenizers do not expose their codebook vectors; use another --init")

    def token_layout(self, *, media_type: str | None = None, **options: Any):
        """How codes of one item of `media_type` (one of `media_types`; default `modality`)
        flatten into an LLM id sequence: a `mmtok.layout` layout (images `RasterLayout` over
        codes `[h,w]`, video `VideoLayout` over `[t,h,w]`, audio `FrameMajorLayout` over
        `[K,t]`). `options` are the layout choices of the modality's base class (separators,
        levels). The one source of the layouts an LLM vocabulary records
        (`mmtok.llm.streams.make_stream`)."""
        raise NotImplementedError

    def media_type_of(self, media_type: str | None) -> str:
        """`media_type` checked against `media_types` (None: `modality`); MmtokError if not served."""
        media_type = media_type or self.modality
        if media_type not in self.media_types:
            raise MmtokError(f"{self.kind} codes {' and '.join(self.media_types)}, not {media_type}; use a tokenizer that codes {media_type}")
        return media_type

    def for_media(self, media_type: str | None = None):
        """The tokenizer to code `media_type` with: itself for `modality`; a view for another
        of its `media_types` (video tokenizers: `mmtok.video.as_images.FramesAsImages`)."""
        self.media_type_of(media_type)
        return self

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
        return save_tokenizer(self, Path(directory), model_card, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        """The tokenizer saved in `directory`, which must be a `cls`. Kinds are found in the
        registry (`mmtok.configs.KINDS`), which holds every kind whose module is imported:
        `mmtok.Tokenizer` and `mmtok.load` import all built-in ones. Pretrained adapters
        override this to read transformers folders and hf: specs."""
        tok = load_tokenizer(Path(directory))
        if not isinstance(tok, cls):
            raise MmtokError(f"{directory}: holds a '{tok.kind}' tokenizer, not {cls.__name__}")
        return tok
