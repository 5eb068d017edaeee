"""Residual vector quantization over vector-quantize-pytorch's `ResidualVQ`.

`K` codebooks quantize in turn what the previous ones left over, so the first `k` levels
alone give a coarser code: one model serves several bitrates. Quantizer dropout (train only)
keeps a random number of levels per batch (at least `min_quantizers`), as SoundStream and
EnCodec do, so that every prefix is trained to decode on its own.

Layout: features `z: [B,D,t]`, codes `[B,K,t]` int64 in `[0, codebook_size)`.
"""

from __future__ import annotations

import torch
from torch import nn
from vector_quantize_pytorch import ResidualVQ

from mmtok.quantize.vq_search import vq_ids


class ResidualQuantizer(nn.Module):
    def __init__(
        self, dim: int, num_quantizers: int, codebook_size: int, ema_decay: float = 0.99, kmeans_init: bool = True,
        dead_code_threshold: float = 2.0, commitment_weight: float = 1.0, dropout: bool = True, min_quantizers: int = 1,
    ):
        super().__init__()
        self.num_quantizers, self.codebook_size = num_quantizers, codebook_size
        self.rvq = ResidualVQ(
            dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size, decay=ema_decay,
            kmeans_init=kmeans_init, threshold_ema_dead_code=dead_code_threshold,
            commitment_weight=commitment_weight, quantize_dropout=dropout and num_quantizers > min_quantizers,
            quantize_dropout_cutoff_index=max(min_quantizers - 1, 0),
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: `z [B,D,t] -> (z_q [B,D,t], ids [B,K,t] with -1 for dropped levels, aux loss)`."""
        zq, ids, losses = self.rvq(z.transpose(1, 2))
        return zq.transpose(1, 2), ids.transpose(1, 2).long(), losses.sum()

    @torch.no_grad()
    def encode(self, z: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """`z [B,D,t] -> ids [B,levels,t]`: greedy residual coding with the first `levels`
        codebooks, each level an exact nearest-code search (`mmtok.quantize.vq_search`)."""
        levels = self.num_quantizers if levels is None else levels
        residual = z.transpose(1, 2).float()
        ids = []
        for layer in self.rvq.layers[:levels]:
            idx = vq_ids(layer, residual)
            residual = residual - layer.get_output_from_indices(idx)
            ids.append(idx)
        return torch.stack(ids, dim=1)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """`ids [B,k,t]` (k <= K, the first k levels) -> `z_q [B,D,t]`, the sum of their code vectors."""
        zq = sum(layer.get_output_from_indices(ids[:, i]) for i, layer in enumerate(self.rvq.layers[: ids.shape[1]]))
        return zq.transpose(1, 2)

    def code_vectors(self) -> list[torch.Tensor]:
        """One `[codebook_size, D]` tensor per level: each code's vector (a frame's z_q is
        the sum of its levels' vectors)."""
        ids = torch.arange(self.codebook_size, device=self.rvq.layers[0].codebook.device)[None]
        return [layer.get_output_from_indices(ids)[0] for layer in self.rvq.layers]
