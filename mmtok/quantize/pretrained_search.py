"""The exact chunked search (`mmtok.quantize.nearest`) inside transformers' codec quantizers.

EnCodec, Mimi, DAC and Emu3's VQ-VAE each find nearest codes by materialising the full
distance matrix. `use_exact_search(model)` replaces, on each codebook module instance (the
class is left alone), the one method that does it with a `CodeIndex` search that returns the
same codes (exact argmin, lowest index on ties) in bounded memory:

| module                      | method           | codes compared by                       |
|-----------------------------|------------------|-----------------------------------------|
| EncodecEuclideanCodebook    | quantize(x)      | squared L2 to `embed`                   |
| MimiEuclideanCodebook       | quantize(x)      | squared L2 to `embed` (embed_sum/usage) |
| DacVectorQuantize           | decode_latents(h)| inner product of l2-normalised vectors  |
| Emu3VQVAEVectorQuantizer    | forward(h)       | squared L2 to `embedding.weight`        |
"""

from __future__ import annotations

import types

import torch
from torch import nn
from torch.nn import functional as F

from mmtok.quantize.nearest import cached_index


def _euclidean_quantize(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """EnCodec / Mimi codebook: `[N,D]` -> ids `[N]`."""
    return cached_index(self, self.embed).search(hidden_states)


def _dac_decode_latents(self: nn.Module, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DAC: `[B,D,T]` -> (code vectors `[B,D,T]`, ids `[B,T]`); normalised codes, as DAC's
    factorised codebook (ViT-VQGAN) compares them."""
    b, d, t = hidden_states.shape
    encodings = F.normalize(hidden_states.permute(0, 2, 1).reshape(b * t, d))
    codebook = F.normalize(self.codebook.weight)
    ids = cached_index(self, codebook, "dot").search(encodings).reshape(b, t)
    return self.codebook(ids).transpose(1, 2), ids


def _emu3_forward(self: nn.Module, hidden_state: torch.Tensor) -> torch.Tensor:
    """Emu3 VQ-VAE: `[B,T,C,H,W]` -> ids `[B,T,H,W]`."""
    b, t, c, h, w = hidden_state.shape
    flat = hidden_state.permute(0, 1, 3, 4, 2).reshape(-1, c)
    return cached_index(self, self.embedding.weight).search(flat).reshape(b, t, h, w)


REPLACEMENTS = {
    "EncodecEuclideanCodebook": ("quantize", _euclidean_quantize),
    "MimiEuclideanCodebook": ("quantize", _euclidean_quantize),
    "DacVectorQuantize": ("decode_latents", _dac_decode_latents),
    "Emu3VQVAEVectorQuantizer": ("forward", _emu3_forward),
}


def use_exact_search(model: nn.Module) -> int:
    """Install the exact search on every known codebook module of `model`; returns how many."""
    count = 0
    for module in model.modules():
        replacement = REPLACEMENTS.get(type(module).__name__)
        if replacement is not None:
            name, function = replacement
            setattr(module, name, types.MethodType(function, module))
            count += 1
    return count
