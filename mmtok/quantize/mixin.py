"""`HasQuantizer`: the `Tokenizer.code_vectors` of tokenizers whose codes come from `self.quantizer`."""

from __future__ import annotations

import torch
from torch import nn


class HasQuantizer:
    """Mixin for a `Tokenizer` that holds its quantizer in `self.quantizer` (a `Quantizer`,
    `GumbelQuantizer` or `ResidualQuantizer`: anything with `code_vectors()` returning one
    `[codebook_size, D]` tensor or a list of them, one per code stream). List it before the
    media type's tokenizer base, so its `code_vectors` replaces `Tokenizer.code_vectors`
    (which refuses): `class ImageVQ(HasQuantizer, ImageTokenizer)`."""

    quantizer: nn.Module

    @torch.no_grad()
    def code_vectors(self) -> list[torch.Tensor]:
        """One `[codebook_size, D]` float32 CPU tensor per code stream: the latent vector each
        code stands for (used to initialise LLM embeddings from the codebook)."""
        vectors = self.quantizer.code_vectors()
        return [v.float().cpu() for v in (vectors if isinstance(vectors, list) else [vectors])]
