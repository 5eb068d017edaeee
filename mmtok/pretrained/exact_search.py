"""The exact chunked search (`mmtok.quantize.nearest`) inside transformers' codec quantizers.

EnCodec, Mimi, DAC and Emu3's VQ-VAE each find nearest codes by materialising the full
distance matrix. Each family names, in its `exact_search` table, the codebook module class
and the one method that does it, with a `CodeIndex` search that returns the same codes
(exact argmin, lowest index on ties) in bounded memory; `use_exact_search` installs them on
the module instances (the classes are left alone):

| family  | module                      | method           | codes compared by                       |
|---------|-----------------------------|------------------|-----------------------------------------|
| EnCodec | EncodecEuclideanCodebook    | quantize(x)      | squared L2 to `embed`                   |
| Mimi    | MimiEuclideanCodebook       | quantize(x)      | squared L2 to `embed` (embed_sum/usage) |
| DAC     | DacVectorQuantize           | decode_latents(h)| inner product of l2-normalised vectors  |
| Emu3    | Emu3VQVAEVectorQuantizer    | forward(h)       | squared L2 to `embedding.weight`        |
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
from torch import nn

from mmtok.quantize.nearest import cached_index

# transformers class name of a codebook module -> (its method to replace, the replacement)
Replacements = dict[str, tuple[str, Callable[..., object]]]


def euclidean_quantize(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """`quantize` of a Euclidean codebook with an `embed` table (EnCodec, Mimi): `[N,D]` -> ids `[N]`."""
    return cached_index(self, self.embed).search(hidden_states)


def use_exact_search(model: nn.Module, replacements: Replacements) -> int:
    """Install the exact search on every codebook module of `model` that `replacements` names;
    returns how many."""
    count = 0
    for module in model.modules():
        replacement = replacements.get(type(module).__name__)
        if replacement is not None:
            name, function = replacement
            setattr(module, name, types.MethodType(function, module))
            count += 1
    return count
