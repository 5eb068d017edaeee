"""The causal video tokenizer's contract: shapes (1-frame input included), geometry,
causality, determinism, batch independence, save/load, windowed == whole-video coding,
and the LLM token layout."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_VIDEO, make_video_tokenizer, sample_video

import mmtok
from mmtok.errors import MmtokError
from mmtok.layout import VideoLayout
from mmtok.video import VideoCausalVQConfig


@pytest.fixture(scope="module")
def tok():
    return make_video_tokenizer()


@pytest.fixture(scope="module")
def clip():
    """Two different 23-frame 18x26 clips (sizes fit neither the spatial nor the temporal factor)."""
    return torch.stack([sample_video(23, 18, 26, seed=1), sample_video(23, 18, 26, seed=2)])


def test_geometry(tok):
    assert (tok.spatial_downsample, tok.temporal_downsample) == (4, 4)
    assert [tok.latent_frames(n) for n in (1, 2, 5, 6, 9, 23)] == [1, 2, 2, 3, 3, 7]
    assert [tok.frames_for(t) for t in (1, 2, 3)] == [1, 5, 9]
    assert [tok.first_frame_of(j) for j in (0, 1, 2)] == [0, 1, 5]
    assert tok.grid_shape(23, 18, 26) == (7, 5, 7)
    assert tok.bits_per_pixel(23, 18, 26) == pytest.approx(7 * 5 * 7 * torch.log2(torch.tensor(125.0)).item() / (23 * 18 * 26))
    assert VideoCausalVQConfig(downsample=("st", "st")).spatial_downsample == 16


@pytest.mark.parametrize("bad", [dict(downsample=("st",)), dict(downsample=("st", "x")), dict(channel_mult=(1, 2))])
def test_bad_config(bad):
    import dataclasses

    with pytest.raises(ValueError):
        dataclasses.replace(TINY_VIDEO, **bad)


def test_latent_wider_than_fsq_is_projected():
    """FSQ projects any latent width to len(fsq_levels) (as the image tokenizer does), so inflation can copy it."""
    tok = make_video_tokenizer(latent_dim=10)
    codes = tok.encode(torch.rand(1, 3, 5, 16, 16))
    assert codes.shape == (1, 2, 4, 4) and 0 <= codes.min() and codes.max() < tok.codebook_size


def test_encode_decode_shapes(tok, clip):
    codes = tok.encode(clip)
    assert codes.shape == (2, 7, 5, 7) and codes.dtype == torch.int64
    assert 0 <= codes.min() and codes.max() < tok.codebook_size
    assert len(codes.unique()) > 10  # a random-init model still spreads codes
    full = tok.decode(codes)
    assert full.shape == (2, 3, 25, 20, 28) and full.abs().max() <= 1
    assert tok.decode(codes, size=(23, 18, 26)).shape == clip.shape


def test_single_frame_is_a_video(tok, clip):
    """An image is a 1-frame video: one latent frame, decoded to one frame, and it equals
    the first latent frame of any video that starts with it (frame 0 is coded alone)."""
    image = clip[:, :, :1]
    codes = tok.encode(image)
    assert codes.shape == (2, 1, 5, 7)
    assert torch.equal(codes[:, 0], tok.encode(clip)[:, 0])
    assert tok.decode(codes, size=(1, 18, 26)).shape == image.shape


def test_causal(tok, clip):
    """Changing frame 10 (latent frame 3 holds frames 9..12) changes no earlier latent frame."""
    codes = tok.encode(clip)
    changed = clip.clone()
    changed[:, :, 10] = -changed[:, :, 10]
    differ = (tok.encode(changed) != codes).flatten(2).any(-1).any(0)
    assert not differ[:3].any() and differ[3]


def test_deterministic_and_batch_independent(tok, clip):
    codes = tok.encode(clip)
    assert torch.equal(codes, tok.encode(clip))
    assert torch.equal(codes[1:], tok.encode(clip[1:]))


def test_save_load(tok, clip, tmp_path):
    tok.save_pretrained(tmp_path / "tok")
    again = mmtok.load(tmp_path / "tok")
    assert again.kind == "video-causal-vq" and again.fingerprint == tok.fingerprint
    assert torch.equal(again.encode(clip), tok.encode(clip))


@pytest.mark.parametrize("window", [1, 2, 3, 8])
def test_windowed_equals_whole(tok, clip, window):
    """No seam: windowed coding carries each causal layer's state, so codes are bit-exact and
    frames equal to float rounding, whatever the window."""
    codes = tok.encode(clip)
    assert torch.equal(tok.encode_windowed(clip, window=window), codes)
    whole = tok.decode(codes, size=(23, 18, 26))
    windowed = tok.decode_windowed(codes, size=(23, 18, 26), window=window)
    assert (windowed - whole).abs().max() < 1e-4


def test_windows_without_carried_state_differ(tok, clip):
    """Control: coding the second half on its own (the seam a naive split has) is not the same."""
    codes = tok.encode(clip)
    second = tok.encode(clip[:, :, 8:])  # frame 8 alone, then frames 9..12 = latent frame 3
    assert not torch.equal(second[:, 1:], codes[:, 3:])


def test_stream_encoder_odd_pieces(tok, clip):
    """Frames pushed in ragged pieces give the same codes, emitted as soon as complete."""
    enc = tok.stream_encoder(window=2)
    parts, emitted = [], []
    start = 0
    for n in (1, 3, 2, 7, 1, 5, 4):
        parts.append(enc.push(clip[:, :, start : start + n]))
        start += n
        emitted.append(parts[-1].shape[1])
    assert start == 23
    assert emitted[0] == 1  # frame 0 alone is a whole latent frame
    codes = torch.cat([*parts, enc.flush()], dim=1)
    assert torch.equal(codes, tok.encode(clip))


def test_decode_rejects_foreign_codes(tok):
    with pytest.raises(MmtokError, match="codebook"):
        tok.decode(torch.full((1, 2, 3, 3), tok.codebook_size))
    with pytest.raises(ValueError):
        tok.decode(torch.zeros(2, 3, 3, dtype=torch.long))


def test_token_layout(tok, clip):
    codes = tok.encode(clip)[0]  # [7,5,7]
    grid = tuple(codes.shape)
    for rows, frames in [(False, False), (True, False), (False, True), (True, True)]:
        layout = tok.token_layout(row_separator=rows, frame_separator=frames)
        assert isinstance(layout, VideoLayout)
        ids = layout.flatten(codes)
        assert ids.numel() == layout.span_length(grid) == 7 * (5 * (7 + rows) + frames)
        assert torch.equal(layout.unflatten(ids, grid), codes)
        for position, value in enumerate(ids.tolist()):
            lo, hi = layout.allowed(position, grid)
            assert lo <= value < hi
        assert layout.vocab_size == tok.codebook_size + rows + frames
    layout = tok.token_layout(row_separator=True, frame_separator=True)
    ids = layout.flatten(codes)
    assert ids[5 * 8] == layout.frame_separator_id and ids[7] == layout.separator_id
    broken = ids.clone()
    broken[5 * 8] = 0
    with pytest.raises(MmtokError, match="frame separator"):
        layout.unflatten(broken, grid)
    with pytest.raises(MmtokError, match="ids"):
        layout.unflatten(ids[:-1], grid)
