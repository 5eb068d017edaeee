"""Janus' image-generation tokenizer (transformers' `JanusVQVAE`) behind mmtok's image contract.

    tok = mmtok.load("hf:deepseek-community/Janus-Pro-1B")   # or a folder saved by transformers
    codes = tok.encode(x)                # [B,3,H,W] in [-1,1], any size -> [B,24,24] int64 (16,384 codes)
    x2 = tok.decode(codes, size=(H, W))  # -> [B,3,H,W] in [-1,1]

The published VQ lives inside the full Janus checkpoints (model_type "janus", tensors
`model.vqmodel.*` beside SigLIP and the LLM): only the shards holding it are read. A folder
holding a `JanusVQVAE` alone (model_type "janus_vqgan", what `save_pretrained` here writes)
loads directly.

Pixels go through Janus' image processor first (`mmtok.pretrained.image_vq`): longest side
resized to 384 (bicubic), padded to a 384x384 square with the mean colour, normalised with
the checkpoint's mean / std (Janus-Pro: 0.5 / 0.5, i.e. [-1,1]; also the default for a bare
VQ folder without preprocessor_config.json). 384 / 16 = 24: 576 tokens per image, any input size.

Codes follow Janus, not transformers' `JanusVQVAE.encode`: Janus' VQ is LlamaGen's VQ-16 with
`codebook_l2_norm=True` (github.com/deepseek-ai/Janus, janus/models/vq_model.py): it searches
the codebook with l2-normalised latents and codes (cosine), and its decoder reads normalised
codes. transformers' `JanusVQVAEVectorQuantizer.forward` searches by plain Euclidean distance
(while its `get_codebook_entry`, used by `decode`, normalises), so its `encode` gives other
codes wherever the codebook's norms differ: not the codes the Janus LLM was trained to read and
generate. mmtok's `encode` is `JanusVQVAE.encode` with the normalised search
(`image_vq.normalised_vq_forward`); `benchmarks/pretrained_image_guarantees.py` measures how
often transformers' search agrees.

Decoding is `JanusVQVAE.decode`. With `size=(H, W)` the processor's geometry is undone: the
padding is cropped off and the rest resized (bicubic) to H x W.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.image_vq import PretrainedImageVQ, normalised_vq_forward

FULL_MODEL_TYPE = "janus"  # JanusConfig: SigLIP + LLM + `vqmodel`
# VQ tensor prefixes in a full Janus checkpoint: the hub layout and what transformers 5 writes.
VQ_PREFIXES = ("model.vqmodel.", "vqmodel.")
JANUS_MEAN_STD = [0.5, 0.5, 0.5]  # deepseek-ai/Janus(-Pro)'s processor: pixels in [-1,1]


@register_kind
class JanusImageTokenizer(PretrainedImageVQ):
    """Janus' VQ-VAE (`transformers.JanusVQVAE`): 16x downsampling, 16,384 codes, 384x384
    pixels after its processor (the facts come from the configs)."""

    kind = "hf-janus"
    hf_model_class = "JanusVQVAE"
    model_type = "janus_vqgan"
    submodels = {FULL_MODEL_TYPE: VQ_PREFIXES}
    # Janus' own search (see the module docstring), not transformers' Euclidean one
    exact_search = {"JanusVQVAEVectorQuantizer": ("forward", normalised_vq_forward)}
    processor_class = "JanusImageProcessorPil"
    default_processor = {"image_mean": JANUS_MEAN_STD, "image_std": JANUS_MEAN_STD}

    @staticmethod
    def processed_side(processor: Any) -> int:
        if processor.size["height"] != processor.size["width"]:
            raise MmtokError(f"the image processor's size {dict(processor.size)} is not square; Janus' processor makes square images")
        return int(processor.size["height"])

    def _setup(self, hf_config: Any) -> None:
        super()._setup(hf_config)
        n = self.resolution // self.downsample
        if hf_config.num_patches != n:  # JanusVQVAE.decode takes exactly num_patches^2 codes
            raise MmtokError(f"{self.kind}: num_patches {hf_config.num_patches} does not match the processor's {self.resolution}px / {self.downsample} = {n}")

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.in_channels != 3 or hf_config.out_channels != 3:
            raise MmtokError(f"{source}: this JanusVQVAE has {hf_config.in_channels} / {hf_config.out_channels} channels; mmtok images are RGB")

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """codes `[B,n,n]` -> `[B,3,S,S]` in [-1,1] (S = `resolution`), or `[B,3,H,W]` with the
        processor's resize and padding undone when `size=(H, W)` is given."""
        n = self.resolution // self.downsample
        if codes.ndim != 3 or codes.shape[1:] != (n, n):
            raise ValueError(f"expected codes [B,{n},{n}], got shape {tuple(codes.shape)}")
        self.check_codes(codes)
        with self.eval_mode():
            values = self.model.decode(codes.to(self.device).long().reshape(codes.shape[0], -1)).float()
        x = self._to_model_range(values)
        return (x if size is None else self._undo_geometry(x, size)).clamp(-1, 1)

    def _to_model_range(self, values: torch.Tensor) -> torch.Tensor:
        """The processor's normalised pixels -> [-1,1] (its rescale and normalisation undone)."""
        p = self.processor
        if p.do_normalize:
            mean = torch.tensor(p.image_mean, device=values.device).view(1, 3, 1, 1)
            std = torch.tensor(p.image_std, device=values.device).view(1, 3, 1, 1)
            values = values * std + mean
        scale = p.rescale_factor if p.do_rescale else 1.0
        return values / scale / 127.5 - 1

    def _undo_geometry(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """`[B,3,S,S]` -> `[B,3,H,W]`: crop the square padding, resize back (bicubic)."""
        height, width = size
        side, p = self.resolution, self.processor
        if p.do_resize:  # the processor's resize: longest side to S, at least min_size
            delta = side / max(height, width)
            inner = (max(round(height * delta), p.min_size), max(round(width * delta), p.min_size))
        else:
            inner = (height, width)
        if p.do_pad and inner[0] != inner[1]:  # centred on the longer side's square
            top = (max(inner) - inner[0]) // 2 if inner[1] > inner[0] else 0
            left = (max(inner) - inner[1]) // 2 if inner[0] > inner[1] else 0
            x = x[:, :, top : top + inner[0], left : left + inner[1]]
        if tuple(x.shape[-2:]) == (height, width):
            return x
        return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)

    def _card_title(self) -> str:
        return f"Janus image tokenizer (transformers `{self.hf_model_class}`, mmtok kind `{self.kind}`)"

    def _card_origin(self) -> str:
        return " (DeepSeek Janus)"
