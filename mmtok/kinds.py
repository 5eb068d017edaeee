"""Importing this module registers every built-in tokenizer kind: the trained ones and the
pretrained transformers adapters."""

import mmtok.audio  # noqa: F401
import mmtok.image  # noqa: F401
import mmtok.video  # noqa: F401
from mmtok.pretrained.registry import families

families()  # imports each pretrained family's module, which registers its kind
