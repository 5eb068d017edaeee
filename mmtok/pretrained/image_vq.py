"""The shared base of transformers' image VQ-VAEs that an LLM reads at one fixed resolution
(Janus, Chameleon): their image processor in front (`image_processor.py`), the VQ's codes out.

    tok = mmtok.load("hf:deepseek-community/Janus-Pro-1B")   # the VQ inside a full checkpoint
    codes = tok.encode(x)     # [B,3,H,W] in [-1,1], any H, W -> [B,n,n] int64 (n: the processor's side / 16)

Their processors resize every image to one square (Janus: longest side to 384, padded to a
square with the mean colour; Chameleon: shortest side to 512, centre crop 512), rescale and
normalise; mmtok gives the model's `encode(pixel_values).image_tokens`. So every image,
whatever its size, gets the same `n x n` grid (`grid_shape`), the one the LLM reads
(`fixed_resolution`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmtok.errors import MmtokError
from mmtok.pretrained.image_processor import ProcessedImageTokenizer
from mmtok.quantize.nearest import CodeIndex, cached_index


def euclidean_vq_forward(self: nn.Module, hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`forward` of Janus' / Chameleon's `...VQVAEVectorQuantizer` with mmtok's exact search
    (squared L2 to `embedding.weight`, lowest index on ties): `[B,D,h,w]` ->
    (quantized `[B,D,h,w]`, a zero loss, ids `[B*h*w]`), the tuple the model's `encode` unpacks."""
    b, d, h, w = hidden_state.shape
    flat = hidden_state.permute(0, 2, 3, 1).reshape(-1, d)
    ids = cached_index(self, self.embedding.weight).search(flat)
    quantized = self.embedding(ids).view(b, h, w, d).permute(0, 3, 1, 2)
    return quantized, hidden_state.new_zeros(()), ids


def normalised_vq_forward(self: nn.Module, hidden_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same for a codebook searched by cosine (LlamaGen's VQ-16 with `codebook_l2_norm`,
    which Janus' is, and GLM-Image's): l2-normalised latents against l2-normalised codes,
    largest inner product (= smallest distance between the unit vectors); the quantized
    vectors are the normalised codes, as the decoder reads them (`get_codebook_entry`)."""
    b, d, h, w = hidden_state.shape
    flat = F.normalize(hidden_state.permute(0, 2, 3, 1).reshape(-1, d), dim=-1)
    codebook = F.normalize(self.embedding.weight, dim=-1)
    # a fresh index: `cached_index` keys on the tensor, and this one is new on every call
    ids = CodeIndex(codebook, "dot").search(flat)
    quantized = codebook[ids].view(b, h, w, d).permute(0, 3, 1, 2)
    return quantized, hidden_state.new_zeros(()), ids


class PretrainedImageVQ(ProcessedImageTokenizer):
    """Base of the fixed-resolution image VQ adapters: beyond `ProcessedImageTokenizer`'s
    fields, a family implements `processed_side(processor)` (the square side its
    pixel_values have)."""

    fixed_resolution = True

    def _setup(self, hf_config: Any) -> None:
        super()._setup(hf_config)
        self._side = self.processed_side(self.processor)
        self._downsample = 2 ** (len(hf_config.channel_multiplier) - 1)
        self._codebook_size = int(hf_config.num_embeddings)
        if self._side % self._downsample:
            raise MmtokError(f"{self.kind}: the processor makes {self._side}px images, not a multiple of the VQ's {self._downsample}x downsampling")

    @staticmethod
    def processed_side(processor: Any) -> int:
        """Side of the square pixel_values `processor` makes."""
        raise NotImplementedError

    # -- facts ----------------------------------------------------------------------------
    @property
    def downsample(self) -> int:
        return self._downsample

    @property
    def resolution(self) -> int:
        """Side of the square image the VQ codes (after the processor)."""
        return self._side

    @property
    def quantizer(self) -> nn.Module:
        return self.model.quantize

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Every image is resized by the processor: the grid is always `resolution / downsample` square."""
        n = self._side // self._downsample
        return n, n

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(resolution=self.resolution)
        return info

    # -- coding ---------------------------------------------------------------------------
    def pixel_values(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` in [-1,1] -> what the image processor makes of the same uint8 pixels:
        `[B,3,S,S]` float32, S = `resolution`."""
        return self.processed(x).pixel_values

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1], any size -> codes `[B,n,n]` int64 (see the module docstring)."""
        with self.eval_mode():
            values = self.pixel_values(x).to(self.device, self._dtype)
            n = self._side // self._downsample
            return self.model.encode(values, return_dict=True).image_tokens.reshape(x.shape[0], n, n).long()

    def _card_facts(self) -> list[str]:
        n = self._side // self._downsample
        side = self.resolution
        return [f"{side}x{side} pixels (the image processor resizes every image) -> {n}x{n} = {n * n} codes of {self._codebook_size}",
                *super()._card_facts()]
