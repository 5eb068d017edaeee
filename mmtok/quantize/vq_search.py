"""Encoding with a vector-quantize-pytorch `VectorQuantize` through `CodeIndex`.

`VectorQuantize.forward` in eval mode computes the full N x K distance matrix (and runs its
k-means init on the first batch it sees, even in eval mode). Encoding needs only the ids, so
this applies the same steps around the search: `project_in`, l2-normalisation for cosine
codebooks (then nearest = largest inner product), and the exact chunked search.
"""

from __future__ import annotations

import torch
from vector_quantize_pytorch import VectorQuantize

from mmtok.quantize.nearest import cached_index


@torch.no_grad()
def vq_ids(vq: VectorQuantize, x: torch.Tensor) -> torch.Tensor:
    """`x [B,N,dim]` (channel-last, as our quantizers feed it) -> ids `[B,N]` int64, the
    codes `vq(x)` picks in eval mode (exactly, ties to the lowest index)."""
    if vq.heads != 1:
        raise ValueError("vq_ids supports single-head VectorQuantize only")
    z = vq._codebook.transform_input(vq.project_in(x.float()))
    index = cached_index(vq, vq.codebook, "dot" if vq.use_cosine_sim else "euclidean")
    return index.search(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1])
