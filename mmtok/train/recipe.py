"""Training recipes: a YAML file with the tokenizer kind, its model config and the
training settings. `mmtok train image --config recipe.yaml` reads one; without a file the
defaults below apply. The recipe is copied next to the trained tokenizer so every shipped
tokenizer can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import mmtok.kinds  # noqa: F401  (registers every built-in kind, so a recipe may name any)
from mmtok.configs import KINDS, config_from_dict, config_to_dict
from mmtok.errors import MmtokError
from mmtok.files import require_regular_file


@dataclass(frozen=True)
class TrainConfig:
    """Settings every modality shares (the modality's subclass adds its data and loss knobs)."""

    steps: int = 20000
    batch_size: int = 16              # per process
    lr: float = 4e-4
    min_lr_ratio: float = 0.1         # cosine decay to lr * min_lr_ratio
    warmup_steps: int = 500
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    adv_weight: float = 0.0           # > 0 enables the modality's discriminator (hinge loss)
    adv_start: int = 0                # step at which the adversarial term switches on
    exclude: tuple[str, ...] = ()     # glob patterns of files to leave out (held-out test set)
    seed: int = 0
    num_workers: int = 0
    log_every: int = 50
    checkpoint_every: int = 1000

    def __post_init__(self) -> None:
        for name in self.positive_fields():
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be in [0, 1), got {self.betas}")
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")

    @classmethod
    def positive_fields(cls) -> tuple[str, ...]:
        """Fields that must be > 0 (numbers are >= 0 already: see `config_from_dict`)."""
        return ("steps", "batch_size", "lr", "log_every", "checkpoint_every")


@dataclass(frozen=True)
class ImageTrainConfig(TrainConfig):
    crop_size: int = 64               # random square crops, multiple of the downsample factor
    l1_weight: float = 1.0
    l2_weight: float = 1.0

    @classmethod
    def positive_fields(cls) -> tuple[str, ...]:
        return (*super().positive_fields(), "crop_size")


@dataclass(frozen=True)
class AudioTrainConfig(TrainConfig):
    batch_size: int = 8
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.9)   # EnCodec / DAC
    segment_seconds: float = 0.8      # random segments, rounded to whole frames
    mel_weight: float = 1.0           # multi-scale mel (log + linear L1)
    stft_weight: float = 1.0          # multi-resolution STFT (spectral convergence + log L1)
    l1_weight: float = 0.1            # waveform L1
    feature_weight: float = 2.0       # feature matching, with the discriminator on

    @classmethod
    def positive_fields(cls) -> tuple[str, ...]:
        return (*super().positive_fields(), "segment_seconds")


@dataclass(frozen=True)
class VideoTrainConfig(TrainConfig):
    batch_size: int = 8
    clip_frames: int = 9              # 1 + a multiple of the temporal factor
    crop_size: int = 64               # random square crops, multiple of the spatial factor
    max_frame_stride: int = 2         # clips take every k-th frame, k drawn from 1..this
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    temporal_weight: float = 1.0      # L1 between frame differences (flicker)
    init_from: str = ""               # image tokenizer folder to inflate into the new model (see video/inflate.py)

    @classmethod
    def positive_fields(cls) -> tuple[str, ...]:
        return (*super().positive_fields(), "clip_frames", "crop_size", "max_frame_stride")


TRAIN_CONFIGS: dict[str, type[TrainConfig]] = {"image": ImageTrainConfig, "audio": AudioTrainConfig, "video": VideoTrainConfig}


@dataclass(frozen=True)
class Recipe:
    kind: str
    model: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    source: str = field(default="default recipe", compare=False)  # the file it was read from, for errors

    def to_yaml(self) -> str:
        data = {"kind": self.kind, "model": config_to_dict(self.model), "train": config_to_dict(self.train)}
        return yaml.safe_dump(data, sort_keys=False)


DEFAULT_KIND = {"image": "image-vq", "audio": "audio-codec", "video": "video-causal-vq"}


def load_recipe(path: Path | None, modality: str) -> Recipe:
    """Read a recipe YAML (or the modality's defaults when `path` is None)."""
    data: dict[str, Any] = {}
    if path is not None:
        if Path(path).exists():
            require_regular_file(Path(path))
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise MmtokError(f"{path}: no such recipe file; check the --config path") from None
        except (OSError, UnicodeDecodeError) as err:
            raise MmtokError(f"{path}: cannot read the recipe ({err}); pass a YAML file") from None
        except yaml.YAMLError as err:
            raise MmtokError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise MmtokError(f"{path}: a recipe is a mapping with keys kind, model, train")
        unknown = set(data) - {"kind", "model", "train"}
        if unknown:
            raise MmtokError(f"{path}: unknown recipe keys {sorted(unknown)}; use kind, model, train")
    kind = data.get("kind", DEFAULT_KIND.get(modality))
    if not isinstance(kind, str) or kind not in KINDS or KINDS[kind].modality != modality or not KINDS[kind].trainable:
        options = sorted(k for k, c in KINDS.items() if c.modality == modality and c.trainable)
        raise MmtokError(f"{path}: kind {kind!r} is not a {modality} tokenizer; use one of {options}")
    source = str(path or "default recipe")
    model = config_from_dict(KINDS[kind].config_class, data.get("model") or {}, source)
    train = config_from_dict(TRAIN_CONFIGS[modality], data.get("train") or {}, source)
    return Recipe(kind=kind, model=model, train=train, source=source)
