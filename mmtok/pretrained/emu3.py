"""Emu3's vision tokenizer (transformers' `Emu3VQVAE`) behind mmtok's video contract.

    tok = mmtok.load("hf:BAAI/Emu3-Gen-hf")   # a hub id, hf:/local/dir, or a local folder
    codes = tok.encode(x)            # [B,3,T,H,W] in [-1,1] -> [B,ceil(T/4),ceil(H/8),ceil(W/8)] int64
    x2 = tok.decode(codes, size=(T, H, W))
    image_codes = tok.encode(image[:, :, None])[:, 0]   # an image is a 1-frame video: [B,h,w]
    image_codes = tok.for_media("image").encode(image)   # the same, as an image tokenizer

Kind `hf-emu3` wraps the transformers model as `tok.model`, so `state_dict`, `parameters` and
the fingerprint are the transformers weights. Emu3's published VQ weights in transformers'
format live inside the full Emu3 checkpoints (model_type "emu3", e.g. hf:BAAI/Emu3-Gen-hf,
hf:BAAI/Emu3-Chat-hf): for those only the `vqmodel.*` tensors are read, and only the shards
that hold them are downloaded. A folder holding an `Emu3VQVAE` alone (model_type
"emu3_vqgan", what `save_pretrained` here writes) loads directly. BAAI/Emu3-VisionTokenizer is
the original remote-code release (model_type "Emu3VisionVQ", other layer names) and is refused
with a pointer to the transformers checkpoints.

What Emu3VQVAE does, and how the adapter maps it (transformers 5.x, `modeling_emu3.py`):

- Pixels: `encode(pixel_values, image_sizes)` takes images `[B,C,H,W]` or videos `[B,T,C,H,W]`
  (time before channels) normalised by Emu3's image processor, `(p / 255 - mean) / std`.
  Emu3's own processor (BAAI/Emu3-VisionTokenizer) uses mean = std = 0.5, i.e. exactly mmtok's
  [-1,1], which is the default here; a `preprocessor_config.json` next to the weights overrides
  it (`image_mean` / `image_std` in the config, so the fingerprint covers them), and decoded
  pixels are mapped back the same way. Codes equal `Emu3VQVAE.encode` of what Emu3's image
  processor makes of the same uint8 image (without its resizing: mmtok pads H and W to
  multiples of 8 by reflection instead of resizing to Emu3's 512^2..1024^2 pixel budget).
- Images: Emu3 repeats an image `temporal_downsample_factor` (4) times and codes that clip as
  one latent frame. mmtok pads a video to whole groups by repeating its last frame, so a
  1-frame video is exactly that clip and its codes are Emu3's image codes. Decoding one latent
  frame gives 4 frames; Emu3's image decode keeps the first (`decode(codes, size=(1,H,W))`).
- Videos: frames are grouped, not first-frame-alone (`first_frame_alone = False`): latent frame
  j holds frames 4j..4j+3, `t = ceil(T/4)`. Each group is coded as an independent 4-frame clip,
  as Emu3's own `autoencode.py` (github.com/baaivision/Emu3) does (`images.view(-1, 4, C, H, W)`).
  Note that Emu3's temporal convolutions are causal (zero left padding), so one
  `Emu3VQVAE.encode` call on a whole multi-group video would give latent frames 1.. context from
  the groups before them, and different codes; the model was trained on 4-frame clips and the
  clip-wise coding is the reference's. Consequence: windows are independent groups, and
  `encode_windowed` / `decode_windowed` / the streams equal whole-video coding exactly.
- `image_sizes` (one `(height, width)` per sample) is for batches that Emu3's image processor
  zero-pads to a common size: each sample's codes are cropped to `[:height // 8, :width // 8]`
  and returned as a list. mmtok batches hold same-sized media, so nothing needs cropping and the
  adapter passes sizes that crop nothing. (Applied to video codes `[t,h,w]` the crop hits t and
  h, not h and w, so real sizes would be wrong there anyway.) Padding a small image into a
  bigger batch does not give its codes alone: the padding is in the receptive field.

`save_pretrained(dir)` writes a transformers folder (config.json + model.safetensors +
preprocessor_config.json, plus README.md) that `transformers.Emu3VQVAE.from_pretrained` and
`mmtok.load(dir)` read back with the same fingerprint. transformers is imported lazily.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmtok.configs import register_kind
from mmtok.errors import MmtokError, first_line
from mmtok.pretrained.base import PretrainedAdapter, PretrainedConfig, by_model_type
from mmtok.pretrained.registry import load
from mmtok.pretrained.spec import Source, peek_model_type
from mmtok.quantize.nearest import cached_index
from mmtok.video.base import VideoTokenizer

VQ_MODEL_TYPE = "emu3_vqgan"  # transformers' Emu3VQVAEConfig
FULL_MODEL_TYPE = "emu3"  # transformers' Emu3Config: LLM + `vqmodel`
REMOTE_CODE_MODEL_TYPE = "Emu3VisionVQ"  # BAAI/Emu3-VisionTokenizer (trust_remote_code)
# Prefixes of the VQ tensors in a full Emu3 checkpoint: the hub layout (transformers 5 writes it
# too) and the in-memory one of Emu3ForConditionalGeneration.
VQ_PREFIXES = ("vqmodel.", "model.vqmodel.")
PREPROCESSOR_NAME = "preprocessor_config.json"
EMU3_MEAN_STD = (0.5, 0.5, 0.5)  # BAAI's Emu3VisionVQImageProcessor: pixels in [-1,1]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # transformers' Emu3ImageProcessor defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Emu3VideoConfig(PretrainedConfig):
    """An Emu3VQVAE as an mmtok config: its transformers config as canonical JSON (see
    `mmtok.pretrained.base`) and the image processor's per-channel normalisation."""

    image_mean: tuple[float, ...] = EMU3_MEAN_STD
    image_std: tuple[float, ...] = EMU3_MEAN_STD

    def __post_init__(self) -> None:
        for name in ("image_mean", "image_std"):  # lists (JSON) become tuples: hashable, comparable
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError(f"image_mean / image_std must be 3 values (std > 0), got {self.image_mean} / {self.image_std}")


def _exact_quantize(self: nn.Module, hidden_state: torch.Tensor) -> torch.Tensor:
    """`Emu3VQVAEVectorQuantizer.forward` with mmtok's exact search: `[B,T,C,H,W]` -> ids `[B,T,H,W]`."""
    b, t, c, h, w = hidden_state.shape
    flat = hidden_state.permute(0, 1, 3, 4, 2).reshape(-1, c)
    return cached_index(self, self.embedding.weight).search(flat).reshape(b, t, h, w)


@register_kind
class Emu3VideoTokenizer(PretrainedAdapter, VideoTokenizer):
    """Emu3's VQ tokenizer (`transformers.Emu3VQVAE`): 4x temporal, 8x spatial, 32768 codes for
    the released weights (the factors come from the config). Frames are coded in independent
    groups of `temporal_downsample` (see the module docstring), so windowed coding is exact.
    It codes images too, as one-frame videos."""

    kind = "hf-emu3"
    config_class = Emu3VideoConfig
    hf_model_class = "Emu3VQVAE"
    model_type = VQ_MODEL_TYPE
    submodels = {FULL_MODEL_TYPE: VQ_PREFIXES}  # a full Emu3 checkpoint: only its `vqmodel` is read
    refused = {
        REMOTE_CODE_MODEL_TYPE: (
            f"is the original remote-code Emu3 vision tokenizer (model_type '{REMOTE_CODE_MODEL_TYPE}', e.g. "
            "BAAI/Emu3-VisionTokenizer), which transformers' Emu3VQVAE does not read; use a transformers Emu3 "
            "checkpoint such as hf:BAAI/Emu3-Gen-hf or hf:BAAI/Emu3-Chat-hf (its vqmodel is the same tokenizer)"
        )
    }
    media_types = ("video", "image")
    exact_search = {"Emu3VQVAEVectorQuantizer": ("forward", _exact_quantize)}
    first_frame_alone = False

    def _setup(self, hf_config: Any) -> None:
        self._temporal = int(hf_config.temporal_downsample_factor)
        self._spatial = 2 ** (len(hf_config.channel_multiplier) - 1)
        self._codebook_size = int(hf_config.codebook_size)
        # (x + 1) / 2 is the processor's p / 255; None: the normalisation is the identity
        config = self.config
        mean, std = torch.tensor(config.image_mean), torch.tensor(config.image_std)
        self._norm = None if config.image_mean == config.image_std == EMU3_MEAN_STD else (mean.view(1, 3, 1, 1, 1), std.view(1, 3, 1, 1, 1))

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.in_channels != 3 or hf_config.out_channels != 3:
            channels = f"{hf_config.in_channels} input / {hf_config.out_channels} output channels"
            raise MmtokError(f"{source}: this Emu3VQVAE has {channels}; mmtok video is RGB (3 channels)")
        ft = hf_config.temporal_downsample_factor
        if ft < 1 or ft & (ft - 1):
            raise MmtokError(f"{source}: temporal_downsample_factor {ft} is not a power of two; Emu3VQVAE builds log2(factor) temporal layers")

    # -- facts ----------------------------------------------------------------------------
    @property
    def temporal_downsample(self) -> int:
        return self._temporal

    @property
    def spatial_downsample(self) -> int:
        return self._spatial

    @property
    def codebook_size(self) -> int:
        return self._codebook_size

    # -- pixels <-> Emu3's normalised pixels ----------------------------------------------
    def to_pixel_values(self, x: torch.Tensor) -> torch.Tensor:
        """`[B,3,T,H,W]` in [-1,1] -> what Emu3's image processor gives for the same pixels."""
        if self._norm is None:
            return x
        mean, std = (v.to(x.device) for v in self._norm)
        return ((x + 1) / 2 - mean) / std

    def from_pixel_values(self, y: torch.Tensor) -> torch.Tensor:
        if self._norm is None:
            return y
        mean, std = (v.to(y.device) for v in self._norm)
        return (y * std + mean) * 2 - 1

    # -- coding ---------------------------------------------------------------------------
    def _encode_padded(self, x: torch.Tensor) -> torch.Tensor:
        b, _, frames, height, width = x.shape
        ft, f = self._temporal, self._spatial
        t, h, w = frames // ft, height // f, width // f
        # one independent clip [ft,3,H,W] per latent frame, as Emu3's autoencode.py codes videos
        clips = self.to_pixel_values(x).permute(0, 2, 1, 3, 4).reshape(b * t, ft, 3, height, width)
        side = max(height, width)  # image_sizes that crop nothing (see the module docstring)
        sizes = torch.tensor([[side, side]] * clips.shape[0], device=x.device)
        tokens = self.model.encode(clips.to(self._dtype), sizes, return_dict=True).image_tokens
        codes = torch.stack(list(tokens))  # [b*t, 1, h, w]
        if codes.shape != (b * t, 1, h, w):
            raise MmtokError(
                f"{self.kind}: the model coded a {ft}x{height}x{width} clip as {tuple(codes.shape[1:])}, not "
                f"(1, {h}, {w}); this config's factors do not match its layers"
            )
        return codes.reshape(b, t, h, w).long()

    def _decode_latents(self, codes: torch.Tensor) -> torch.Tensor:
        b, t, h, w = codes.shape
        video = self.model.decode(codes.reshape(b * t, 1, h, w))  # [b*t, ft, 3, H, W]
        video = video.float().reshape(b, t * self._temporal, *video.shape[2:]).permute(0, 2, 1, 3, 4)
        return self.from_pixel_values(video)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(temporal_downsample=self.temporal_downsample, spatial_downsample=self.spatial_downsample, first_frame_alone=False)
        return info

    # -- loading and saving ------------------------------------------------------------------
    @classmethod
    def _wrap(cls, model: nn.Module, source: Source) -> Emu3VideoTokenizer:
        mean, std = _normalisation(source)
        return cls.from_model(model.float().eval(), image_mean=mean, image_std=std)

    def _save_beside(self, folder: Path) -> None:
        import transformers  # an Emu3ImageProcessor with this normalisation

        processor = transformers.Emu3ImageProcessor(image_mean=list(self.config.image_mean), image_std=list(self.config.image_std))
        processor.save_pretrained(folder)

    def _card_title(self) -> str:
        return f"Emu3 vision tokenizer (transformers `{self.hf_model_class}`, mmtok kind `{self.kind}`)"

    def _card_facts(self) -> list[str]:
        return [
            f"{self.temporal_downsample}x temporal (independent groups of {self.temporal_downsample} frames), "
            f"{self.spatial_downsample}x spatial, {self.codebook_size} codes",
            f"pixel normalisation: mean {list(self.config.image_mean)}, std {list(self.config.image_std)}",
        ]

    def _card_origin(self) -> str:
        return " (BAAI Emu3)"


# -- loading ------------------------------------------------------------------------------
_WHAT = "pass a folder saved by transformers holding an Emu3VQVAE (or a full Emu3 model), or hf:ORG/NAME"


def load_emu3(spec: str | Path) -> Emu3VideoTokenizer:
    """Load an Emu3 VQ tokenizer through transformers, in eval mode, float32; like `mmtok.load`,
    but anything else is refused.

    `spec`: "hf:ORG/NAME" (a hub id, e.g. hf:BAAI/Emu3-Gen-hf), "hf:/local/folder", or a local
    folder saved by transformers (an Emu3VQVAE, or a full Emu3 model whose `vqmodel` is taken)
    or by `save_pretrained` here. `name_or_path` is set as `mmtok.pretrained.spec.Source`
    says, so token files can find the tokenizer again. Failures raise MmtokError.
    """
    return load(spec, (Emu3VideoTokenizer,), _WHAT, "an Emu3 VQ model")


def is_emu3_spec(spec: str | Path) -> bool:
    """True if `spec` names an Emu3 model without asking the network: a local folder (plain or
    "hf:/path") or a hub id in the local cache whose config.json has model_type "emu3_vqgan",
    "emu3" or "Emu3VisionVQ" (the last to refuse it clearly) and no mmtok `format_version`."""
    return peek_model_type(spec) in by_model_type((Emu3VideoTokenizer,))


def _normalisation(source: Source) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from the model's preprocessor_config.json, as Emu3's image processor applies
    them; Emu3's own (0.5, 0.5) when there is none."""
    from transformers.utils import cached_file

    spec = source.spec
    try:
        found = cached_file(source.where, PREPROCESSOR_NAME, subfolder=source.subfolder, _raise_exceptions_for_missing_entries=False)
        if found is None:
            return EMU3_MEAN_STD, EMU3_MEAN_STD
        meta = json.loads(Path(found).read_text())
    except Exception as err:
        raise MmtokError(f"{spec}: cannot read {PREPROCESSOR_NAME} ({first_line(err, 300, typed=True)}); {source.advice}") from None
    if not meta.get("do_rescale", True) or not math.isclose(meta.get("rescale_factor", 1 / 255), 1 / 255):
        raise MmtokError(f"{spec}: {PREPROCESSOR_NAME} does not rescale pixels by 1/255; mmtok cannot reproduce its input range")
    if not meta.get("do_normalize", True):
        return (0.0,) * 3, (1.0,) * 3

    def triple(value: Any, default: tuple[float, ...]) -> tuple[float, ...]:
        value = default if value is None else value
        value = [value] * 3 if isinstance(value, (int, float)) else list(value)
        if len(value) != 3:
            raise MmtokError(f"{spec}: {PREPROCESSOR_NAME} has {len(value)} normalisation values, not 3 (RGB)")
        return tuple(float(v) for v in value)

    return triple(meta.get("image_mean"), CLIP_MEAN), triple(meta.get("image_std"), CLIP_STD)
