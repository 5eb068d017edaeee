"""The frame-rate codec `audio-vocos-fsq` (causal STFT stem + ConvNeXt + iSTFT head, one FSQ
codebook): shapes and token rate, determinism, strict save/load, chunked and streaming coding
equal to whole-signal coding (with the head's decoder lookahead), bounded streaming memory,
token layout, its discriminators, and the CLI round trip."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import make_codec, make_vocos, run_mmtok, sample_audio, write_sample_audio

import mmtok
from mmtok.audio import VocosFSQCodec
from mmtok.errors import MmtokError
from mmtok.media.audio import audio_info
from mmtok.train.audio_discriminators import MultiPeriodDiscriminator
from mmtok.train.audio_losses import MultiScaleSTFTDiscriminator
from mmtok.train.audio_task import AudioTask
from mmtok.train.recipe import AudioTrainConfig

HOP, CODES, LOOKAHEAD = 80, 125, 2


@pytest.fixture(scope="module")
def codec() -> VocosFSQCodec:
    return make_vocos()


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """Two 1.3 s items, [2,1,T] at 16 kHz (T not a multiple of the hop)."""
    return torch.stack([sample_audio(1.3, 16000, seed=s) for s in (1, 2)])


def test_shapes_rate_and_ranges(codec, speech):
    codes = codec.encode(speech)
    assert codes.dtype == torch.long and codes.shape == (2, 1, math.ceil(speech.shape[-1] / HOP))
    assert codes.min() >= 0 and codes.max() < CODES
    assert len(codes.unique()) > 10, "codes should vary over a varied signal"
    audio = codec.decode(codes, length=speech.shape[-1])
    assert audio.shape == speech.shape and audio.abs().max() <= 1
    assert codec.decode(codes).shape[-1] == codes.shape[-1] * HOP
    # one codebook: tokens per second = frame rate
    assert codec.num_quantizers == 1 and codec.codebook_size == CODES and codec.frame_rate == 200
    assert codec.kbps() == pytest.approx(200 * math.log2(CODES) / 1000) and codec.levels_for() == 1
    assert codec.tokens_per_second() == 200
    with pytest.raises(MmtokError, match="outside 1..1"):
        codec.levels_for(num_quantizers=2)


def test_recipe_operating_point():
    """The shipped recipe's model: one 64,000-code codebook at 75 Hz = 75 tokens/s, 24 kHz."""
    from pathlib import Path

    from mmtok.train.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "tokenizers_trained" / "mmtok-audio-vocos-fsq" / "recipe.yaml", "audio")
    assert recipe.kind == "audio-vocos-fsq" and recipe.train.adv_weight > 0
    m = recipe.model
    assert m.sample_rate == 24000 and m.sample_rate / m.hop_length == 75 and math.prod(m.fsq_levels) == 64000
    assert {"klettres-cs_*", "klettres-hu_*", "espeak-en-gb-x-rp_*", "bach-bwv245-11_*"} <= set(recipe.train.exclude)


def test_deterministic_and_batch_independent(codec, speech):
    codes = codec.encode(speech)
    assert torch.equal(codes, codec.encode(speech))
    assert torch.equal(codes[1:], codec.encode(speech[1:]))
    assert torch.equal(codec.decode(codes[1:]), codec.decode(codes)[1:])


def test_save_load_roundtrip_and_strict_config(codec, speech, tmp_path):
    codec.save_pretrained(tmp_path / "c")
    loaded = mmtok.load(tmp_path / "c")
    assert isinstance(loaded, VocosFSQCodec) and loaded.fingerprint == codec.fingerprint
    assert torch.equal(loaded.encode(speech), codec.encode(speech))
    assert loaded.fingerprint != make_vocos(seed=1).fingerprint
    config = tmp_path / "c" / "config.json"
    data = json.loads(config.read_text())
    data["config"]["head_lookahead_ms"] = 5
    config.write_text(json.dumps(data))
    with pytest.raises(MmtokError, match="unknown config fields"):
        mmtok.load(tmp_path / "c")


def test_rejects_wrong_layouts(codec, speech):
    with pytest.raises(ValueError, match=r"\[B,1,T\]"):
        codec.encode(speech[:, 0])
    with pytest.raises(MmtokError, match=f"codebook has {CODES}"):
        codec.decode(torch.full((1, 1, 5), CODES))
    with pytest.raises(MmtokError, match="1 <= K <= 1"):
        codec.decode(torch.zeros(1, 2, 5, dtype=torch.long))


@pytest.mark.parametrize("chunk_seconds", [0.05, 0.31, 10.0])
def test_chunked_equals_whole(codec, speech, chunk_seconds):
    """Causal stem + ConvNeXt with `history` of context, and the decoder waiting `lookahead`
    frames for the iSTFT overlap-add: chunk seams change nothing."""
    codes = codec.encode(speech)
    assert torch.equal(codec.encode_chunked(speech, chunk_seconds=chunk_seconds), codes)
    whole = codec.decode(codes, length=speech.shape[-1])
    chunked = codec.decode_chunked(codes, length=speech.shape[-1], chunk_seconds=chunk_seconds)
    assert (chunked - whole).abs().max() < 1e-5


def test_context_and_lookahead_are_needed(codec, speech):
    """The test above is not vacuous: without history, chunk starts differ; without the
    lookahead, a chunk's last frames lack their successors' overlap-add windows."""
    codes = codec.encode(speech)
    chunk = 1600
    naive = torch.cat([codec.encode(speech[..., i : i + chunk]) for i in range(0, speech.shape[-1], chunk)], dim=-1)
    assert not torch.equal(naive, codes)
    assert codec.encode_history > HOP and codec.decode_history >= 1 and codec.decode_lookahead == LOOKAHEAD
    whole = codec.decode(codes)
    prefix = codec.decode(codes[..., :20])                      # frames 0..19 without their successors
    settled = (20 - LOOKAHEAD) * HOP
    assert torch.allclose(prefix[..., :settled], whole[..., :settled], atol=1e-5)
    assert not torch.allclose(prefix[..., settled:], whole[..., settled : 20 * HOP], atol=1e-4)


def test_streaming_encoder_any_piece_sizes(codec, speech):
    stream = codec.stream_encoder()
    sizes = [1, 79, 80, 81, 500, 7, 4000, 333]
    parts, i = [], 0
    for n in sizes * 10:
        if i >= speech.shape[-1]:
            break
        parts.append(stream.push(speech[..., i : i + n]))
        i += n
    assert torch.equal(torch.cat([*parts, stream.flush()], dim=-1), codec.encode(speech))


def test_streaming_latency(codec, speech):
    """The encoder is causal (a frame once its last sample arrives); the decoder holds back
    exactly `decode_lookahead` frames until more codes (or the end) arrive."""
    enc = codec.stream_encoder()
    assert enc.push(torch.zeros(1, 1, HOP - 1)).shape[-1] == 0
    assert enc.push(torch.zeros(1, 1, 1)).shape[-1] == 1
    codes = codec.encode(speech)
    dec = codec.stream_decoder()
    first = dec.push(codes[..., :10])
    assert first.shape[-1] == (10 - LOOKAHEAD) * HOP
    second = dec.push(codes[..., 10:])
    rest = dec.flush()
    assert first.shape[-1] + second.shape[-1] + rest.shape[-1] == codes.shape[-1] * HOP
    assert (torch.cat([first, second, rest], dim=-1) - codec.decode(codes)).abs().max() < 1e-5


def test_streaming_memory_is_bounded(codec):
    """A long input in pieces: the buffers hold context + one piece, never the whole signal."""
    enc, dec = codec.stream_encoder(chunk_seconds=0.5), codec.stream_decoder(chunk_seconds=0.5)
    piece = sample_audio(0.5, 16000)[None]
    for _ in range(40):                                            # 20 s
        dec.push(enc.push(piece))
        assert enc.buffer.shape[-1] <= enc.history + enc.chunk_samples + piece.shape[-1]
        assert dec.buffer.shape[-1] <= dec.history + dec.lookahead + dec.chunk_frames + piece.shape[-1] // HOP


def test_stereo_chunked_equals_whole():
    tok = make_vocos(channels=2)
    x = sample_audio(0.9, 16000, channels=2)[None]
    codes = tok.encode(x)
    assert codes.shape == (1, 1, math.ceil(x.shape[-1] / HOP))
    assert torch.equal(tok.encode_chunked(x, chunk_seconds=0.1), codes)
    whole = tok.decode(codes, length=x.shape[-1])
    assert whole.shape == x.shape
    assert (tok.decode_chunked(codes, length=x.shape[-1], chunk_seconds=0.1) - whole).abs().max() < 1e-5


def test_token_layout_one_level(codec, speech):
    codes = codec.encode(speech[:1])[0]                            # [1,t]
    layout = codec.token_layout()
    assert layout.vocab_size == CODES and layout.ranges() == [(0, CODES)]
    ids = layout.flatten(codes)
    assert ids.shape == (codes.shape[1],) and torch.equal(ids, codes[0])
    assert torch.equal(layout.unflatten(ids), codes)


def test_training_pass_reaches_every_parameter(codec):
    model = make_vocos().train()
    x = sample_audio(0.2, 16000)[None][..., :3200]
    out = model(x)
    assert out["recon"].shape == x.shape and out["ids"].shape == (1, 1, 40) and out["aux_loss"].ndim == 0
    assert torch.equal(out["ids"], model.encode(x)), "training ids are the codes encode gives"
    (out["recon"] - x).abs().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_discriminator_is_chosen_by_the_kind(codec):
    """MPD + MS-STFT for this kind, MS-STFT alone for the SEANet codec; hinge + feature
    matching reach the generator through both."""
    cfg = AudioTrainConfig(adv_weight=1.0)
    disc = AudioTask(codec, cfg).discriminator()
    kinds = [type(p) for p in disc.parts]
    assert kinds == [MultiPeriodDiscriminator, MultiScaleSTFTDiscriminator] and len(disc.discs) == 5 + 3
    assert [type(p) for p in AudioTask(make_codec(), cfg).discriminator().parts] == [MultiScaleSTFTDiscriminator]

    model = make_vocos().train()
    task = AudioTask(model, cfg)
    x = sample_audio(0.3, 16000)[None][..., :4800]
    recon = model(x)["recon"]
    loss, figures = task.generator_loss(recon, x, disc)
    assert {"adv", "fm", "mel", "stft"} <= figures.keys() and all(math.isfinite(v) for v in figures.values())
    loss.backward()
    assert model.head.proj.weight.grad.abs().sum() > 0
    d_loss = task.discriminator_loss(disc, recon, x)
    d_loss.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_cli_roundtrip_restores_rate_and_length(codec, tmp_path):
    codec.save_pretrained(tmp_path / "tok")
    write_sample_audio(tmp_path / "in" / "a.wav", 1.23, 22050, seed=3)
    result = run_mmtok("encode", tmp_path / "in" / "a.wav", "-t", tmp_path / "tok", "-o", tmp_path / "a.mmtok")
    assert result.returncode == 0, result.stderr
    info = run_mmtok("info", tmp_path / "tok")
    assert info.returncode == 0 and "audio-vocos-fsq" in info.stdout, info.stdout + info.stderr
    assert "tokens_per_second_by_levels: {1: 200.0}" in info.stdout, info.stdout
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-t", tmp_path / "tok", "-o", tmp_path / "a.wav")
    assert result.returncode == 0, result.stderr
    before, after = audio_info(tmp_path / "in" / "a.wav"), audio_info(tmp_path / "a.wav")
    assert (after.sample_rate, after.num_samples) == (before.sample_rate, before.num_samples) == (22050, round(1.23 * 22050))
    report = run_mmtok("eval", "-t", tmp_path / "tok", "--data", tmp_path / "in", "--out", tmp_path / "report", "--examples", "1")
    assert report.returncode == 0, report.stderr
    rows = json.loads((tmp_path / "report" / "results.json").read_text())["audio"]["per_clip"]
    assert any(math.isfinite(r["mel_distance"]) for r in rows)
