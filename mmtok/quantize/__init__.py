"""Quantizers behind one small interface (see `base.Quantizer`); `build_quantizer` makes the
one a `QuantizerConfig` names."""

from mmtok.quantize.base import Quantizer, QuantizerConfig
from mmtok.quantize.fsq import FSQQuantizer
from mmtok.quantize.lfq import LFQQuantizer
from mmtok.quantize.mixin import HasQuantizer
from mmtok.quantize.vq import VQQuantizer

# `QuantizerConfig.kind` -> its class; the keys are `base.QUANTIZER_KINDS`, which the config
# validates against (it cannot import this table: the classes import the config).
QUANTIZERS: dict[str, type[Quantizer]] = {"fsq": FSQQuantizer, "vq": VQQuantizer, "lfq": LFQQuantizer}


def build_quantizer(dim: int, config: QuantizerConfig) -> Quantizer:
    """The quantizer `config.kind` names, fed `dim`-channel features `[B,dim,h,w]`."""
    return QUANTIZERS[config.kind](dim, config)


__all__ = [
    "QUANTIZERS", "FSQQuantizer", "HasQuantizer", "LFQQuantizer", "Quantizer", "QuantizerConfig", "VQQuantizer",
    "build_quantizer",
]
