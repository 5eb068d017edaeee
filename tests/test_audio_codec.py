"""The audio codec's contract: shapes, bitrates, determinism, save/load, chunked and
streaming coding equal to whole-signal coding, token layout, and real training steps."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_codec, sample_audio

import mmtok
from mmtok.audio import AudioCodec, AudioCodecConfig
from mmtok.errors import MmtokError
from mmtok.layout import FrameMajorLayout


@pytest.fixture(scope="module")
def codec() -> AudioCodec:
    return make_codec()


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    """Two 1.3 s items, [2,1,T] at 16 kHz (T not a multiple of the hop)."""
    return torch.stack([sample_audio(1.3, 16000, seed=s) for s in (1, 2)])


def test_shapes_and_ranges(codec, speech):
    codes = codec.encode(speech)
    assert codes.dtype == torch.long
    assert codes.shape == (2, 4, math.ceil(speech.shape[-1] / 80))
    assert codes.min() >= 0 and codes.max() < 32
    assert len(codes.unique()) > 4, "codes should vary over a varied signal"
    audio = codec.decode(codes, length=speech.shape[-1])
    assert audio.shape == speech.shape and audio.abs().max() <= 1
    assert codec.decode(codes).shape[-1] == codes.shape[-1] * 80


def test_bitrates_and_levels(codec, speech):
    assert codec.frame_rate == 200 and codec.kbps(1) == 1.0 and codec.kbps() == 4.0
    assert codec.levels_for(kbps=2.5) == 2 and codec.levels_for(num_quantizers=3) == 3 and codec.levels_for() == 4
    with pytest.raises(MmtokError, match="below"):
        codec.levels_for(kbps=0.5)
    with pytest.raises(MmtokError, match="outside 1..4"):
        codec.levels_for(num_quantizers=5)
    full = codec.encode(speech)
    two = codec.encode(speech, num_quantizers=2)
    assert torch.equal(two, full[:, :2]), "a lower bitrate is a prefix of the residual levels"
    coarse, fine = codec.decode(two), codec.decode(full)
    assert coarse.shape == fine.shape and not torch.equal(coarse, fine)


def test_deterministic_and_batch_independent(codec, speech):
    codes = codec.encode(speech)
    assert torch.equal(codes, codec.encode(speech))
    assert torch.equal(codes[1:], codec.encode(speech[1:]))


def test_save_load_roundtrip(codec, speech, tmp_path):
    codec.save_pretrained(tmp_path / "c")
    loaded = mmtok.load(tmp_path / "c")
    assert isinstance(loaded, AudioCodec) and loaded.fingerprint == codec.fingerprint
    assert torch.equal(loaded.encode(speech), codec.encode(speech))


def test_encode_does_not_change_an_untrained_kmeans_codebook(speech):
    torch.manual_seed(0)
    fresh = AudioCodec(AudioCodecConfig(sample_rate=16000, ratios=(5, 4, 4), n_filters=4, dilations=(1,), dimension=8,
                                        num_quantizers=2, codebook_size=16)).eval()
    before = fresh.fingerprint
    fresh.encode(speech)
    fresh.invalidate_fingerprint()
    assert fresh.fingerprint == before


def test_rejects_wrong_layouts(codec, speech):
    with pytest.raises(ValueError, match=r"\[B,1,T\]"):
        codec.encode(speech[:, 0])
    with pytest.raises(MmtokError, match="codebook has 32"):
        codec.decode(torch.full((1, 4, 5), 32))
    with pytest.raises(MmtokError, match="1 <= K <= 4"):
        codec.decode(torch.zeros(1, 5, 5, dtype=torch.long))


@pytest.mark.parametrize("chunk_seconds", [0.05, 0.31, 10.0])
def test_chunked_equals_whole(codec, speech, chunk_seconds):
    """Causal convs + `history` samples of real context: chunk seams change nothing."""
    codes = codec.encode(speech)
    assert torch.equal(codec.encode_chunked(speech, chunk_seconds=chunk_seconds), codes)
    whole = codec.decode(codes, length=speech.shape[-1])
    chunked = codec.decode_chunked(codes, length=speech.shape[-1], chunk_seconds=chunk_seconds)
    assert (chunked - whole).abs().max() < 1e-5


def test_context_is_needed(codec, speech):
    """The test above is not vacuous: without the history, chunk starts differ."""
    codes = codec.encode(speech)
    hop, chunk = 80, 1600
    naive = torch.cat([codec.encode(speech[..., i : i + chunk]) for i in range(0, speech.shape[-1], chunk)], dim=-1)
    assert not torch.equal(naive, codes)
    assert codec.encode_history > hop and codec.decode_history >= 1


def test_streaming_encoder_any_piece_sizes(codec, speech):
    stream = codec.stream_encoder(num_quantizers=3)
    sizes = [1, 79, 80, 81, 500, 7, 4000, 333]
    parts, i = [], 0
    for n in sizes * 10:
        if i >= speech.shape[-1]:
            break
        parts.append(stream.push(speech[..., i : i + n]))
        i += n
    codes = torch.cat([*parts, stream.flush()], dim=-1)
    assert torch.equal(codes, codec.encode(speech, num_quantizers=3))
    with pytest.raises(MmtokError):
        codec.stream_encoder().flush()


def test_streaming_emits_frames_as_soon_as_complete(codec):
    stream = codec.stream_encoder()
    assert stream.push(torch.zeros(1, 1, 79)).shape[-1] == 0
    assert stream.push(torch.zeros(1, 1, 1)).shape[-1] == 1  # a causal codec has no lookahead


def test_token_layout_frame_major(codec, speech):
    codes = codec.encode(speech[:1])[0]                     # [4,t]
    layout = codec.token_layout(levels=2)
    assert isinstance(layout, FrameMajorLayout) and layout.vocab_size == 64
    assert layout.ranges() == [(0, 32), (32, 64)]
    ids = layout.flatten(codes)
    assert ids.shape == (2 * codes.shape[1],)
    assert ids[0] == codes[0, 0] and ids[1] == codes[1, 0] + 32 and ids[2] == codes[0, 1]
    assert torch.equal(layout.unflatten(ids), codes[:2])
    assert [layout.allowed(p) for p in range(3)] == [(0, 32), (32, 64), (0, 32)]
    with pytest.raises(MmtokError, match="level 1"):
        layout.unflatten(torch.tensor([0, 5]))
    with pytest.raises(MmtokError, match="multiple of 2"):
        layout.unflatten(torch.tensor([0, 40, 1]))


def test_training_pass_drops_levels(codec):
    """Quantizer dropout: each training batch keeps a random prefix (>= min_quantizers) of levels."""
    model = make_codec(min_quantizers=2).train()
    x = sample_audio(0.2, 16000)[None][..., :3200]
    kept = set()
    for _ in range(20):
        out = model(x)
        assert out["recon"].shape == x.shape and out["aux_loss"].ndim == 0
        kept.add(int((out["ids"][0, :, 0] >= 0).sum()))
    assert min(kept) >= 2 and len(kept) > 1
