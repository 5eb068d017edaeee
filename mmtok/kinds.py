"""Importing this module registers every built-in tokenizer kind."""

import mmtok.audio  # noqa: F401
import mmtok.image  # noqa: F401
import mmtok.video  # noqa: F401
