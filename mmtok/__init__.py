"""mmtok: discrete tokenizers for multimodal LLMs.

    import mmtok
    tok = mmtok.load("tokenizers_trained/mmtok-image-f8")
    codes = tok.encode(x)          # x: [B,3,H,W] in [-1,1] -> codes [B,h,w]
    x2 = tok.decode(codes)         # -> [B,3,8h,8w] in [-1,1]
    tok.save_pretrained("my-tok")
"""

from __future__ import annotations

from pathlib import Path

from mmtok.errors import MmtokError
from mmtok.tokenizer import Tokenizer
from mmtok.tokens_file import TokenFile

__all__ = ["MmtokError", "TokenFile", "Tokenizer", "load"]
__version__ = "0.1.0"


def load(path: str | Path) -> Tokenizer:
    """Load a tokenizer saved with `save_pretrained` (a folder with config.json and
    model.safetensors). Strict, no pickle; raises MmtokError with the reason."""
    from mmtok.checkpoint import load_tokenizer

    return load_tokenizer(Path(path))
