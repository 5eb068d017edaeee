"""The shipped audio codec loads strictly and reconstructs the two sample clips (a voice and a
piece held out of its training) at the quality its model card reports, through the same
streamed file path `mmtok encode` / `mmtok decode` use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmtok
from mmtok.audio import AudioCodec
from mmtok.audio.files import decode_audio, encode_audio
from mmtok.eval.audio_metrics import mel_distance, stoi
from mmtok.media.audio import read_audio
from mmtok.metrics import si_sdr

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tokenizers_trained" / "mmtok-audio-24k"
SAMPLES = sorted((ROOT / "tests" / "media" / "audio").glob("*.flac"))


@pytest.fixture(scope="module")
def tok():
    return mmtok.load(SHIPPED)


def test_shipped_folder_is_complete(tok):
    meta = json.loads((SHIPPED / "config.json").read_text())
    assert isinstance(tok, AudioCodec) and meta["fingerprint"] == tok.fingerprint
    assert tok.sample_rate == 24000 and tok.frame_rate == 75 and tok.bitrates()[8] == 6.0
    card = (SHIPPED / "README.md").read_text()
    assert "licence" in card and (SHIPPED / "recipe.yaml").is_file()
    assert (SHIPPED / "model.safetensors").stat().st_size < 16 * 2**20


def recorded(name: str, kbps: float) -> dict[str, dict]:
    """Per-clip figures of the model card's benchmark for one held-out file, per method."""
    rows = json.loads((SHIPPED / "heldout_results.json").read_text())["per_clip"]
    return {r["method"]: r for r in rows if r["file"] == name and r["kbps_requested"] == kbps}


@pytest.mark.parametrize("kbps", [1.5, 3.0, 6.0])
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_reconstructs_unseen_clips(tok, path, kbps, tmp_path):
    tf = encode_audio(tok, path, tok.levels_for(kbps=kbps))
    assert tf.codes.shape[0] == round(kbps / 0.75)
    decode_audio(tok, tf, tmp_path / "out.wav")
    x, y = read_audio(path, 24000, 1)[None], read_audio(tmp_path / "out.wav", 24000, 1)[None]
    assert x.shape == y.shape
    ours = recorded(path.name, kbps)["ours"]
    assert float(mel_distance(y, x, 24000)) == pytest.approx(ours["mel_distance"], abs=0.01)
    assert float(si_sdr(y, x)) == pytest.approx(ours["si_sdr"], abs=0.1)
    assert float(stoi(y, x, 24000)) == pytest.approx(ours["stoi"], abs=0.005)


VOCOS = ROOT / "tokenizers_trained" / "mmtok-audio-vocos-fsq"


def test_vocos_folder_is_complete():
    tok = mmtok.load(VOCOS)
    assert tok.kind == "audio-vocos-fsq" and tok.sample_rate == 24000 and tok.frame_rate == 75
    assert tok.codebook_sizes == [64000]  # one token per frame: 75 tokens per second
    assert "licence" in (VOCOS / "README.md").read_text() and (VOCOS / "recipe.yaml").is_file()
    assert (VOCOS / "model.safetensors").stat().st_size < 32 * 2**20


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_vocos_reproduces_its_report_on_unseen_clips(path, tmp_path):
    """The two demo clips are held out of its training too; the file path gives the figures
    of its own `mmtok eval` report, and its mel distance beats mmtok-audio-24k at 6 kbps there."""
    tok = mmtok.load(VOCOS)
    tf = encode_audio(tok, path, None)
    assert tf.codes.shape[0] == 1
    decode_audio(tok, tf, tmp_path / "out.wav")
    x, y = read_audio(path, 24000, 1)[None], read_audio(tmp_path / "out.wav", 24000, 1)[None]
    assert x.shape == y.shape
    rows = json.loads((VOCOS / "report" / "results.json").read_text())["audio"]["per_clip"]
    ours = next(r for r in rows if r["file"] == path.name and r["method"] == "mmtok-audio-vocos-fsq")
    old = next(r for r in rows if r["file"] == path.name and r["method"] == "mmtok-audio-24k" and r["kbps_asked"] == 6.0)
    assert float(mel_distance(y, x, 24000)) == pytest.approx(ours["mel_distance"], abs=0.01)
    assert float(stoi(y, x, 24000)) == pytest.approx(ours["stoi"], abs=0.005)
    assert ours["mel_distance"] < old["mel_distance"]
