"""Video tokenizers: the shared base (windowed coding) and the causal VQ kind."""

from mmtok.video.base import VideoTokenizer
from mmtok.video.causal_vq import VideoCausalVQ, VideoCausalVQConfig

__all__ = ["VideoCausalVQ", "VideoCausalVQConfig", "VideoTokenizer"]
