"""Tokenizer configs and kinds: the registry `@register_kind` fills (kind string -> class),
configs <-> JSON values, and building a tokenizer from a config that may be damaged.

A kind registers itself when its module is imported; `mmtok.kinds` imports every built-in
one (`mmtok.load` does that). Configs are frozen dataclasses; `config_from_dict` checks every
value against its field's type hint and `build_checked` refuses a config that would allocate
more than `MAX_PARAMETERS` numbers, before allocating them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import TYPE_CHECKING, Any

import torch

from mmtok.errors import MmtokError, first_line

if TYPE_CHECKING:
    from mmtok.tokenizer import Tokenizer

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
