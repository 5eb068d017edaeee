"""Pretrained audio codecs from transformers (EnCodec, DAC, Mimi) behind mmtok's audio contract.

    tok = load_pretrained("hf:facebook/encodec_24khz")   # a hub id, hf:/local/dir, or a local folder
    codes = tok.encode(x)        # [B,C,T] float in [-1,1] at tok.sample_rate -> [B,K,ceil(T/hop)] int64
    x2 = tok.decode(codes)       # -> [B,C,t*hop] float in [-1,1]

One kind per model; each wraps the transformers model as `tok.model`, so `state_dict`,
`parameters` and the fingerprint are the transformers weights, and codes are exactly what the
model's own `encode` returns when called with the matching explicit number of levels:

    kind        transformers   levels                                   frames/s
    hf-encodec  EncodecModel   those of config.target_bandwidths         sampling_rate / prod(upsampling_ratios)
    hf-dac      DacModel       1 .. n_codebooks                          sampling_rate / prod(downsampling_ratios)
    hf-mimi     MimiModel      num_semantic_quantizers .. num_quantizers config.frame_rate

Chunked coding (`encode_chunked` / `decode_chunked` / the streams) is exact for DAC, whose
convolutions have a finite receptive field, and approximate for EnCodec (an LSTM remembers
the whole past) and Mimi (stacked sliding-window attention): see each class.

Not supported: EnCodec configs that normalise the input or code it in overlapping chunks
(`normalize=True` or `chunk_length_s` set, i.e. facebook/encodec_48khz). Their decoder needs
a loudness scale per chunk besides the codes, which a token stream cannot carry, so loading
one raises MmtokError.

`save_pretrained(dir)` writes a transformers folder (config.json + model.safetensors, plus
README.md) that both transformers and `load_pretrained(dir)` read back, with the same
fingerprint. transformers is imported lazily: importing it takes seconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from mmtok.audio.base import AudioTokenizer
from mmtok.checkpoint import rounded_state
from mmtok.errors import MmtokError
from mmtok.files import replace_directory
from mmtok.hf_spec import HF_PREFIX, resolve_spec
from mmtok.quantize.pretrained_search import use_exact_search
from mmtok.tokenizer import register_kind

# Config keys that record where and how a model was saved, not what it computes. They are left
# out of the fingerprinted config so that a save / load round trip keeps the fingerprint.
_VOLATILE_KEYS = frozenset({"_name_or_path", "architectures", "dtype", "torch_dtype", "transformers_version", "_commit_hash"})


@dataclass(frozen=True)
class PretrainedAudioConfig:
    """A transformers codec as an mmtok config: its `model_type` ("encodec", "dac", "mimi") and
    its transformers config as canonical JSON (sorted keys, no `_VOLATILE_KEYS`), so the base
    fingerprint covers architecture and weights but not where they were loaded from."""

    model_type: str
    hf_config: str


def canonical_hf_config(hf_config: Any) -> str:
    """A transformers config as the JSON string `PretrainedAudioConfig.hf_config` holds."""
    values = {k: v for k, v in hf_config.to_dict().items() if k not in _VOLATILE_KEYS}
    return json.dumps(values, sort_keys=True)


# -- receptive fields ------------------------------------------------------------------
# One convolution as (kernel with dilation, stride, left padding or trim, transposed?); a
# model's `geometry(module)` gives it, or None for modules that are not convolutions.
Geometry = tuple[int, int, int, bool]


def encoder_context(modules: Iterable[nn.Module], geometry: Callable[[nn.Module], Geometry | None]) -> tuple[int, int]:
    """(past, future) input samples one code frame depends on beyond its own hop, for the
    convolutions among `modules` (in forward order; `geometry(m)` describes one or is None).

    A conv with kernel k, stride s and left padding p maps output step j to input steps
    [j*s - p, j*s - p + k - 1]: p steps before its own s, k - s - p after. Steps of a layer
    are worth the product of the strides before it. Residual branches run in parallel with
    identity or 1x1 shortcuts, which add nothing, so the sum over all convs bounds the
    receptive field (measured on a tiny DAC: 2501 computed, about 2100-2400 actual).
    """
    past = future = 0
    scale = 1  # input samples per step of the current layer's input
    for m in modules:
        g = geometry(m)
        if g is None:
            continue
        kernel, stride, left, _ = g
        past += left * scale
        future += max(0, kernel - stride - left) * scale
        scale *= stride
    return past, future


def decoder_context(modules: Iterable[nn.Module], geometry: Callable[[nn.Module], Geometry | None]) -> tuple[int, int]:
    """(past, future) code frames one output sample depends on beyond its own frame, for the
    convolutions among `modules` (stride-1 convs and upsampling transposed convs)."""
    past = future = slack = 0.0
    rate = 1.0  # frames per step of the current layer's input
    for m in modules:
        g = geometry(m)
        if g is None:
            continue
        kernel, stride, left, transposed = g
        if not transposed:
            past += left * rate
            future += max(0, kernel - stride - left) * rate
            continue
        # Output n (after trimming `left`) gets input j for j*s <= n + left <= j*s + k - 1; its
        # own input is n // s. Mapping a range of outputs back rounds by up to one input step
        # per side (`slack`).
        past += max(n // stride + (kernel - 1 - n - left) // stride for n in range(stride)) * rate
        future += max((n + left) // stride - n // stride for n in range(stride)) * rate
        slack += rate
        rate /= stride
    return math.ceil(past + slack), math.ceil(future + slack) if future > 0 else 0


class PretrainedAudioCodec(AudioTokenizer):
    """Base of the transformers adapters: builds or wraps the model, saves and loads it.

    Subclasses name the transformers class and implement `_setup` (the audio facts and the
    convolutional context), `_encode` and `_decode`.
    """

    config_class = PretrainedAudioConfig
    model_type: ClassVar[str]
    hf_model_class: ClassVar[str]  # class name in `transformers`

    def __init__(self, config: PretrainedAudioConfig, model: nn.Module | None = None):
        """Wrap `model`, or build a randomly initialised one from `config` (what `Tokenizer`
        subclasses do); `load_pretrained` is the usual way in."""
        super().__init__(config)
        if config.model_type != self.model_type:
            raise MmtokError(f"{type(self).__name__} wraps '{self.model_type}' models, not '{config.model_type}'")
        model_class = self.transformers_class()
        hf_config = model.config if model is not None else model_class.config_class.from_dict(json.loads(config.hf_config))
        self.check_hf_config(hf_config, self.kind)
        self.model = (model if model is not None else model_class(hf_config)).eval()
        use_exact_search(self.model)  # bounded-memory exact nearest codes (mmtok.quantize.nearest)
        self._setup(hf_config)

    @classmethod
    def transformers_class(cls) -> type:
        import transformers

        return getattr(transformers, cls.hf_model_class)

    @classmethod
    def from_model(cls, model: nn.Module) -> PretrainedAudioCodec:
        """Wrap an already built transformers model (its weights are used as they are)."""
        return cls(PretrainedAudioConfig(cls.model_type, canonical_hf_config(model.config)), model)

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        """Raise MmtokError for configs whose codes this adapter cannot represent."""

    # -- facts and context, filled in by `_setup` ---------------------------------------
    def _setup(self, hf_config: Any) -> None:
        raise NotImplementedError

    # (past, future) context set by `_setup`: encoder in samples, decoder in frames
    _encode_context: tuple[int, int] = (0, 0)
    _decode_context: tuple[int, int] = (0, 0)

    @property
    def encode_history(self) -> int:
        return self._encode_context[0]

    @property
    def encode_lookahead(self) -> int:
        return self._encode_context[1]

    @property
    def decode_history(self) -> int:
        return self._decode_context[0]

    @property
    def decode_lookahead(self) -> int:
        return self._decode_context[1]

    # -- coding -----------------------------------------------------------------------
    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _encode_frames(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        """`[B,C,T]`, T a multiple of `hop_length` -> codes `[B,levels,T/hop]` int64 in [0, codebook_size)."""
        codes = self._encode(x.to(self._dtype), levels)
        # All three models pad their strided convolutions to whole frames, so T = n*hop gives
        # exactly n frames. A config that does not would misalign codes and audio: refuse.
        frames = x.shape[-1] // self.hop_length
        if codes.shape != (x.shape[0], levels, frames):
            raise MmtokError(
                f"{self.kind}: the model coded {x.shape[-1]} samples as {tuple(codes.shape)}, not "
                f"[{x.shape[0]},{levels},{frames}]; this config's frames do not line up with its hop length"
            )
        return codes.long()

    def _decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,k,t]` -> audio `[B,C,t*hop]` float32 (unclamped)."""
        audio = self._decode(codes).float()
        # DAC with odd strides (e.g. the 24 kHz model, ratios 2,4,5,8) decodes a few samples
        # short: its transposed convolutions trim ceil(s/2) samples on each side. The missing
        # samples are at the end, so pad them with silence to keep audio and frames aligned.
        length = codes.shape[-1] * self.hop_length
        if audio.shape[-1] < length:
            return nn.functional.pad(audio, (0, length - audio.shape[-1]))
        return audio[..., :length]

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- persistence ------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, model_card: str | None = None, dtype: torch.dtype | None = None) -> Path:
        """Write a transformers folder: config.json + model.safetensors (`model.save_pretrained`)
        and README.md, atomically (a temp folder moved into place).

        `dtype=torch.float16` stores half-precision weights. The in-memory weights are rounded
        to it first, in place, so the fingerprint is the one `load_pretrained` (which loads
        float32) reproduces.
        """
        directory = Path(directory).resolve()
        state = None if dtype is None else rounded_state(self.model, dtype)
        self.invalidate_fingerprint()

        def fill(tmp: Path) -> None:
            self.model.save_pretrained(tmp, state_dict=state)
            existing = directory / "README.md"
            card = model_card if model_card is not None else existing.read_text() if existing.is_file() else self._model_card()
            (tmp / "README.md").write_text(card)

        return replace_directory(directory, fill)

    def _model_card(self) -> str:
        rates = ", ".join(f"{k} levels = {kbps:g} kbps" for k, kbps in self.bitrates().items())
        return (
            f"# {self.hf_model_class} audio codec (mmtok kind `{self.kind}`)\n\n"
            f"- loaded from: {self.name_or_path or 'unknown'}\n- sample rate: {self.sample_rate} Hz, "
            f"{self.channels} channel(s), {self.frame_rate:g} frames/s\n- {self.codebook_size} codes per level; {rates}\n"
            f"- fingerprint: `{self.fingerprint}`\n\nLoad with `transformers.{self.hf_model_class}.from_pretrained` "
            "or `mmtok.audio.pretrained.load_pretrained`. Licence and training data: see the original model.\n"
        )


@register_kind
class HFEncodec(PretrainedAudioCodec):
    """EnCodec (`transformers.EncodecModel`), e.g. hf:facebook/encodec_24khz: 24 kHz mono, hop
    320 (75 frames/s), 1024 codes per level. Only the bitrates of `config.target_bandwidths`
    exist (1.5 / 3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 / 32 levels); other requests are an
    error. Encoding always passes the explicit bandwidth: transformers' `bandwidth=None`
    silently means the lowest one.

    Chunked coding is approximate: the convolutions are causal, but an LSTM in the encoder and
    in the decoder carries state from the start of the signal. Each window gets
    `lstm_context_seconds` of real history on top of the convolutions' receptive field,
    instead of all of it.
    """

    kind = "hf-encodec"
    model_type = "encodec"
    hf_model_class = "EncodecModel"
    lstm_context_seconds: float = 3.0

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.normalize or hf_config.chunk_length_s is not None:
            raise MmtokError(
                f"{source}: this EnCodec config (normalize={hf_config.normalize}, chunk_length_s={hf_config.chunk_length_s}) "
                "codes audio in chunks with a loudness scale per chunk, which mmtok codes cannot carry (e.g. "
                "facebook/encodec_48khz); use a config without normalize / chunk_length_s, such as facebook/encodec_24khz"
            )

    def _setup(self, c: Any) -> None:
        from transformers.models.encodec.modeling_encodec import EncodecConv1d, EncodecConvTranspose1d

        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, c.audio_channels, c.codebook_size
        self.hop_length = math.prod(c.upsampling_ratios)
        # levels -> the bandwidth (kbps) that gives them, as the model itself counts them
        self._bandwidths: dict[int, float] = {}
        for bandwidth in c.target_bandwidths:
            self._bandwidths.setdefault(self.model.quantizer.get_num_quantizers_for_bandwidth(bandwidth), bandwidth)
        self.num_quantizers = max(self._bandwidths)

        def geometry(m: nn.Module) -> Geometry | None:
            if isinstance(m, EncodecConv1d):
                total = int(m.padding_total)
                return int(m.kernel_size), int(m.stride), total if m.causal else total - total // 2, False
            if isinstance(m, EncodecConvTranspose1d):
                k, s = m.conv.kernel_size[0], m.conv.stride[0]
                right = math.ceil((k - s) * m.trim_right_ratio) if m.causal else (k - s) // 2
                return k, s, k - s - right, True
            return None

        self._encode_context = encoder_context(self.model.encoder.modules(), geometry)
        self._decode_context = decoder_context(self.model.decoder.modules(), geometry)
        self._has_lstm = c.num_lstm_layers > 0

    @property
    def encode_history(self) -> int:
        return self._encode_context[0] + (round(self.lstm_context_seconds * self.sample_rate) if self._has_lstm else 0)

    @property
    def decode_history(self) -> int:
        return self._decode_context[0] + (math.ceil(self.lstm_context_seconds * self.frame_rate) if self._has_lstm else 0)

    def levels_for(self, kbps: float | None = None, num_quantizers: int | None = None) -> int:
        if kbps is not None and num_quantizers is None:
            for levels, bandwidth in self._bandwidths.items():
                if math.isclose(kbps, bandwidth, rel_tol=1e-6):
                    return levels
            raise MmtokError(f"{kbps:g} kbps is not a bitrate of this EnCodec model; choose --kbps from {self._choices()}")
        levels = super().levels_for(kbps, num_quantizers)
        if levels not in self._bandwidths:
            raise MmtokError(f"--num-quantizers {levels} is not offered by this EnCodec model; choose from {self._choices()}")
        return levels

    def _choices(self) -> str:
        return ", ".join(f"{bandwidth:g} kbps ({levels} levels)" for levels, bandwidth in sorted(self._bandwidths.items()))

    def bitrates(self) -> dict[int, float]:
        return {levels: float(bandwidth) for levels, bandwidth in sorted(self._bandwidths.items())}

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        bandwidth = self._bandwidths.get(levels)
        if bandwidth is None:  # callers go through levels_for; this guards direct use
            raise MmtokError(f"EnCodec cannot code {levels} levels; choose from {self._choices()}")
        # audio_codes: [n_chunks, B, K, t]; one chunk, since chunk_length_s is None (checked at load)
        out = self.model.encode(x, bandwidth=bandwidth, return_dict=True)
        return out.audio_codes[0]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        # one chunk, no scale (normalize is False): audio_values [B,C,t*hop]
        return self.model.decode(codes[None], [None], return_dict=True).audio_values


@register_kind
class HFDac(PretrainedAudioCodec):
    """DAC, the Descript Audio Codec (`transformers.DacModel`), e.g. hf:descript/dac_16khz (16 kHz
    mono, hop 320, 12 levels of 1024 codes) or dac_24khz / dac_44khz. Any number of levels
    1..n_codebooks. Mono only: the model has one input channel.

    The convolutions are not causal: a frame depends on `encode_lookahead` samples after it and
    a decoded sample on `decode_lookahead` frames after it. Both contexts are finite and are
    taken from the receptive field of the convolutions, so chunked coding matches whole-signal
    coding up to float rounding (the streams wait for the lookahead before emitting).
    """

    kind = "hf-dac"
    model_type = "dac"
    hf_model_class = "DacModel"

    def _setup(self, c: Any) -> None:
        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, 1, c.codebook_size
        self.hop_length, self.num_quantizers = c.hop_length, c.n_codebooks

        def geometry(m: nn.Module) -> Geometry | None:
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):  # plain torch convs with symmetric padding
                k = (m.kernel_size[0] - 1) * m.dilation[0] + 1
                return k, m.stride[0], m.padding[0], isinstance(m, nn.ConvTranspose1d)
            return None

        self._encode_context = encoder_context(self.model.encoder.modules(), geometry)
        self._decode_context = decoder_context(self.model.decoder.modules(), geometry)

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        # in eval mode the quantizer stops after n_quantizers: audio_codes [B,levels,t]
        return self.model.encode(x, n_quantizers=levels, return_dict=True).audio_codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(audio_codes=codes, return_dict=True).audio_values[:, None]  # [B,T] -> [B,1,T]


@register_kind
class HFMimi(PretrainedAudioCodec):
    """Mimi (`transformers.MimiModel`), e.g. hf:kyutai/mimi: 24 kHz mono, 12.5 frames/s (hop
    1920), 32 levels of 2048 codes. The first `num_semantic_quantizers` levels (1) come from a
    separate semantic quantizer and are always coded, so levels start there.

    Everything is causal, but a transformer with sliding-window attention sits in the encoder
    (before the 2x downsampling) and in the decoder (after the upsampling). Each window of
    chunked coding gets one attention window (`sliding_window` tokens, 10 s for kyutai/mimi) of
    real history on top of the convolutions' receptive field. With several layers the exact
    context is layers x window, so chunked coding is approximate.
    """

    kind = "hf-mimi"
    model_type = "mimi"
    hf_model_class = "MimiModel"

    @classmethod
    def check_hf_config(cls, hf_config: Any, source: str) -> None:
        if hf_config.encoder_config is None or hf_config.decoder_config is None:
            raise MmtokError(
                f"{source}: this Mimi model has no {'encoder' if hf_config.encoder_config is None else 'decoder'}; "
                "mmtok needs both halves, load the full model"
            )

    def _setup(self, c: Any) -> None:
        from transformers.models.mimi.modeling_mimi import MimiConv1d, MimiConvTranspose1d

        self.sample_rate, self.channels, self.codebook_size = c.sampling_rate, c.audio_channels, c.codebook_size
        self.num_quantizers, self.min_levels = c.num_quantizers, c.num_semantic_quantizers
        encoder, decoder = self.model.encoder, self.model.decoder
        stride = encoder.downsample.conv.stride[0] if encoder.downsample is not None else 1
        self.hop_length = math.prod(c.upsampling_ratios) * stride
        if not math.isclose(self.sample_rate / self.hop_length, c.frame_rate):
            raise MmtokError(f"{self.kind}: frame_rate {c.frame_rate} does not match {self.sample_rate} Hz / hop {self.hop_length}")

        def geometry(m: nn.Module) -> Geometry | None:
            if isinstance(m, MimiConv1d):
                return int(m.kernel_size), int(m.stride), int(m.padding_total) if m.causal else int(m.padding_left), False
            if isinstance(m, MimiConvTranspose1d):
                return m.conv.kernel_size[0], m.conv.stride[0], m.padding_left, True
            return None

        # The transformers run at `prod(upsampling_ratios)` samples per token; a token sees at
        # most `sliding_window` tokens back (the whole sequence if there is no window).
        window = c.sliding_window or c.max_position_embeddings
        past, future = encoder_context(encoder.modules(), geometry)
        self._encode_context = (past + window * math.prod(c.upsampling_ratios), future)
        past, future = decoder_context(decoder.modules(), geometry)
        self._decode_context = (past + math.ceil(window / stride), future)

    def levels_for(self, kbps: float | None = None, num_quantizers: int | None = None) -> int:
        levels = super().levels_for(kbps, num_quantizers)
        if levels < self.min_levels:
            raise MmtokError(
                f"Mimi always codes its {self.min_levels} semantic levels; ask for at least {self.min_levels} levels "
                f"({self.kbps(self.min_levels):g} kbps)"
            )
        return levels

    def bitrates(self) -> dict[int, float]:
        return {k: kbps for k, kbps in super().bitrates().items() if k >= self.min_levels}

    def _fresh_codebooks(self) -> None:
        # MimiEuclideanCodebook caches embed_sum / cluster_usage on first use and never
        # refreshes it: after a .to(device), a load_state_dict or save_pretrained(dtype=...)
        # the cache would be stale. Recomputing it is one small division per level.
        for module in self.model.quantizer.modules():
            if hasattr(module, "_embed"):
                module._embed = None

    def _encode(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        self._fresh_codebooks()
        # use_streaming=False: a plain whole-window pass, whatever the config says
        return self.model.encode(x, num_quantizers=levels, use_streaming=False, return_dict=True).audio_codes  # [B,levels,t]

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        self._fresh_codebooks()
        return self.model.decode(codes, return_dict=True).audio_values  # [B,C,t*hop]


_ADAPTERS: dict[str, type[PretrainedAudioCodec]] = {cls.model_type: cls for cls in (HFEncodec, HFDac, HFMimi)}


# -- loading ---------------------------------------------------------------------------
def is_pretrained_spec(spec: str | Path) -> bool:
    """True for "hf:..." specs and for local transformers folders of EnCodec, DAC or Mimi
    (config.json with such a `model_type` and no mmtok `format_version`)."""
    text = str(spec)
    if text.startswith(HF_PREFIX):
        return True
    from mmtok.files import sniff_json

    meta = sniff_json(Path(text).expanduser() / "config.json")
    return isinstance(meta, dict) and meta.get("model_type") in _ADAPTERS and "format_version" not in meta


def load_pretrained(spec: str | Path) -> PretrainedAudioCodec:
    """Load an EnCodec, DAC or Mimi model through transformers, in eval mode, float32.

    `spec`: "hf:ORG/NAME" (a hub id, e.g. hf:facebook/encodec_24khz), "hf:/local/folder", or a
    local folder saved by transformers' or this module's `save_pretrained`. `name_or_path` is
    set to the spec ("hf:" + the absolute path for hf:/local specs, the absolute path for
    plain folders) so token files can find the tokenizer again. Failures raise MmtokError.
    """
    where, name_or_path, hub = resolve_spec(spec, _check_local)
    return _load(where, str(spec), name_or_path, hub=hub)


def _check_local(directory: Path, spec: str) -> None:
    """Clear errors for local folders before transformers gives its longer ones."""
    what = "pass a folder saved by transformers (EnCodec, DAC or Mimi), or hf:ORG/NAME"
    if not directory.is_dir():
        raise MmtokError(f"{spec}: no such folder; {what}")
    path = directory / "config.json"
    if not path.is_file():
        raise MmtokError(f"{spec}: missing config.json; {what}")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise MmtokError(f"{path}: not valid JSON ({err}); re-download or re-save the model") from None
    if not isinstance(meta, dict):
        raise MmtokError(f"{path}: not a transformers config (a JSON object); {what}")
    if "format_version" in meta:
        raise MmtokError(f"{spec}: is an mmtok tokenizer folder, not a transformers one; load it with mmtok.load")
    if meta.get("model_type") not in _ADAPTERS:
        raise MmtokError(f"{path}: model_type {meta.get('model_type')!r} is not a supported audio codec (known: {sorted(_ADAPTERS)})")


def _load(source: str, spec: str, name: str, hub: bool) -> PretrainedAudioCodec:
    import transformers

    advice = (
        "check the id and the network (and that HF_HUB_OFFLINE is unset), or download the model and pass its folder"
        if hub
        else "re-download or re-save the model"
    )
    try:
        hf_config = transformers.AutoConfig.from_pretrained(source)
    except Exception as err:  # hub, file and validation errors come in many types
        raise MmtokError(f"{spec}: cannot read the model config ({_one_line(err)}); {advice}") from None
    cls = _ADAPTERS.get(hf_config.model_type)
    if cls is None:
        raise MmtokError(f"{spec}: model_type {hf_config.model_type!r} is not a supported audio codec (known: {sorted(_ADAPTERS)})")
    cls.check_hf_config(hf_config, spec)  # before loading weights that could not be used
    try:
        model, info = cls.transformers_class().from_pretrained(source, config=hf_config, dtype=torch.float32, output_loading_info=True)
    except Exception as err:
        raise MmtokError(f"{spec}: cannot load the model weights ({_one_line(err)}); {advice}") from None
    # transformers fills missing weights with random ones and only warns: a codec with random
    # layers would make wrong codes under a valid fingerprint, so be strict.
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise MmtokError(f"{spec}: the weights lack {len(missing)} tensors ({missing[:3]}); the checkpoint is incomplete or from another version")
    tok = cls.from_model(model)
    tok.name_or_path = name
    return tok.eval()


def _one_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return f"{type(err).__name__}: {first[:300]}"
