"""Tiny random-init transformers audio codecs (EnCodec, DAC, Mimi, WavTokenizer, X-Codec,
X-Codec 2, NeuCodec) for tests/test_audio_pretrained.py and benchmarks/pretrained_guarantees.py:
small configs (seconds to build and run), with codebooks seeded from the model's own latents (transformers initialises
EnCodec, Mimi, WavTokenizer and X-Codec codebooks to zeros, which would code everything as 0)
and decoders scaled to about half full scale. The weights are random: they exercise the code
paths, not audio quality.
"""

from __future__ import annotations

import math

import torch
from transformers import (
    DacConfig,
    DacModel,
    EncodecConfig,
    EncodecModel,
    MimiConfig,
    MimiModel,
    NeuCodecConfig,
    NeuCodecModel,
    WavTokenizerConfig,
    WavTokenizerModel,
    Xcodec2Config,
    Xcodec2Model,
    XcodecConfig,
    XcodecModel,
)


def signal(batch: int, channels: int, length: int, sample_rate: int, seed: int = 0) -> torch.Tensor:
    """`[B,C,T]` in [-1,1]: three random tones per channel plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / sample_rate
    freqs = torch.rand(batch, channels, 3, 1, generator=g) * 900 + 100
    tones = torch.sin(2 * math.pi * freqs * t).mean(2)
    return 0.5 * tones + 0.05 * torch.randn(batch, channels, length, generator=g)


def seed_codebooks(codebooks, latents: torch.Tensor, write) -> None:
    """Set each residual level's codebook to jittered residuals of `latents [N,D]` (about what a
    k-means init does), so that codes spread over the codebook."""
    g = torch.Generator().manual_seed(0)
    residual = latents
    for codebook in codebooks:
        picks = residual[torch.randint(len(residual), (codebook.codebook_size,), generator=g)]
        # jitter: copies of one latent would make exact ties that float noise can break either way
        write(codebook, picks + 0.3 * residual.std() * torch.randn(picks.shape, generator=g))
        residual = residual - codebook.decode(codebook.encode(residual))


@torch.no_grad()
def tiny_encodec(**overrides) -> EncodecModel:
    """24 kHz mono, hop 320 (75 frames/s), 1024 codes: 1.5 / 3 / 6 kbps = 2 / 4 / 8 levels."""
    torch.manual_seed(0)
    config = EncodecConfig(target_bandwidths=[1.5, 3.0, 6.0], hidden_size=16, num_filters=4, num_lstm_layers=1, **overrides)
    model = EncodecModel(config).eval()
    # Random biases make the decoder output a fixed pattern that hardly depends on the codes
    # (measured: random codes changed it by 1%); without them it depends on nothing else.
    for module in model.decoder.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            module.bias.zero_()
    model.decoder.layers[-1].conv.parametrizations.weight.original0.mul_(1000)  # from ~5e-4 to ~0.5 peak
    latents = model.encoder(signal(4, 1, 24000, 24000, seed=9)).transpose(1, 2).reshape(-1, 16)
    seed_codebooks([layer.codebook for layer in model.quantizer.layers], latents, lambda cb, v: cb.embed.copy_(v))
    return model


@torch.no_grad()
def tiny_dac() -> DacModel:
    """16 kHz mono, hop 320 with an odd stride (5, as in the 24 kHz DAC), 4 levels of 64 codes."""
    torch.manual_seed(0)
    config = DacConfig(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4, 5, 8],
        decoder_hidden_size=32,
        n_codebooks=4,
        codebook_size=64,
        codebook_dim=4,
        sampling_rate=16000,
    )
    model = DacModel(config).eval()
    # the decoder and the code projections get unit gain (DAC's init outputs ~0.01 whatever the codes)
    unit_gain([*model.decoder.modules(), *(q.out_proj for q in model.quantizer.quantizers)])
    model.decoder.conv2.weight.mul_(0.3)  # peak ~0.5
    return model


@torch.no_grad()
def tiny_mimi(layers: int = 2, semantic: int = 1) -> MimiModel:
    """24 kHz mono, hop 1920 (12.5 frames/s), 4 levels of 64 codes, attention window 4 tokens (0.16 s)."""
    torch.manual_seed(0)
    config = MimiConfig(
        hidden_size=16,
        num_filters=4,
        codebook_size=64,
        codebook_dim=8,
        num_quantizers=4,
        num_semantic_quantizers=semantic,
        vector_quantization_hidden_dimension=8,
        upsample_groups=16,
        num_hidden_layers=layers,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        sliding_window=4,
        initializer_range=0.5,
        layer_scale_initial_scale=1.0,
    )
    model = MimiModel(config).eval()  # the init above makes attention matter (with the defaults it hardly does)
    model.decoder.decoder_seanet.layers[-1].conv.weight.mul_(0.01)  # random init decodes at ~50x full scale
    latents = model.encoder(signal(4, 1, 48000, 24000, seed=9)).latents
    quantizer = model.quantizer
    for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
        projected = rvq.input_proj(latents).transpose(1, 2).reshape(-1, 8)

        def write(codebook, values):
            codebook.embed_sum.copy_(values)  # cluster_usage is 1, so embed = embed_sum
            codebook._embed = None

        seed_codebooks([layer.codebook for layer in rvq.layers], projected, write)
    return model


def unit_gain(modules) -> None:
    """Conv (and linear) weights with std 1/sqrt(fan_in): DAC's init (std 0.02) makes a decoder
    that outputs ~0.01 whatever the codes."""
    for module in modules:
        if isinstance(module, torch.nn.Linear):
            module.weight.normal_(0, module.in_features**-0.5)
        elif isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            fan_in = module.weight[0].numel() if isinstance(module, torch.nn.Conv1d) else module.weight[:, 0].numel()
            module.weight.normal_(0, fan_in**-0.5)


@torch.no_grad()
def tiny_wavtokenizer() -> WavTokenizerModel:
    """24 kHz mono, hop 600 (40 frames/s), one level of 64 codes; decoder width 16, one ConvNeXt block."""
    torch.manual_seed(0)
    config = WavTokenizerConfig(
        num_filters=4,
        hidden_size=16,
        codebook_dim=16,
        codebook_size=64,
        num_lstm_layers=1,
        decoder_hidden_size=16,
        decoder_intermediate_size=32,
        decoder_num_layers=1,
        decoder_attention_num_groups=4,
    )
    model = WavTokenizerModel(config).eval()
    encoder = model.encoder_model
    # Random encoder biases swamp the signal (latents varied 4% over time); without them all of it is signal.
    for module in encoder.encoder.modules():
        if isinstance(module, torch.nn.Conv1d):
            module.bias.zero_()
    latents = encoder.encoder(signal(4, 1, 24000, 24000, seed=9)).transpose(1, 2).reshape(-1, 16)
    seed_codebooks([encoder.quantizer.codebook], latents, lambda cb, v: cb.embed.copy_(v))
    model.head.linear.bias[: config.n_fft // 2 + 1] += 4.0  # log-magnitudes: from ~0.008 to ~0.4 peak
    return model


@torch.no_grad()
def tiny_xcodec() -> XcodecModel:
    """16 kHz mono, hop 320 (50 frames/s), 4 levels of 1024 codes (0.5 / 1 / 2 kbps = 1 / 2 / 4
    levels); a DAC of width 2-16 and a one-layer HuBERT of width 4."""
    torch.manual_seed(0)
    config = XcodecConfig(
        target_bandwidths=[0.5, 1.0, 2.0],
        codebook_size=1024,
        codebook_dim=8,
        acoustic_model_config=dict(encoder_hidden_size=2, decoder_hidden_size=16, hidden_size=4, codebook_dim=4, n_codebooks=1),
        semantic_model_config=dict(
            hidden_size=4,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
            conv_dim=[4] * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        ),
    )
    model = XcodecModel(config).eval()
    unit_gain([*model.acoustic_decoder.modules()])
    model.fc2.weight.normal_(0, model.fc2.in_features**-0.5)
    model.acoustic_decoder.conv2.weight.mul_(0.03)  # no tanh here: from ~28 to ~0.8 peak
    latents = []  # what the quantizer gets: the output of `fc`
    hook = model.fc.register_forward_hook(lambda module, args, out: latents.append(out))
    model.encode(signal(4, 1, 16000, 16000, seed=9), bandwidth=2.0)
    hook.remove()
    seed_codebooks([q.codebook for q in model.quantizer.quantizers], latents[0].reshape(-1, 8), lambda cb, v: cb.embed.copy_(v))
    return model


@torch.no_grad()
def tiny_xcodec2() -> Xcodec2Model:
    """16 kHz mono, hop 320 (50 frames/s), one FSQ codebook of 4 x 4 x 4 = 64 codes; a one-layer
    w2v-BERT of width 8 and a one-layer decoder transformer of width 32 (its GroupNorms need 32)."""
    return tiny_w2v_bert_fsq_codec(Xcodec2Config, Xcodec2Model)


@torch.no_grad()
def tiny_neucodec() -> NeuCodecModel:
    """X-Codec 2's tiny config as a NeuCodec: reads 16 kHz (hop 320, 50 frames/s), decodes 24 kHz
    (480 samples per frame), one FSQ codebook of 64 codes."""
    return tiny_w2v_bert_fsq_codec(NeuCodecConfig, NeuCodecModel)


def tiny_w2v_bert_fsq_codec(config_class, model_class):
    """The X-Codec 2 family (X-Codec 2, NeuCodec): w2v-BERT semantic encoder, acoustic encoder, FSQ."""
    torch.manual_seed(0)
    config = config_class(
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        encoder_hidden_size=2,
        quantization_dim=40,  # hidden_size + the semantic model's hidden_size
        quantization_levels=[4, 4, 4],
        semantic_model_config=dict(
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            output_hidden_size=8,
            conv_depthwise_kernel_size=3,
            position_embeddings_type="relative_key",
            max_source_positions=64,
        ),
    )
    model = model_class(config).eval()
    # The init (std 0.02 through ~30 layers) makes an encoder whose output is ~5e-8 and one
    # code for everything: unit gain outside the semantic model.
    unit_gain([m for name, m in model.named_modules() if not name.startswith("semantic_encoder")])
    return model


BUILDERS = {
    "encodec": tiny_encodec,
    "dac": tiny_dac,
    "mimi": tiny_mimi,
    "wavtokenizer": tiny_wavtokenizer,
    "xcodec": tiny_xcodec,
    "xcodec2": tiny_xcodec2,
    "neucodec": tiny_neucodec,
}
