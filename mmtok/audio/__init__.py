"""Audio tokenizers: the shared base and the codecs we train (SEANet + residual VQ; frame-rate
ConvNeXt + iSTFT with one FSQ codebook). Pretrained codecs from transformers (EnCodec, DAC,
Mimi) live in `mmtok.pretrained`, behind the same contract."""

from mmtok.audio.base import AudioTokenizer, StreamingDecoder, StreamingEncoder
from mmtok.audio.codec import AudioCodec, AudioCodecConfig
from mmtok.audio.vocos_fsq import VocosFSQCodec, VocosFSQConfig

__all__ = ["AudioCodec", "AudioCodecConfig", "AudioTokenizer", "StreamingDecoder", "StreamingEncoder", "VocosFSQCodec", "VocosFSQConfig"]
