"""The shared base of transformers' image VQ-VAEs that an LLM reads at one fixed resolution
(Janus, Chameleon): their image processor in front, the VQ's codes out.

    tok = mmtok.load("hf:deepseek-community/Janus-Pro-1B")   # the VQ inside a full checkpoint
    codes = tok.encode(x)     # [B,3,H,W] in [-1,1], any H, W -> [B,n,n] int64 (n: the processor's side / 16)

Why the processor: these LLMs were trained on the codes of images that their image processor
resized (Janus: longest side to 384, padded to a square with the mean colour; Chameleon:
shortest side to 512, centre crop 512), rescaled and normalised. mmtok runs that processor
(transformers' PIL backend, `processor_class`, so codes do not depend on whether torchvision
is installed) on the uint8 pixels of `x` (`from_model`: exact for images read from files)
and gives the model's `encode(pixel_values).image_tokens`. So every image, whatever its size,
gets the same `n x n` grid (`grid_shape`), the one the LLM reads; `fixed_resolution` tells
mmtok's file and LLM paths not to tile large images (the processor shrinks them anyway).

The processor's settings are part of the mmtok config (`ImageVQConfig.processor`, canonical
JSON), so the fingerprint covers them; they come from the model's preprocessor_config.json
(a full LLM checkpoint has one) or, when there is none, from `default_processor`, and
`save_pretrained` writes them back.

Encode-only families (`can_decode = False`, Chameleon) have no decoder in transformers:
`decode` is one MmtokError line, and mmtok's decode paths check `can_decode` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mmtok.errors import MmtokError, first_line
from mmtok.image.base import ImageTokenizer
from mmtok.media.image import from_model
from mmtok.pretrained.base import PretrainedAdapter, PretrainedConfig
from mmtok.pretrained.spec import Source
from mmtok.quantize.nearest import CodeIndex, cached_index

PREPROCESSOR_NAME = "preprocessor_config.json"
# Processor keys that record how it was saved, not what it computes.
_VOLATILE_PROCESSOR_KEYS = frozenset({"processor_class", "image_processor_type", "_processor_class"})


@dataclass(frozen=True)
class ImageVQConfig(PretrainedConfig):
    """A VQ-VAE and its image processor: the transformers config as canonical JSON (see
    `mmtok.pretrained.base`) and the processor's settings as canonical JSON
    (`PretrainedImageVQ.canonical_processor`; "" = the family's `default_processor`)."""

    processor: str = ""


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
    which Janus' is): l2-normalised latents against l2-normalised codes, largest inner
    product (= smallest distance between the unit vectors); the quantized vectors are the
    normalised codes, as the decoder reads them (`get_codebook_entry`)."""
    b, d, h, w = hidden_state.shape
    flat = F.normalize(hidden_state.permute(0, 2, 3, 1).reshape(-1, d), dim=-1)
    codebook = F.normalize(self.embedding.weight, dim=-1)
    # a fresh index: `cached_index` keys on the tensor, and this one is new on every call
    ids = CodeIndex(codebook, "dot").search(flat)
    quantized = codebook[ids].view(b, h, w, d).permute(0, 3, 1, 2)
    return quantized, hidden_state.new_zeros(()), ids


class PretrainedImageVQ(PretrainedAdapter, ImageTokenizer):
    """Base of the fixed-resolution image VQ adapters. A family sets, beyond
    `PretrainedAdapter`'s fields, `processor_class` (transformers' PIL image processor),
    `default_processor` (its settings when the checkpoint has no preprocessor_config.json)
    and implements `processed_side(processor)` (the square side its pixel_values have)."""

    config_class = ImageVQConfig
    fixed_resolution = True
    processor_class: ClassVar[str]
    default_processor: ClassVar[dict[str, Any]] = {}

    def _setup(self, hf_config: Any) -> None:
        self.processor = self.make_processor(self.config.processor)
        self._side = self.processed_side(self.processor)
        self._downsample = 2 ** (len(hf_config.channel_multiplier) - 1)
        self._codebook_size = int(hf_config.num_embeddings)
        if self._side % self._downsample:
            raise MmtokError(f"{self.kind}: the processor makes {self._side}px images, not a multiple of the VQ's {self._downsample}x downsampling")

    @classmethod
    def make_processor(cls, settings: str) -> Any:
        """The image processor with these settings (JSON; "" = `default_processor`)."""
        import transformers

        values = json.loads(settings) if settings else cls.default_processor
        return getattr(transformers, cls.processor_class).from_dict(values)

    @classmethod
    def canonical_processor(cls, values: dict[str, Any] | None) -> str:
        """Processor settings (None: `default_processor`) as the JSON string
        `ImageVQConfig.processor` holds: every setting the processor ends up with, sorted,
        without bookkeeping keys, so a save / load round trip keeps the fingerprint."""
        processor = cls.make_processor("" if values is None else json.dumps(values))
        full = json.loads(processor.to_json_string())
        return json.dumps({k: v for k, v in full.items() if k not in _VOLATILE_PROCESSOR_KEYS}, sort_keys=True)

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
    def codebook_sizes(self) -> list[int]:
        return [self._codebook_size]

    @torch.no_grad()
    def code_vectors(self) -> list[torch.Tensor]:
        """The codebook `[codebook_size, embed_dim]` the encoder's search compares with (for
        `mmtok extend --init codebook`)."""
        return [self.model.quantize.embedding.weight.detach().float().cpu()]

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        """Every image is resized by the processor: the grid is always `resolution / downsample` square."""
        n = self._side // self._downsample
        return n, n

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(resolution=self.resolution, can_decode=self.can_decode)
        return info

    # -- coding ---------------------------------------------------------------------------
    def pixel_values(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` in [-1,1] -> what the image processor makes of the same uint8 pixels:
        `[B,3,S,S]` float32, S = `resolution`."""
        images = [image.numpy() for image in from_model(x.detach().float().cpu())]
        return self.processor(images=images, return_tensors="pt").pixel_values

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,H,W]` float in [-1,1], any size -> codes `[B,n,n]` int64 (see the module docstring)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {tuple(x.shape)}")
        with self.eval_mode():
            values = self.pixel_values(x).to(self.device, self._dtype)
            n = self._side // self._downsample
            return self.model.encode(values, return_dict=True).image_tokens.reshape(x.shape[0], n, n).long()

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Families with a decoder override this; the encode-only ones refuse (one line)."""
        self.require_decoder()
        raise NotImplementedError

    # -- loading and saving ------------------------------------------------------------------
    @classmethod
    def _wrap(cls, model: nn.Module, source: Source) -> PretrainedImageVQ:
        processor = _read_processor(cls, source)
        try:
            return cls.from_model(model.float().eval(), processor=processor)
        except MmtokError as err:  # the processor does not fit the VQ: name the checkpoint
            raise MmtokError(f"{source.spec}: {err}") from None

    def _save_beside(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)

    def _card_facts(self) -> list[str]:
        n = self._side // self._downsample
        facts = [f"{self.resolution}x{self.resolution} pixels (the image processor resizes every image) -> {n}x{n} = {n * n} codes of {self._codebook_size}"]
        return facts + ([] if self.can_decode else ["encode-only: transformers ships no decoder for it"])


def _read_processor(cls: type[PretrainedImageVQ], source: Source) -> str:
    """The processor settings of `source`'s preprocessor_config.json (the family's default
    when it has none) as canonical JSON."""
    from transformers.utils import cached_file

    try:
        found = cached_file(source.where, PREPROCESSOR_NAME, _raise_exceptions_for_missing_entries=False)
        return cls.canonical_processor(None if found is None else json.loads(Path(found).read_text()))
    except Exception as err:  # unreadable file, or settings the processor does not take
        raise MmtokError(f"{source.spec}: cannot read {PREPROCESSOR_NAME} ({first_line(err, 300, typed=True)}); {source.advice}") from None
