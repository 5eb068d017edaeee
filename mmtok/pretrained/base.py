"""What every transformers-backed tokenizer shares: its config, wrapping a transformers model,
strict loading, saving a transformers folder, and its model card.

An adapter wraps the transformers model as `tok.model`, so `state_dict`, `parameters` and
the fingerprint are the transformers weights. Its mmtok config is the transformers config as
canonical JSON (`PretrainedConfig`), so the fingerprint covers architecture and weights but
not where they were loaded from, and an mmtok config rebuilds the same (randomly initialised)
model, as the `Tokenizer` contract asks. transformers is imported lazily: importing it takes
seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmtok.checkpoint import rounded_state
from mmtok.config_json import CONFIG_NAME
from mmtok.errors import MmtokError, first_line
from mmtok.files import replace_directory
from mmtok.pretrained.exact_search import Replacements, use_exact_search
from mmtok.pretrained.spec import Source, read_transformers_config, resolve_spec
from mmtok.pretrained.submodel import load_submodel
from mmtok.tokenizer import Tokenizer

# Config keys that record where and how a model was saved, not what it computes. They are left
# out of the fingerprinted config so that a save / load round trip keeps the fingerprint.
_VOLATILE_KEYS = frozenset({"_name_or_path", "architectures", "dtype", "torch_dtype", "transformers_version", "_commit_hash"})
CARD_NAME = "README.md"


@dataclass(frozen=True)
class PretrainedConfig:
    """A transformers model as an mmtok config: the `model_type` of its transformers config and
    that config as canonical JSON (`canonical_hf_config`)."""

    model_type: str
    hf_config: str


def canonical_hf_config(hf_config: Any) -> str:
    """A transformers config as the JSON string `PretrainedConfig.hf_config` holds: sorted
    keys, no save/load bookkeeping keys."""
    values = {k: v for k, v in hf_config.to_dict().items() if k not in _VOLATILE_KEYS}
    return json.dumps(values, sort_keys=True)


class PretrainedAdapter(Tokenizer):
    """Base of the transformers adapters; put it before the media base, e.g.
    `class HFDac(PretrainedAudioCodec)` or `class Emu3VideoTokenizer(PretrainedAdapter, VideoTokenizer)`.

    A family declares:

    - `kind` (the mmtok kind, "hf-..."), `hf_model_class` (the class name in `transformers`)
      and `model_type` (what that class's config calls itself; the mmtok config holds it);
    - `submodels` when it also reads the model out of bigger checkpoints (Emu3's VQ inside a
      full Emu3 model): their model_type -> the name prefixes of the model's tensors there
      (see `submodel.py`), and `submodel_parts` when the model is several modules under
      those prefixes (GLM-Image: `visual.` and `vqmodel.` under `model.`). `model_types`,
      the config.json model_types it loads from, are `model_type` and these;
    - `refused`: model_types that are recognisably this family but cannot be loaded, with
      the reason and what to use instead (e.g. a remote-code release);
    - `media_types` when it codes more than its base's `modality` (Emu3: video and image);
    - `exact_search`: its codebook module's nearest-code method, replaced by mmtok's exact
      bounded-memory search (`exact_search.py`);

    and implements `_setup(hf_config)` (the facts mmtok's media base needs), the media base's
    coding methods, and `_card_title` / `_card_facts` for the model card. `check_hf_config`,
    `_load_model`, `_wrap` and `_save_beside` are hooks for families that need more.
    """

    config_class: ClassVar[type] = PretrainedConfig
    trainable = False  # the weights come from transformers; mmtok's training loop does not apply
    hf_model_class: ClassVar[str]
    model_type: ClassVar[str]
    model_types: ClassVar[tuple[str, ...]] = ()
    refused: ClassVar[dict[str, str]] = {}
    submodels: ClassVar[dict[str, tuple[str, ...]]] = {}  # model_type of a bigger checkpoint -> tensor prefixes
    submodel_parts: ClassVar[tuple[str, ...]] = ("",)  # the model's own tensor name starts under those prefixes
    exact_search: ClassVar[Replacements] = {}  # see `exact_search.py`

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model_type" in vars(cls) and "model_types" not in vars(cls):
            cls.model_types = tuple(dict.fromkeys((cls.model_type, *cls.submodels)))

    def __init__(self, config: PretrainedConfig, model: nn.Module | None = None):
        """Wrap `model`, or build a randomly initialised one from `config` (what `Tokenizer`
        subclasses do); `mmtok.load` is the usual way in."""
        super().__init__(config)
        if config.model_type != self.model_type:
            raise MmtokError(f"{type(self).__name__} wraps '{self.model_type}' models, not '{config.model_type}'")
        model_class = self.transformers_class()
        hf_config = model.config if model is not None else model_class.config_class.from_dict(json.loads(config.hf_config))
        self.check_hf_config(hf_config, self.kind)
        self.model = (model if model is not None else model_class(hf_config)).eval()
        use_exact_search(self.model, self.exact_search)  # bounded-memory exact nearest codes
        self._setup(hf_config)

    @classmethod
    def transformers_class(cls) -> type:
        import transformers

        return getattr(transformers, cls.hf_model_class)

    @classmethod
    def from_model(cls, model: nn.Module, **fields: Any) -> PretrainedAdapter:
        """Wrap an already built transformers model (its weights are used as they are);
        `fields`: the config's fields beyond model_type and hf_config."""
        return cls(cls.config_class(cls.model_type, canonical_hf_config(model.config), **fields), model)

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        """Raise MmtokError for configs whose codes this adapter cannot represent."""

    def _setup(self, hf_config: Any) -> None:
        """Set the facts the media base needs (sample rate, factors, codebook size ...)."""
        raise NotImplementedError

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, spec: str | Path) -> PretrainedAdapter:
        """Load `spec` (a folder saved by transformers or by this adapter's `save_pretrained`,
        "hf:/folder" or "hf:ORG/NAME") with this adapter. `mmtok.load` picks the adapter from
        the config's model_type instead."""
        return load_among(spec, (cls,), "load it with mmtok.load", f"one {cls.__name__} loads")

    @classmethod
    def load_from(cls, source: Source, meta: dict[str, Any]) -> PretrainedAdapter:
        """Load from `source` (whose config.json, `meta`, has one of `model_types`), in eval
        mode, float32, strictly: a checkpoint that lacks weights is refused, since transformers
        would fill them with random ones and only warn, and a tokenizer with random layers
        would make wrong codes under a valid fingerprint."""
        try:
            hf_config = cls.transformers_class().config_class.from_pretrained(source.where, subfolder=source.subfolder)
        except Exception as err:  # hub, file and validation errors come in many types
            raise MmtokError(f"{source.spec}: cannot read the model config ({first_line(err, 300, typed=True)}); {source.advice}") from None
        cls.check_hf_config(hf_config, source.spec)  # before loading weights that could not be used
        try:
            model, missing = cls._load_model(source, meta, hf_config)
        except MmtokError:
            raise
        except Exception as err:
            raise MmtokError(f"{source.spec}: cannot load the model weights ({first_line(err, 300, typed=True)}); {source.advice}") from None
        if missing:
            raise MmtokError(
                f"{source.spec}: the weights lack {len(missing)} tensors ({missing[:3]}); the checkpoint is incomplete or from another version"
            )
        tok = cls._wrap(model, source)
        tok.name_or_path = source.name_or_path
        return tok.eval()

    @classmethod
    def _load_model(cls, source: Source, meta: dict[str, Any], hf_config: Any) -> tuple[nn.Module, list[str]]:
        """(the transformers model with its weights, names of the tensors it lacks)."""
        prefixes = cls.submodels.get(meta["model_type"])
        if prefixes is not None:
            return load_submodel(source, cls.transformers_class(), hf_config, prefixes, cls.submodel_parts)
        model, info = cls.transformers_class().from_pretrained(
            source.where, subfolder=source.subfolder, config=hf_config, dtype=torch.float32, output_loading_info=True
        )
        return model, sorted(info["missing_keys"])

    @classmethod
    def _wrap(cls, model: nn.Module, source: Source) -> PretrainedAdapter:
        """The adapter around a loaded model (families with files beside the weights read them here)."""
        return cls.from_model(model)

    # -- saving ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, model_card: str | None = None, dtype: torch.dtype | None = None) -> Path:
        """Write a transformers folder (config.json + model.safetensors by `model.save_pretrained`,
        what `_save_beside` adds, and README.md), atomically: a temp folder moved into place.
        transformers and `mmtok.load` read it back with the same fingerprint.

        `dtype=torch.float16` stores half-precision weights. The in-memory weights are rounded
        to it first, in place, so the fingerprint is the one a load (float32) reproduces.
        """
        directory = Path(directory).resolve()
        state = None if dtype is None else rounded_state(self.model, dtype)
        self.invalidate_fingerprint()

        def fill(tmp: Path) -> None:
            self.model.save_pretrained(tmp, state_dict=state)
            self._save_beside(tmp)
            existing = directory / CARD_NAME
            card = model_card if model_card is not None else existing.read_text() if existing.is_file() else self._model_card()
            (tmp / CARD_NAME).write_text(card)

        return replace_directory(directory, fill)

    def _save_beside(self, folder: Path) -> None:
        """Write files the model needs beside its weights (e.g. an image processor config)."""

    def _model_card(self) -> str:
        facts = "".join(f"- {fact}\n" for fact in self._card_facts())
        return (
            f"# {self._card_title()}\n\n- loaded from: {self.name_or_path or 'unknown'}\n{facts}"
            f"- fingerprint: `{self.fingerprint}`\n\nLoad with `transformers.{self.hf_model_class}.from_pretrained` "
            f"or `mmtok.load`. Licence and training data: see the original model{self._card_origin()}.\n"
        )

    def _card_title(self) -> str:
        return f"transformers `{self.hf_model_class}` (mmtok kind `{self.kind}`)"

    def _card_facts(self) -> list[str]:
        """One line per fact (no leading "- ")."""
        return []

    def _card_origin(self) -> str:
        return ""


def by_model_type(classes: Iterable[type[PretrainedAdapter]]) -> dict[str, type[PretrainedAdapter]]:
    """`model_type` -> adapter, for every model_type the `classes` load or refuse."""
    table: dict[str, type[PretrainedAdapter]] = {}
    for cls in classes:
        for model_type in (*cls.model_types, *cls.refused):
            if table.get(model_type, cls) is not cls:  # two families cannot both claim one model_type
                raise RuntimeError(f"model_type {model_type!r} is claimed by {table[model_type].__name__} and {cls.__name__}")
            table[model_type] = cls
    return table


def load_among(
    spec: str | Path, classes: Iterable[type[PretrainedAdapter]], what: str, unknown: str, meta: dict[str, Any] | None = None,
) -> PretrainedAdapter:
    """Load the transformers model `spec` names ("hf:ORG/NAME", "hf:/folder" or a folder) with
    the adapter among `classes` that its config.json's `model_type` picks. `meta`: that
    config.json when the caller has read it already (a local folder). Errors are one
    MmtokError line; `what` says what to pass instead and `unknown` names what the model_type
    should have been ("a supported audio codec")."""
    source = resolve_spec(spec)
    if meta is None:
        meta, named = read_transformers_config(source, what)
    else:
        named = str(Path(source.where) / CONFIG_NAME)
    table = by_model_type(classes)
    model_type = meta["model_type"]
    cls = table.get(model_type) if isinstance(model_type, str) else None
    if cls is None:
        loadable = sorted(t for t, c in table.items() if t not in c.refused)
        raise MmtokError(f"{named}: model_type {model_type!r} is not {unknown} (known: {loadable}); {what}")
    if model_type in cls.refused:
        raise MmtokError(f"{source.spec}: {cls.refused[model_type]}")
    return cls.load_from(source, meta)
