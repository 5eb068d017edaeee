"""Importing this module registers every built-in tokenizer kind."""

import mmtok.image  # noqa: F401
