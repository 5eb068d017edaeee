"""The shared base of the pretrained image tokenizers that run their model's own image
processor first (Janus, Chameleon, GLM-Image): the processor's settings in the config, the
uint8 pixels it is given, reading and writing its preprocessor_config.json.

Why the processor: these LLMs were trained on the codes of images that their image processor
resized, rescaled and normalised. mmtok runs that processor (transformers' PIL backend,
`processor_class`, so codes do not depend on whether torchvision is installed) on the uint8
pixels of `x` (`from_model`: exact for images read from files). The processor decides the
size the model sees, so `resizes_input` tells mmtok's file and LLM paths not to tile large
images (the processor shrinks them anyway); `grid_shape` says what grid comes out.

The processor's settings are part of the mmtok config (`ImageVQConfig.processor`, canonical
JSON), so the fingerprint covers them; they come from the model's preprocessor_config.json
(a full LLM checkpoint has one) or, when there is none, from `default_processor`, and
`save_pretrained` writes them back.

Encode-only families (`can_decode = False`: Chameleon, GLM-Image) have no decoder in
transformers: `decode` is one MmtokError line, and mmtok's decode paths check `can_decode` first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmtok.errors import MmtokError, first_line
from mmtok.image.base import ImageTokenizer
from mmtok.media.image import from_model
from mmtok.pretrained.base import PretrainedAdapter, PretrainedConfig
from mmtok.pretrained.spec import Source

PREPROCESSOR_NAME = "preprocessor_config.json"
# Processor keys that record how it was saved, not what it computes.
_VOLATILE_PROCESSOR_KEYS = frozenset({"processor_class", "image_processor_type", "_processor_class"})


@dataclass(frozen=True)
class ImageVQConfig(PretrainedConfig):
    """A pretrained image tokenizer and its image processor: the transformers config as
    canonical JSON (see `mmtok.pretrained.base`) and the processor's settings as canonical JSON
    (`ProcessedImageTokenizer.canonical_processor`; "" = the family's `default_processor`)."""

    processor: str = ""


class ProcessedImageTokenizer(PretrainedAdapter, ImageTokenizer):
    """Base of the image adapters with their model's image processor in front. A family sets,
    beyond `PretrainedAdapter`'s fields, `processor_class` (transformers' PIL image processor)
    and `default_processor` (its settings when the checkpoint has no preprocessor_config.json),
    sets `self._codebook_size` in `_setup`, and implements `grid_shape`, `quantizer` and `encode`."""

    config_class = ImageVQConfig
    resizes_input = True
    processor_class: ClassVar[str]
    default_processor: ClassVar[dict[str, Any]] = {}
    _codebook_size: int

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

    def _setup(self, hf_config: Any) -> None:
        """Families extend this with their model's facts (and `_codebook_size`)."""
        self.processor = self.make_processor(self.config.processor)

    # -- facts ----------------------------------------------------------------------------
    @property
    def codebook_sizes(self) -> list[int]:
        return [self._codebook_size]

    @property
    def quantizer(self) -> nn.Module:
        """The model's codebook module (its `embedding.weight` is the codebook)."""
        raise NotImplementedError

    @torch.no_grad()
    def code_vectors(self) -> list[torch.Tensor]:
        """The codebook `[codebook_size, embed_dim]` the encoder's search compares with (for
        `mmtok extend --init codebook`)."""
        return [self.quantizer.embedding.weight.detach().float().cpu()]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(can_decode=self.can_decode)
        return info

    # -- coding ---------------------------------------------------------------------------
    def processed(self, x: torch.Tensor) -> Any:
        """`[B,3,H,W]` in [-1,1] -> what the image processor makes of the same uint8 pixels
        (its BatchFeature of torch tensors: `pixel_values` and, for some families, more)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got shape {tuple(x.shape)}")
        images = [image.numpy() for image in from_model(x.detach().float().cpu())]
        return self.processor(images=images, return_tensors="pt")

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Families with a decoder override this; the encode-only ones refuse (one line)."""
        self.require_decoder()
        raise NotImplementedError

    # -- loading and saving ------------------------------------------------------------------
    @classmethod
    def _wrap(cls, model: nn.Module, source: Source) -> ProcessedImageTokenizer:
        processor = _read_processor(cls, source)
        try:
            return cls.from_model(model.float().eval(), processor=processor)
        except MmtokError as err:  # the processor does not fit the model: name the checkpoint
            raise MmtokError(f"{source.spec}: {err}") from None

    def _save_beside(self, folder: Path) -> None:
        self.processor.save_pretrained(folder)

    def _card_facts(self) -> list[str]:
        return [] if self.can_decode else ["encode-only: transformers ships no decoder for it"]


def _read_processor(cls: type[ProcessedImageTokenizer], source: Source) -> str:
    """The processor settings of `source`'s preprocessor_config.json (the family's default
    when it has none) as canonical JSON."""
    from transformers.utils import cached_file

    try:
        found = cached_file(source.where, PREPROCESSOR_NAME, subfolder=source.subfolder, _raise_exceptions_for_missing_entries=False)
        return cls.canonical_processor(None if found is None else json.loads(Path(found).read_text()))
    except Exception as err:  # unreadable file, or settings the processor does not take
        raise MmtokError(f"{source.spec}: cannot read {PREPROCESSOR_NAME} ({first_line(err, 300, typed=True)}); {source.advice}") from None
