"""Image tokenizers: VQ (FSQ / VQ / LFQ quantizers) and the Gumbel dVAE."""

from mmtok.image.dvae import ImageDVAE, ImageDVAEConfig
from mmtok.image.vq import ImageVQ, ImageVQConfig

__all__ = ["ImageDVAE", "ImageDVAEConfig", "ImageVQ", "ImageVQConfig"]
