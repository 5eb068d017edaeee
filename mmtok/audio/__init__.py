"""Audio tokenizers: the codecs we train (SEANet + residual VQ; frame-rate ConvNeXt + iSTFT
with one FSQ codebook), and pretrained codecs
(EnCodec, DAC, Mimi) from transformers behind the same contract."""

from mmtok.audio.base import AudioTokenizer, StreamingDecoder, StreamingEncoder
from mmtok.audio.codec import AudioCodec, AudioCodecConfig
from mmtok.audio.vocos_fsq import VocosFSQCodec, VocosFSQConfig

__all__ = ["AudioCodec", "AudioCodecConfig", "AudioTokenizer", "StreamingDecoder", "StreamingEncoder", "VocosFSQCodec", "VocosFSQConfig"]
