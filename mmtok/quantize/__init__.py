"""Quantizers behind one small interface (see `base.Quantizer`)."""

from mmtok.quantize.base import Quantizer, QuantizerConfig, build_quantizer

__all__ = ["Quantizer", "QuantizerConfig", "build_quantizer"]
