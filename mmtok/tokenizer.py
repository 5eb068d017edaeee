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
import dataclasses
import hashlib
import json
import math
import types
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


# Largest value any integer config field may hold, and the most parameters a config may
# describe: a config.json or recipe beyond them is refused before a tensor is allocated.
MAX_CONFIG_INT = 2**31 - 1
MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32


def config_from_dict(config_class: type, values: dict[str, Any], source: str) -> Any:
    """Build `config_class` from JSON values, strictly: unknown keys are an error, and each
    value must have its field's type (int, finite float, bool, str, tuple, nested config),
    numbers must be non-negative and at most `MAX_CONFIG_INT`.

    Lists are turned back into tuples so the frozen dataclass stays hashable.
    """
    if not isinstance(values, dict):
        raise MmtokError(f"{source}: {config_class.__name__} must be a mapping of fields, got {_json_type(values)}; fix the file")
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
        if dataclasses.is_dataclass(hints[key]):
            value = config_from_dict(hints[key], value, source)  # nested config, e.g. quantizer
        else:
            problem = _type_problem(hints[key], value)
            if problem:
                raise MmtokError(f"{source}: {config_class.__name__}.{key} = {json.dumps(value)[:40]} is invalid ({problem}); fix the file")
        fixed[key] = tuple(value) if isinstance(value, list) else value
    try:
        return config_class(**fixed)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as err:
        raise MmtokError(f"{source}: invalid config for {config_class.__name__}: {err}") from None


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _type_problem(hint: Any, value: Any) -> str | None:
    """Why `value` (parsed JSON / YAML) does not fit the type `hint`, or None when it does."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(a, value) for a in args]
        return None if any(p is None for p in problems) else problems[0]
    if hint is type(None):
        return None if value is None else "expected null"
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {_json_type(value)}"
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return f"expected {len(items)} entries, got {len(value)}"
        return next((p for a, v in zip(items, value) if (p := _type_problem(a, v))), None)
    if origin is typing.Literal:
        return None if value in args else f"expected one of {list(args)}"
    if hint is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {_json_type(value)}"
    if hint is str:
        return None if isinstance(value, str) else f"expected a string, got {_json_type(value)}"
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {_json_type(value)}"
        return None if 0 <= value <= MAX_CONFIG_INT else f"must be in 0..{MAX_CONFIG_INT}"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {_json_type(value)}"
        return None if math.isfinite(value) and 0 <= value <= MAX_CONFIG_INT else f"must be finite and in 0..{MAX_CONFIG_INT}"
    return None  # Any and other hints: the config class checks them itself


def build_checked(cls: type[Tokenizer], config: Any, source: str) -> Tokenizer:
    """`cls(config)`, refusing (one MmtokError naming `source`) a config that cannot be built
    or whose tensors would hold more than `MAX_PARAMETERS` numbers in all. A dry run first
    makes every tensor the constructor asks for on the meta device (no memory), counting;
    the real build counts again (a constructor that needs real values, where the dry run
    cannot finish, is still stopped before its allocations pass the limit). So a damaged
    config.json or recipe never starts a huge allocation."""
    try:
        with _AllocationBudget(MAX_PARAMETERS, source, dry=True):
            cls(config)
    except MmtokError:
        raise
    except Exception:  # noqa: S110 -- e.g. .item() of a meta tensor: the real build decides
        pass
    try:
        with _AllocationBudget(MAX_PARAMETERS, source):
            return cls(config)
    except MmtokError:
        raise
    except Exception as err:
        from mmtok.errors import first_line

        raise MmtokError(f"{source}: the config does not describe a buildable {cls.kind} model ({first_line(err, 120)}); fix the file") from None


class _AllocationBudget(torch.overrides.TorchFunctionMode):
    """Counts the elements of tensors made by factory functions; raises past `limit`. With
    `dry`, they are made on the meta device (shapes only)."""

    FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn, torch.full, torch.randint, torch.eye, torch.arange}

    def __init__(self, limit: int, source: str, dry: bool = False):
        super().__init__()
        self.limit, self.source, self.total, self.dry = limit, source, 0, dry

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FACTORIES:
            self.total += _requested_numel(func, args, kwargs)
            if self.total > self.limit:
                raise MmtokError(f"{self.source}: the config describes more than {self.limit:,} weights; the file is damaged or not for mmtok")
            if self.dry:
                kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


def _requested_numel(func, args: tuple, kwargs: dict) -> int:
    """Elements a factory call asks for: `empty(2, 3)`, `zeros((2, 3))`, `full((2, 3), v)`,
    `randint(low, high, (2, 3))`, `eye(n, m)`."""
    shape_types = (tuple, list, torch.Size)
    if func is torch.arange:  # arange(end) / arange(start, end[, step])
        numbers = [float(a) for a in args if isinstance(a, (int, float))]
        start, end, step = (0.0, numbers[0], 1.0) if len(numbers) == 1 else (*numbers[:2], numbers[2] if len(numbers) > 2 else 1.0)
        return max(0, math.ceil((end - start) / step)) if step and math.isfinite(end - start) else 0
    if func is torch.eye:
        n = args[0] if args else kwargs.get("n", 0)
        m = args[1] if len(args) > 1 and isinstance(args[1], int) else kwargs.get("m", n)
        return int(n) * int(m)
    if "size" in kwargs:
        size = kwargs["size"]
    elif func in (torch.randint, torch.full):
        size = next((a for a in args if isinstance(a, shape_types)), ())
    elif args and isinstance(args[0], shape_types):
        size = args[0]
    else:
        size = args
    size = (size,) if isinstance(size, int) else size
    return math.prod(int(s) for s in size) if all(isinstance(s, int) for s in size) else 0


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
        from mmtok.checkpoint import save_tokenizer

        return save_tokenizer(self, Path(directory), model_card, dtype)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        import mmtok

        tok = mmtok.load(directory)  # also pretrained transformers models (mmtok.pretrained)
        if not isinstance(tok, cls):
            raise MmtokError(f"{directory}: holds a '{tok.kind}' tokenizer, not {cls.__name__}")
        return tok
