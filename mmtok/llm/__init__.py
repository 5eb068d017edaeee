"""LLM integration: extend a vocabulary with media tokens, build interleaved sequences,
constrain generation to valid media spans, parse and decode what a model generated.

    from mmtok.llm import MediaVocab, Image, Audio, PackedTokens, generate
    vocab = MediaVocab.load("llama-mm")                      # written by `mmtok extend`
    seq = vocab.build(["A cat:", Image("cat.png"), "says", Audio("meow.wav")])
    seq.input_ids, seq.modality                              # [L] int64, [L] int8 (0 = text)
    rows = PackedTokens("shards/", seq_len=2048)              # `mmtok pretokenize` output -> training rows
    ids = generate(model, vocab, ["A cat:"], media=["image"])  # spans kept well-formed
"""

from typing import TYPE_CHECKING

from mmtok.lazy import lazy_names

if TYPE_CHECKING:
    from mmtok.llm.constrain import MediaLogitsProcessor
    from mmtok.llm.dataset import PackedTokens
    from mmtok.llm.generation import generate
    from mmtok.llm.options import StreamOptions
    from mmtok.llm.sequence import Audio, Image, Sequence, Video
    from mmtok.llm.shards import TokenShards
    from mmtok.llm.streams import MediaStream
    from mmtok.llm.vocab import MediaVocab

__all__ = ["Audio", "Image", "MediaLogitsProcessor", "MediaStream", "MediaVocab", "PackedTokens", "Sequence", "StreamOptions", "TokenShards", "Video", "generate"]

# Imported on first use (`mmtok.lazy`): `mmtok.llm.options` must stay light for the CLI.
__getattr__, __dir__ = lazy_names(__name__, {
    "MediaLogitsProcessor": "mmtok.llm.constrain", "PackedTokens": "mmtok.llm.dataset", "generate": "mmtok.llm.generation",
    "StreamOptions": "mmtok.llm.options", "Audio": "mmtok.llm.sequence", "Image": "mmtok.llm.sequence",
    "Sequence": "mmtok.llm.sequence", "Video": "mmtok.llm.sequence", "TokenShards": "mmtok.llm.shards",
    "MediaStream": "mmtok.llm.streams", "MediaVocab": "mmtok.llm.vocab",
})
