"""The shipped video tokenizer loads strictly and reconstructs the two sample clips (held out
of its training) at the quality its model card reports, through the windowed file path
`mmtok encode` / `mmtok decode` use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmtok
from mmtok.eval.video_metrics import frame_psnr, frame_ssim, temporal_flicker
from mmtok.media.video import read_video, video_info
from mmtok.video import VideoCausalVQ
from mmtok.video.files import decode_video, encode_video

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tokenizers_trained" / "mmtok-video-f8t4"
SAMPLES = sorted((ROOT / "tests" / "media" / "video").glob("*.mp4"))


@pytest.fixture(scope="module")
def tok():
    return mmtok.load(SHIPPED)


def test_shipped_folder_is_complete(tok):
    meta = json.loads((SHIPPED / "config.json").read_text())
    assert isinstance(tok, VideoCausalVQ) and meta["fingerprint"] == tok.fingerprint
    assert (tok.spatial_downsample, tok.temporal_downsample, tok.codebook_size) == (8, 4, 64000)
    card = (SHIPPED / "README.md").read_text()
    assert "licence" in card and (SHIPPED / "recipe.yaml").is_file()
    assert (SHIPPED / "model.safetensors").stat().st_size < 16 * 2**20


def recorded(name: str) -> dict:
    """The model card benchmark's figures for one held-out clip (method "ours")."""
    rows = json.loads((SHIPPED / "heldout_results.json").read_text())["per_clip"]
    return next(r["ours"] for r in rows if r["file"] == name)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_reconstructs_unseen_clips(tok, path, tmp_path):
    tf = encode_video(tok, path)
    decode_video(tok, tf, tmp_path / "out.mp4")
    info = video_info(tmp_path / "out.mp4")
    source = video_info(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (source.num_frames, source.fps, source.width, source.height)
    x, y = read_video(path), read_video(tmp_path / "out.mp4")
    ours = recorded(path.name)
    # The card measures the decoded tensors; the mp4 adds H.264 (crf 18) rounding on top.
    assert float(frame_psnr(x, y).mean()) == pytest.approx(ours["psnr"], abs=0.5)
    assert float(frame_ssim(x, y).mean()) == pytest.approx(ours["ssim"], abs=0.02)
    assert temporal_flicker(x, y) == pytest.approx(ours["flicker"], abs=0.003)
