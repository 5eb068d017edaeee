"""Chameleon's image tokenizer (transformers' `ChameleonVQVAE`), encode-only, behind mmtok's
image contract.

    tok = mmtok.load("hf:facebook/chameleon-7b")   # or a folder saved by transformers
    codes = tok.encode(x)        # [B,3,H,W] in [-1,1], any size -> [B,32,32] int64 (8192 codes)
    tok.decode(codes)            # MmtokError: encode-only

transformers ships Chameleon's VQ encoder only (Meta did not release the decoder in this
format), so this is an encode-only tokenizer (`can_decode = False`): its codes are what the
Chameleon LLM reads, for LLM input (`mmtok extend`, `mmtok pretokenize`), and every decode
path refuses it with one line. The published VQ lives inside the full checkpoints (model_type
"chameleon", tensors `model.vqmodel.*`); only the shards holding it are read. A folder holding
a `ChameleonVQVAE` alone (model_type "chameleon_vqgan") loads directly.

Pixels go through Chameleon's image processor (`mmtok.pretrained.image_vq`): shortest side
resized to 512 (Lanczos), centre crop 512x512, `p * 0.0078 - 1`. Codes are
`ChameleonVQVAE.encode(pixel_values).image_tokens`, the VQ ids that
`ChameleonModel.get_image_tokens` then maps to the LLM's BPE ids (`vocabulary_map`, "IMGIMG..."
tokens; mmtok's vocab gives the codes its own ids instead): 512 / 16 = 32, 1024 tokens per image.
"""

from __future__ import annotations

from typing import Any

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.image_vq import PretrainedImageVQ, euclidean_vq_forward

FULL_MODEL_TYPE = "chameleon"  # ChameleonConfig: LLM + `vqmodel`
VQ_PREFIXES = ("model.vqmodel.", "vqmodel.")


@register_kind
class ChameleonImageTokenizer(PretrainedImageVQ):
    """Chameleon's VQ-VAE encoder (`transformers.ChameleonVQVAE`): 16x downsampling, 8192
    codes, 512x512 pixels after its processor; encode-only."""

    kind = "hf-chameleon"
    hf_model_class = "ChameleonVQVAE"
    model_type = "chameleon_vqgan"
    submodels = {FULL_MODEL_TYPE: VQ_PREFIXES}
    exact_search = {"ChameleonVQVAEVectorQuantizer": ("forward", euclidean_vq_forward)}
    processor_class = "ChameleonImageProcessorPil"
    default_processor: dict[str, Any] = {}  # the class defaults are Chameleon's
    can_decode = False

    @staticmethod
    def processed_side(processor: Any) -> int:
        if not (processor.do_center_crop and processor.crop_size["height"] == processor.crop_size["width"]):
            raise MmtokError("this Chameleon image processor does not centre-crop to a square; mmtok needs one fixed resolution")
        return int(processor.crop_size["height"])

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.in_channels != 3:
            raise MmtokError(f"{source}: this ChameleonVQVAE takes {hf_config.in_channels} channels; mmtok images are RGB")

    def _card_title(self) -> str:
        return f"Chameleon image tokenizer, encode-only (transformers `{self.hf_model_class}`, mmtok kind `{self.kind}`)"

    def _card_origin(self) -> str:
        return " (Meta Chameleon)"
