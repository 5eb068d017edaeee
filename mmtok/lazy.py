"""Packages whose public names are imported on first use (PEP 562), not at import time.

Importing any `mmtok.x` module first runs `mmtok/__init__.py` (and `mmtok.llm.options` runs
`mmtok/llm/__init__.py`): if those imported torch, `mmtok --help` would wait seconds for it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_names(package: str, where: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, which exports each name of `where` (name ->
    the module defining it); the module is imported when the name is first looked up."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
