"""Emu3's vision tokenizer (transformers' `Emu3VQVAE`) behind mmtok's video contract.

    tok = load_emu3("hf:BAAI/Emu3-Gen-hf")    # a hub id, hf:/local/dir, or a local folder
    codes = tok.encode(x)            # [B,3,T,H,W] in [-1,1] -> [B,ceil(T/4),ceil(H/8),ceil(W/8)] int64
    x2 = tok.decode(codes, size=(T, H, W))
    image_codes = tok.encode(image[:, :, None])[:, 0]   # an image is a 1-frame video: [B,h,w]

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
`load_emu3(dir)` read back with the same fingerprint. transformers is imported lazily.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmtok.audio.pretrained import canonical_hf_config
from mmtok.checkpoint import rounded_state
from mmtok.errors import MmtokError
from mmtok.files import replace_directory
from mmtok.hf_spec import HF_PREFIX, resolve_spec
from mmtok.quantize.pretrained_search import use_exact_search
from mmtok.tokenizer import register_kind
from mmtok.video.base import VideoTokenizer

VQ_MODEL_TYPE = "emu3_vqgan"  # transformers' Emu3VQVAEConfig
FULL_MODEL_TYPE = "emu3"  # transformers' Emu3Config: LLM + `vqmodel`
REMOTE_CODE_MODEL_TYPE = "Emu3VisionVQ"  # BAAI/Emu3-VisionTokenizer (trust_remote_code)
MODEL_TYPES = (VQ_MODEL_TYPE, FULL_MODEL_TYPE)
# Prefixes of the VQ tensors in a full Emu3 checkpoint: the hub layout (transformers 5 writes it
# too) and the in-memory one of Emu3ForConditionalGeneration.
VQ_PREFIXES = ("vqmodel.", "model.vqmodel.")
PREPROCESSOR_NAME = "preprocessor_config.json"
EMU3_MEAN_STD = (0.5, 0.5, 0.5)  # BAAI's Emu3VisionVQImageProcessor: pixels in [-1,1]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # transformers' Emu3ImageProcessor defaults
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Emu3VideoConfig:
    """An Emu3VQVAE as an mmtok config: its transformers config as canonical JSON (sorted keys,
    no save/load bookkeeping keys) and the image processor's per-channel normalisation."""

    model_type: str
    hf_config: str
    image_mean: tuple[float, ...] = EMU3_MEAN_STD
    image_std: tuple[float, ...] = EMU3_MEAN_STD

    def __post_init__(self) -> None:
        for name in ("image_mean", "image_std"):  # lists (JSON) become tuples: hashable, comparable
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError(f"image_mean / image_std must be 3 values (std > 0), got {self.image_mean} / {self.image_std}")


@register_kind
class Emu3VideoTokenizer(VideoTokenizer):
    """Emu3's VQ tokenizer (`transformers.Emu3VQVAE`): 4x temporal, 8x spatial, 32768 codes for
    the released weights (the factors come from the config). Frames are coded in independent
    groups of `temporal_downsample` (see the module docstring), so windowed coding is exact."""

    kind = "hf-emu3"
    config_class = Emu3VideoConfig
    hf_model_class = "Emu3VQVAE"
    first_frame_alone = False

    def __init__(self, config: Emu3VideoConfig, model: nn.Module | None = None):
        """Wrap `model`, or build a randomly initialised one from `config`; `load_emu3` is the
        usual way in."""
        super().__init__(config)
        if config.model_type != VQ_MODEL_TYPE:
            raise MmtokError(f"{type(self).__name__} wraps '{VQ_MODEL_TYPE}' models, not '{config.model_type}'")
        import transformers

        hf_config = model.config if model is not None else transformers.Emu3VQVAEConfig.from_dict(json.loads(config.hf_config))
        check_hf_config(hf_config, self.kind)
        self.model = (model if model is not None else transformers.Emu3VQVAE(hf_config)).eval()
        use_exact_search(self.model)  # bounded-memory exact nearest codes (mmtok.quantize.nearest)
        self._temporal = int(hf_config.temporal_downsample_factor)
        self._spatial = 2 ** (len(hf_config.channel_multiplier) - 1)
        self._codebook_size = int(hf_config.codebook_size)
        # (x + 1) / 2 is the processor's p / 255; None: the normalisation is the identity
        mean, std = torch.tensor(config.image_mean), torch.tensor(config.image_std)
        self._norm = None if config.image_mean == config.image_std == EMU3_MEAN_STD else (mean.view(1, 3, 1, 1, 1), std.view(1, 3, 1, 1, 1))

    @classmethod
    def from_model(cls, model: nn.Module, image_mean=EMU3_MEAN_STD, image_std=EMU3_MEAN_STD) -> Emu3VideoTokenizer:
        """Wrap an already built `transformers.Emu3VQVAE` (its weights are used as they are)."""
        config = Emu3VideoConfig(VQ_MODEL_TYPE, canonical_hf_config(model.config), tuple(map(float, image_mean)), tuple(map(float, image_std)))
        return cls(config, model)

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

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

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

    # -- persistence ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, model_card: str | None = None, dtype: torch.dtype | None = None) -> Path:
        """Write a transformers folder: config.json + model.safetensors (`model.save_pretrained`),
        preprocessor_config.json (an `Emu3ImageProcessor` with this normalisation) and README.md,
        atomically. `dtype=torch.float16` stores half-precision weights; the in-memory weights
        are rounded to it first, in place, so the fingerprint is the one `load_emu3` (which
        loads float32) reproduces."""
        import transformers

        directory = Path(directory).resolve()
        state = None if dtype is None else rounded_state(self.model, dtype)
        self.invalidate_fingerprint()

        def fill(tmp: Path) -> None:
            self.model.save_pretrained(tmp, state_dict=state)
            processor = transformers.Emu3ImageProcessor(image_mean=list(self.config.image_mean), image_std=list(self.config.image_std))
            processor.save_pretrained(tmp)
            existing = directory / "README.md"
            card = model_card if model_card is not None else existing.read_text() if existing.is_file() else self._model_card()
            (tmp / "README.md").write_text(card)

        return replace_directory(directory, fill)

    def _model_card(self) -> str:
        return (
            f"# Emu3 vision tokenizer (transformers `{self.hf_model_class}`, mmtok kind `{self.kind}`)\n\n"
            f"- loaded from: {self.name_or_path or 'unknown'}\n- {self.temporal_downsample}x temporal (independent groups of "
            f"{self.temporal_downsample} frames), {self.spatial_downsample}x spatial, {self.codebook_size} codes\n"
            f"- pixel normalisation: mean {list(self.config.image_mean)}, std {list(self.config.image_std)}\n"
            f"- fingerprint: `{self.fingerprint}`\n\nLoad with `transformers.{self.hf_model_class}.from_pretrained` "
            "or `mmtok.video.pretrained.load_emu3`. Licence and training data: see the original model (BAAI Emu3).\n"
        )


def check_hf_config(hf_config: Any, source: str) -> None:
    """Raise MmtokError for Emu3VQVAE configs whose media this adapter cannot represent."""
    if hf_config.in_channels != 3 or hf_config.out_channels != 3:
        channels = f"{hf_config.in_channels} input / {hf_config.out_channels} output channels"
        raise MmtokError(f"{source}: this Emu3VQVAE has {channels}; mmtok video is RGB (3 channels)")
    ft = hf_config.temporal_downsample_factor
    if ft < 1 or ft & (ft - 1):
        raise MmtokError(f"{source}: temporal_downsample_factor {ft} is not a power of two; Emu3VQVAE builds log2(factor) temporal layers")


# -- loading ------------------------------------------------------------------------------
def is_emu3_spec(spec: str | Path) -> bool:
    """True if `spec` names an Emu3 model: a local folder (plain or "hf:/path") or a hub id
    ("hf:ORG/NAME", whose config.json is fetched, or read from the cache) whose config.json has
    model_type "emu3_vqgan", "emu3" or "Emu3VisionVQ" (the last to refuse it clearly) and no
    mmtok `format_version`. False when the config cannot be read: the caller's loader reports
    that."""
    text = str(spec)
    target = text[len(HF_PREFIX) :] if text.startswith(HF_PREFIX) else text
    if not target:
        return False
    local = Path(target).expanduser()
    if local.is_dir():
        path = local / "config.json"
    elif text.startswith(HF_PREFIX) and not target.startswith(("/", ".", "~")):
        from transformers.utils import cached_file

        from mmtok.hf_spec import go_offline_unless_hub_answers

        go_offline_unless_hub_answers()  # an unreachable hub: the cache answers at once

        try:
            found = cached_file(target, "config.json", _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False)
        except Exception:  # invalid ids and hub errors: not ours to report
            return False
        if found is None:
            return False
        path = Path(found)
    else:
        return False
    from mmtok.files import sniff_json

    meta = sniff_json(path)  # (a FIFO or a deeply nested file: not Emu3; the loader reports it)
    return isinstance(meta, dict) and meta.get("model_type") in (*MODEL_TYPES, REMOTE_CODE_MODEL_TYPE) and "format_version" not in meta


def load_emu3(spec: str | Path) -> Emu3VideoTokenizer:
    """Load an Emu3 VQ tokenizer through transformers, in eval mode, float32.

    `spec`: "hf:ORG/NAME" (a hub id, e.g. hf:BAAI/Emu3-Gen-hf), "hf:/local/folder", or a local
    folder saved by transformers (an Emu3VQVAE, or a full Emu3 model whose `vqmodel` is taken)
    or by `save_pretrained` here. `name_or_path` is set like the audio adapters do ("hf:" + the
    absolute path for hf:/local specs, the absolute path for plain folders, the spec for hub
    ids) so token files can find the tokenizer again. Failures raise MmtokError.
    """
    where, name_or_path, hub = resolve_spec(spec, _check_local)
    return _load(where, str(spec), name_or_path, hub=hub)


_WHAT = "pass a folder saved by transformers holding an Emu3VQVAE (or a full Emu3 model), or hf:ORG/NAME"


def _remote_code_error(spec: str) -> MmtokError:
    return MmtokError(
        f"{spec}: is the original remote-code Emu3 vision tokenizer (model_type '{REMOTE_CODE_MODEL_TYPE}', e.g. "
        "BAAI/Emu3-VisionTokenizer), which transformers' Emu3VQVAE does not read; use a transformers Emu3 "
        "checkpoint such as hf:BAAI/Emu3-Gen-hf or hf:BAAI/Emu3-Chat-hf (its vqmodel is the same tokenizer)"
    )


def _check_model_type(meta: dict, spec: str, where: str) -> None:
    model_type = meta.get("model_type")
    if model_type == REMOTE_CODE_MODEL_TYPE:
        raise _remote_code_error(spec)
    if model_type not in MODEL_TYPES:
        raise MmtokError(f"{where}: model_type {model_type!r} is not an Emu3 VQ model (known: {list(MODEL_TYPES)}); {_WHAT}")


def _check_local(directory: Path, spec: str) -> None:
    """Clear errors for local folders before transformers gives its longer ones."""
    if not directory.is_dir():
        raise MmtokError(f"{spec}: no such folder; {_WHAT}")
    path = directory / "config.json"
    if not path.is_file():
        raise MmtokError(f"{spec}: missing config.json; {_WHAT}")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise MmtokError(f"{path}: not valid JSON ({err}); re-download or re-save the model") from None
    if not isinstance(meta, dict):
        raise MmtokError(f"{path}: not a transformers config (a JSON object); {_WHAT}")
    if "format_version" in meta:
        raise MmtokError(f"{spec}: is an mmtok tokenizer folder, not a transformers one; load it with mmtok.load")
    _check_model_type(meta, spec, str(path))


def _load(source: str, spec: str, name: str, hub: bool) -> Emu3VideoTokenizer:
    import transformers
    from transformers.utils import cached_file

    advice = (
        "check the id and the network (and that HF_HUB_OFFLINE is unset), or download the model and pass its folder"
        if hub
        else "re-download or re-save the model"
    )
    try:
        meta = json.loads(Path(cached_file(source, "config.json")).read_text())
        if hub:
            _check_model_type(meta, spec, spec)
        # from a full Emu3 config this takes its vq_config (Emu3VQVAEConfig.base_config_key)
        hf_config = transformers.Emu3VQVAEConfig.from_pretrained(source)
    except MmtokError:
        raise
    except Exception as err:  # hub, file and validation errors come in many types
        raise MmtokError(f"{spec}: cannot read the model config ({_one_line(err)}); {advice}") from None
    check_hf_config(hf_config, spec)  # before loading weights that could not be used
    if meta["model_type"] == VQ_MODEL_TYPE:
        try:
            model, info = transformers.Emu3VQVAE.from_pretrained(source, config=hf_config, dtype=torch.float32, output_loading_info=True)
        except Exception as err:
            raise MmtokError(f"{spec}: cannot load the model weights ({_one_line(err)}); {advice}") from None
        missing = sorted(info["missing_keys"])
    else:
        model, missing = _vq_from_full_model(source, spec, hf_config, advice)
    # transformers fills missing weights with random ones and only warns: a tokenizer with
    # random layers would make wrong codes under a valid fingerprint, so be strict.
    if missing:
        raise MmtokError(f"{spec}: the weights lack {len(missing)} tensors ({missing[:3]}); the checkpoint is incomplete or from another version")
    mean, std = _normalisation(source, spec, advice)
    tok = Emu3VideoTokenizer.from_model(model.float().eval(), mean, std)
    tok.name_or_path = name
    return tok.eval()


def _vq_from_full_model(source: str, spec: str, hf_config: Any, advice: str) -> tuple[nn.Module, list[str]]:
    """The `vqmodel` of a full Emu3 checkpoint, reading (and downloading) only the safetensors
    files that hold its tensors. Returns the model and the names of tensors it lacks."""
    import transformers
    from safetensors import safe_open
    from transformers.utils import cached_file

    try:
        index = cached_file(source, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
        if index is not None:
            weight_map = json.loads(Path(index).read_text())["weight_map"]
        else:
            single = cached_file(source, "model.safetensors", _raise_exceptions_for_missing_entries=False)
            if single is None:
                raise MmtokError(f"{spec}: no model.safetensors(.index.json) found; only safetensors Emu3 checkpoints are read")
            with safe_open(single, "pt") as f:
                weight_map = dict.fromkeys(f.keys(), "model.safetensors")
        wanted = {key: shard for key, shard in weight_map.items() if key.startswith(VQ_PREFIXES)}
        if not wanted:
            raise MmtokError(f"{spec}: this Emu3 checkpoint holds no vqmodel tensors (keys starting with {list(VQ_PREFIXES)})")
        state = {}
        for shard in sorted(set(wanted.values())):
            with safe_open(cached_file(source, shard), "pt") as f:
                for key in (k for k, s in wanted.items() if s == shard):
                    state[key.split("vqmodel.", 1)[1]] = f.get_tensor(key)
    except MmtokError:
        raise
    except Exception as err:
        raise MmtokError(f"{spec}: cannot load the model weights ({_one_line(err)}); {advice}") from None
    model = transformers.Emu3VQVAE(hf_config)
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        unexpected = sorted(result.unexpected_keys)
        raise MmtokError(
            f"{spec}: the vqmodel weights have {len(unexpected)} tensors this Emu3VQVAE lacks ({unexpected[:3]}); "
            "the checkpoint is from another version"
        )
    return model, sorted(result.missing_keys)


def _normalisation(source: str, spec: str, advice: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) from the model's preprocessor_config.json, as Emu3's image processor applies
    them; Emu3's own (0.5, 0.5) when there is none."""
    from transformers.utils import cached_file

    try:
        found = cached_file(source, PREPROCESSOR_NAME, _raise_exceptions_for_missing_entries=False)
        if found is None:
            return EMU3_MEAN_STD, EMU3_MEAN_STD
        meta = json.loads(Path(found).read_text())
    except Exception as err:
        raise MmtokError(f"{spec}: cannot read {PREPROCESSOR_NAME} ({_one_line(err)}); {advice}") from None
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


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"
