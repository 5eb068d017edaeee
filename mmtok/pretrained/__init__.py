"""Pretrained tokenizers from transformers behind mmtok's contract, one module per family.

    tok = mmtok.load("hf:facebook/encodec_24khz")   # or hf:/local/folder, or a folder saved by transformers

`mmtok.load` reads the folder's (or hub model's) config.json once and, for a transformers
config, picks the adapter whose `model_types` holds its `model_type` (`base.load_among` over
`registry.families()`): no
order between families, no network call beyond fetching that config.json.

    spec.py            specs (hf:ORG/NAME, hf:/folder, folder), reading their config.json, the hub probe
    base.py            the shared adapter: wrapping, strict loading, save_pretrained, model card; picking it by model_type
    exact_search.py    mmtok's exact nearest-code search put into transformers' codebook modules
    registry.py        every family (imported on first use), and the loader over all of them
    submodel.py        reading a tokenizer out of a bigger checkpoint (Emu3's VQ beside its LLM)
    audio_codec.py     the shared audio codec base; receptive_field.py its chunking context
    kaldi_fbank.py     the w2v-BERT filter-bank features of X-Codec 2 and NeuCodec (without torchaudio)
    image_processor.py the shared base of the image tokenizers with their model's image processor in front
    image_vq.py        its fixed-resolution image VQs (Janus, Chameleon) and their codebook searches
    encodec.py dac.py mimi.py wavtokenizer.py xcodec.py xcodec2.py neucodec.py   one audio family each
    emu3.py janus.py chameleon.py glm_image.py                                   one image / video family each

How to add a family (say transformers' `FooModel`, model_type "foo"):

1. Write `mmtok/pretrained/foo.py` with one class, decorated with `@register_kind`:
   `class HFFoo(PretrainedAudioCodec)` for an audio codec, or
   `class HFFoo(PretrainedImageVQ)` for an image VQ that an LLM reads at one resolution
   behind its image processor (`image_vq.py`; `can_decode = False` when it has no decoder), or
   `class HFFoo(ProcessedImageTokenizer)` when that processor's size depends on the image's
   (`image_processor.py`; GLM-Image), or
   `class HFFoo(PretrainedAdapter, ImageTokenizer)` (media base second) otherwise. Set
   `kind = "hf-foo"`, `hf_model_class = "FooModel"`, `model_type = "foo"` (plus
   `exact_search`, `model_types`, `refused` or `media_types` where the family needs them;
   see `base.PretrainedAdapter`), and implement `_setup` and the media base's coding methods.
2. Add one line to `FAMILIES` below: `"foo": "HFFoo"`.
3. Test it like tests/test_audio_pretrained.py: a tiny random-init model saved with
   transformers' own `save_pretrained`, codes compared with the transformers model's.
"""

from __future__ import annotations

# module in mmtok.pretrained -> its adapter class
FAMILIES: dict[str, str] = {
    "encodec": "HFEncodec",
    "dac": "HFDac",
    "mimi": "HFMimi",
    "wavtokenizer": "HFWavTokenizer",
    "xcodec": "HFXcodec",
    "xcodec2": "HFXcodec2",
    "neucodec": "HFNeuCodec",
    "emu3": "Emu3VideoTokenizer",
    "janus": "JanusImageTokenizer",
    "chameleon": "ChameleonImageTokenizer",
    "glm_image": "GlmImageTokenizer",
}
