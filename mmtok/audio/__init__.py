"""Audio tokenizers: the SEANet + residual-VQ codec we train, and pretrained codecs
(EnCodec, DAC, Mimi) from transformers behind the same contract."""

from mmtok.audio.base import AudioTokenizer, StreamingDecoder, StreamingEncoder
from mmtok.audio.codec import AudioCodec, AudioCodecConfig

__all__ = ["AudioCodec", "AudioCodecConfig", "AudioTokenizer", "StreamingDecoder", "StreamingEncoder"]
