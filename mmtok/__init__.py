"""mmtok: discrete tokenizers for multimodal LLMs.

    import mmtok
    tok = mmtok.load("tokenizers_trained/mmtok-image-f8")
    codes = tok.encode(x)          # x: [B,3,H,W] in [-1,1] -> codes [B,h,w]
    x2 = tok.decode(codes)         # -> [B,3,8h,8w] in [-1,1]
    tok.save_pretrained("my-tok")

    codec = mmtok.load("tokenizers_trained/mmtok-audio-24k")      # or "hf:facebook/encodec_24khz"
    codes = codec.encode(wave, num_quantizers=4)  # wave: [B,1,T] in [-1,1] at 24 kHz -> [B,4,T/320]
    wave2 = codec.decode(codes, length=T)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmtok.errors import MmtokError
from mmtok.lazy import lazy_names

if TYPE_CHECKING:
    from mmtok.loading import Tokenizer, load
    from mmtok.tokens_file import TokenFile

__all__ = ["MmtokError", "TokenFile", "Tokenizer", "load"]
__version__ = "0.1.0"

# Imported on first use (`mmtok.lazy`). Tokenizer comes through `mmtok.loading`, which
# registers every built-in kind first, so `mmtok.Tokenizer.from_pretrained` knows them all.
__getattr__, __dir__ = lazy_names(__name__, {"load": "mmtok.loading", "Tokenizer": "mmtok.loading", "TokenFile": "mmtok.tokens_file"})
