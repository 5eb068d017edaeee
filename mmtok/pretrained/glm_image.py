"""GLM-Image's image tokenizer (transformers' `GlmImageModel`: its vision encoder `visual` and
its `vqmodel`), encode-only, behind mmtok's image contract.

    tok = mmtok.load("hf:zai-org/GLM-Image/vision_language_encoder")   # or a folder saved by transformers
    codes = tok.encode(x)   # [B,3,H,W] in [-1,1] -> [B,h,w] int64 (16,384 codes); h, w from H, W (`grid_shape`)
    tok.decode(codes)       # MmtokError: encode-only

What the GLM-Image LLM reads for a source image (image-to-image): its image processor's
pixels through the ViT (one feature per 16x16 patch) and the VQ (a 1x1 conv, then the nearest
of 16,384 codes by cosine): `GlmImageModel.get_image_features` then `get_image_tokens`. mmtok
runs those two transformers methods themselves (`tokenizer_model_class` borrows them), with
mmtok's exact bounded-memory search in the VQ (`image_vq.normalised_vq_forward`; transformers
builds the full distance matrix). The GLM-Image LLM takes these ids as its own token ids (its
vocabulary starts with the 16,384 image codes); mmtok's vocab gives them its own ids instead.

Pixels go through GLM-Image's image processor (`GlmImageImageProcessorPil`, the settings of
zai-org/GLM-Image's processor/preprocessor_config.json when the folder has none): the image is
halved, then scaled (bicubic) so that its short side is at least 256 px and its long side at
most 1024 px (min_pixels 512^2, max_pixels 2048^2 before the halving), each side rounded to a
multiple of 16; normalised to [-1,1]. So the grid depends on the size, one code per 32x32
pixels of the input within those bounds (`grid_shape`): 256x256 and 512x512 -> 16x16 = 256
tokens, 1024x1024 -> 32x32 = 1024, 2048x2048 and larger -> 64x64 = 4096, 1920x1080 -> 34x60.
Large images are shrunk by the processor, never tiled (`resizes_input`). The processor refuses
an aspect ratio above 4 and sides under 16 px; mmtok says so in one line (`grid_shape`).

Encode-only (`can_decode = False`): GLM-Image turns codes back into pixels with a diffusion
decoder (diffusers' GlmImageTransformer2DModel + a VAE) that is not part of transformers.

Loading: a folder whose config.json is a `GlmImageConfig` (model_type "glm_image"): the
tensors `model.visual.*` and `model.vqmodel.*` (as `GlmImageForConditionalGeneration` saves
them; `visual.*`, `vqmodel.*` from a `GlmImageModel`) are read, the language model's are not.
zai-org/GLM-Image is a diffusers pipeline: that folder is its `vision_language_encoder/`
(hf:ORG/NAME/SUBFOLDER reads a hub subfolder; its processor, in `processor/`, is the default here).
`save_pretrained` writes the config with the two parts' tensors alone, which
`transformers.GlmImageModel.from_pretrained` reads (its language model then left random).
A folder holding the VQ or the ViT alone is refused: the VQ codes the ViT's features, not pixels.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from mmtok.configs import register_kind
from mmtok.errors import MmtokError
from mmtok.pretrained.image_processor import ProcessedImageTokenizer
from mmtok.pretrained.image_vq import normalised_vq_forward

MODEL_PREFIXES = ("model.", "")  # GlmImageForConditionalGeneration's layout, GlmImageModel's
PARTS = ("visual.", "vqmodel.")  # the tokenizer: the ViT and the VQ (not `language_model.`)
# zai-org/GLM-Image's processor/preprocessor_config.json
GLM_IMAGE_PROCESSOR: dict[str, Any] = {
    "min_pixels": 512 * 512, "max_pixels": 2048 * 2048, "patch_size": 16, "temporal_patch_size": 1, "merge_size": 1,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3, "do_resize": True,
}
PARTS_ALONE = "GLM-Image's VQ codes its vision encoder's features, not pixels; load the whole GLM-Image model (model_type glm_image)"


@functools.cache
def tokenizer_model_class() -> type:
    """A transformers model holding GLM-Image's `visual` and `vqmodel` and nothing else (the
    9B language model is never built), with `GlmImageModel`'s own `get_image_features` and
    `get_image_tokens`, which use only those two. Built on first use: importing transformers
    takes seconds."""
    from transformers import GlmImageConfig, GlmImageModel
    from transformers.models.glm_image.modeling_glm_image import GlmImagePreTrainedModel, GlmImageVisionModel, GlmImageVQVAE

    class GlmImageTokenizerModel(GlmImagePreTrainedModel):
        config_class = GlmImageConfig  # (not an annotation: transformers resolves those in this module's globals)

        def __init__(self, config: GlmImageConfig):
            super().__init__(config)
            self.visual = GlmImageVisionModel._from_config(config.vision_config)
            self.vqmodel = GlmImageVQVAE._from_config(config.vq_config)
            self.post_init()

        get_image_features = GlmImageModel.get_image_features
        get_image_tokens = GlmImageModel.get_image_tokens

    return GlmImageTokenizerModel


@register_kind
class GlmImageTokenizer(ProcessedImageTokenizer):
    """GLM-Image's ViT + VQ (transformers' `GlmImageModel` without its language model): one
    code of 16,384 per 32x32 input pixels, 16..64 codes a side; encode-only."""

    kind = "hf-glm-image"
    hf_model_class = "GlmImageModel"  # what reads the saved folder; `transformers_class` is the ViT + VQ alone
    model_type = "glm_image"
    submodels = {model_type: MODEL_PREFIXES}
    submodel_parts = PARTS
    refused = {"glm_image_vqmodel": PARTS_ALONE, "glm_image_vision": PARTS_ALONE}
    exact_search = {"GlmImageVQVAEVectorQuantizer": ("forward", normalised_vq_forward)}
    processor_class = "GlmImageImageProcessorPil"
    default_processor = GLM_IMAGE_PROCESSOR
    can_decode = False

    @classmethod
    def transformers_class(cls) -> type:
        return tokenizer_model_class()

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        vision, vq = hf_config.vision_config, hf_config.vq_config
        if vision.in_channels != 3:
            raise MmtokError(f"{source}: this GLM-Image vision encoder takes {vision.in_channels} channels; mmtok images are RGB")
        if vision.spatial_merge_size != 1 or vq.latent_channels != vision.hidden_size:
            raise MmtokError(
                f"{source}: spatial_merge_size {vision.spatial_merge_size} / VQ latent_channels {vq.latent_channels} vs vision hidden_size "
                f"{vision.hidden_size}: GLM-Image's VQ reads one ViT feature per patch (merge 1, equal widths)"
            )

    def _setup(self, hf_config: Any) -> None:
        super()._setup(hf_config)
        p, patch = self.processor, hf_config.vision_config.patch_size
        if not p.do_resize or (p.patch_size, p.merge_size, p.temporal_patch_size) != (patch, 1, 1):
            raise MmtokError(
                f"{self.kind}: the image processor (do_resize {p.do_resize}, patch_size {p.patch_size}, merge_size {p.merge_size}, "
                f"temporal_patch_size {p.temporal_patch_size}) does not fit the vision encoder (patch_size {patch}, merge 1, one frame)"
            )
        self._patch = int(patch)
        self._codebook_size = int(hf_config.vq_config.num_embeddings)

    # -- facts ----------------------------------------------------------------------------
    @property
    def downsample(self) -> int:
        """Input pixels per code along each side (the processor halves the image, the ViT
        takes `patch_size` patches), where the processor's size bounds do not rescale it."""
        return 2 * self._patch

    @property
    def quantizer(self) -> nn.Module:
        return self.model.vqmodel.quantize

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Code grid `(h, w)` of an `height x width` image: the processor's size / patch_size.
        MmtokError for the sizes the processor refuses."""
        from transformers.models.glm_image.image_processing_pil_glm_image import smart_resize

        size = self.processor.size
        try:
            h, w = smart_resize(height, width, self._patch, size["shortest_edge"], size["longest_edge"])
        except ValueError as err:
            raise MmtokError(f"{self.kind} cannot take a {width}x{height} image ({err}); crop or pad it") from None
        return h // self._patch, w // self._patch

    def describe(self) -> dict[str, Any]:
        size = self.processor.size
        short, long = round(size["shortest_edge"] ** 0.5), round(size["longest_edge"] ** 0.5)
        return {**super().describe(), "resolution": f"dynamic: short side scaled up to >= {short} px, long side down to <= {long} px, "
                                                    f"then one code per {self.downsample}x{self.downsample} px; aspect ratio <= 4"}

    # -- coding ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1] -> codes `[B,h,w]` int64, `(h, w) = grid_shape(H, W)`."""
        grid = self.grid_shape(*x.shape[-2:]) if x.ndim == 4 else None  # refuses what the processor would, in one line
        with self.eval_mode():
            inputs = self.processed(x)
            grid_thw = inputs.image_grid_thw.to(self.device)
            if grid_thw[:, 1:].tolist() != [list(grid)] * x.shape[0]:  # the processor and `grid_shape` disagree: a bug, not bad input
                raise RuntimeError(f"{self.kind}: the processor made grids {grid_thw.tolist()}, grid_shape says {grid}")
            features = self.model.get_image_features(inputs.pixel_values.to(self.device, self._dtype), grid_thw).pooler_output
            return self.model.get_image_tokens(features).reshape(x.shape[0], *grid).long()

    # -- model card -------------------------------------------------------------------------
    def _card_title(self) -> str:
        return f"GLM-Image image tokenizer, encode-only (transformers `{self.hf_model_class}`'s vision encoder and VQ, mmtok kind `{self.kind}`)"

    def _card_facts(self) -> list[str]:
        tokens = ", ".join(f"{n}x{n} -> {'x'.join(map(str, self.grid_shape(n, n)))}" for n in (256, 512, 1024, 2048))
        return [f"codes of {self._codebook_size}, one per {self.downsample}x{self.downsample} input pixels within the processor's bounds: {tokens}",
                "holds only `visual.*` and `vqmodel.*`: transformers' GlmImageModel reads them and leaves its language model random",
                *super()._card_facts()]

    def _card_origin(self) -> str:
        return " (Z.ai GLM-Image)"
