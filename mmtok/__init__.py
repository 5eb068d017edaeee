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

from pathlib import Path

from mmtok.errors import MmtokError
from mmtok.tokenizer import Tokenizer
from mmtok.tokens_file import TokenFile

__all__ = ["MmtokError", "TokenFile", "Tokenizer", "load"]
__version__ = "0.1.0"


def load(path: str | Path) -> Tokenizer:
    """Load a tokenizer: a folder written by `save_pretrained` (config.json +
    model.safetensors; strict, no pickle), or a pretrained model from transformers: a hub id
    `hf:facebook/encodec_24khz` or a folder saved by transformers (audio: EnCodec, DAC, Mimi;
    image + video: Emu3's VQ-VAE, `mmtok.pretrained.emu3`, e.g. `hf:BAAI/Emu3-Gen-hf`). Raises
    MmtokError with the reason.

    config.json is read once and picks the loader: mmtok's own schema by its "kind", a
    transformers config by its "model_type" (`mmtok.loading`).
    """
    from mmtok.loading import load_any

    return load_any(path)
