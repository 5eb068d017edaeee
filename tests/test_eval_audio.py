"""`mmtok eval` on audio: the report through the real CLI on the tiny codec, Opus's bit
accounting and sample alignment, agreement with `mmtok compare`, PESQ's edge cases."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import assert_cli_error, make_codec, run_mmtok, write_sample_audio

import mmtok
from mmtok.audio.files import decode_audio, encode_audio
from mmtok.audio.modality import AUDIO
from mmtok.errors import MmtokError
from mmtok.eval.audio_eval import evaluate_audio
from mmtok.eval.audio_measure import plan_bitrates
from mmtok.eval.audio_metrics import clip_scores, pesq_wb
from mmtok.eval.baselines.opus import MIN_KBPS, cbr_bitrate, opus_alignment, opus_roundtrip
from mmtok.eval.dnsmos import EVAL_HOP_SECONDS, dnsmos, dnsmos_available
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report, format_cell
from mmtok.media.audio import read_audio
from mmtok.metrics import si_sdr

SPEECH = Path(__file__).parent / "media" / "audio" / "espeak-en-gb-x-rp_en_001.flac"
RATE = 16000  # the tiny codec's


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two speech-like clips at the codec's rate, in two folders (so the report splits by folder)."""
    root = tmp_path_factory.mktemp("eval-audio")
    write_sample_audio(root / "speech" / "a.wav", 2.0, RATE, seed=1)
    write_sample_audio(root / "other" / "b.flac", 1.5, RATE, seed=2)
    return root


@pytest.fixture(scope="module")
def cli_report(codec_dir, clips, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    result = run_mmtok("eval", "-t", codec_dir, "--data", clips, "--out", out, "--kbps", "1", "--kbps", "2", "--examples", "1")
    assert result.returncode == 0, result.stderr
    return out


def test_report_files_and_numbers(cli_report):
    for name in ("report.md", "report.html", "results.json"):
        assert (cli_report / name).is_file()
    figures = sorted(p.name for p in (cli_report / "figures").iterdir())
    assert figures == ["codebook_levels.png", "rate_distortion.png", "spectrogram_1.png"]
    assert all((cli_report / "figures" / f).stat().st_size < 250_000 for f in figures)
    audio = json.loads((cli_report / "results.json").read_text())["audio"]
    assert audio["sample_rate"] == RATE
    rows = audio["per_clip"]
    # --kbps honoured: 1 and 2 kbps are 1 and 2 levels of the tiny codec (1 kbps per level), and Opus at both
    assert sorted((r["method"], r["kbps_asked"]) for r in rows if r["file"] == "a.wav") == [
        ("opus", 1.0), ("opus", 2.0), ("tiny-codec", 1.0), ("tiny-codec", 2.0)]
    for r in rows:
        assert all(math.isfinite(r[key]) for key in ("mel_distance", "si_sdr", "stoi")), r
        if r["method"] == "tiny-codec":
            assert r["levels"] == r["kbps_asked"] and r["kbps_spent"] == pytest.approx(r["kbps_asked"])  # whole frames: exact
        else:
            assert r["kbps_spent"] <= r["kbps_asked"] * 1.02, r   # whole-byte packets at or below the asked rate
    groups = {s["group"] for s in audio["summary"]}
    assert groups == {"all files", "speech", "other"}
    levels = audio["codebook"]["tiny-codec"]
    assert [s["level"] for s in levels] == [1, 2] and all(0 < s["usage"] <= 1 and 1 <= s["perplexity"] <= 32 for s in levels)
    agreement = audio["determinism"]["tiny-codec"]
    assert agreement["items"] == 3 and agreement["levels"] == 2   # non-overlapping 1 s windows: 2 from the 2 s file, 1 from 1.5 s
    assert 0.9 <= agreement["repeat"] <= 1 and 0.9 <= agreement["alone_vs_batch"] <= 1
    assert audio["opus_alignment"]["best_lag"] == 0
    md = (cli_report / "report.md").read_text()
    for heading in ("## Rate–distortion", "## Spectrograms", "## Codebook usage per residual level", "## Determinism"):
        assert heading in md
    assert f"| tiny-codec | 3 | 2 | 1,200 | {format_cell(agreement['repeat'])} | {format_cell(agreement['alone_vs_batch'])} |" in md


def test_metrics_equal_mmtok_compare(cli_report, codec_dir, clips, tmp_path):
    """The evaluator scores what `mmtok encode` + `mmtok decode` give: `mmtok compare` on the
    decoded file agrees up to the 16-bit rounding of the written wav."""
    tok = mmtok.load(codec_dir)
    rows = json.loads((cli_report / "results.json").read_text())["audio"]["per_clip"]
    for original in (clips / "speech" / "a.wav", clips / "other" / "b.flac"):
        recon = decode_audio(tok, encode_audio(tok, original, levels=2), tmp_path / f"{original.stem}.wav")
        ours = next(r for r in rows if r["file"] == original.name and r["method"] == "tiny-codec" and r["levels"] == 2)
        theirs = AUDIO.scores(original, recon)
        assert ours["mel_distance"] == pytest.approx(theirs["mel"], abs=2e-3)
        assert ours["si_sdr"] == pytest.approx(theirs["SI-SDR"], abs=0.05)
        assert ours["stoi"] == pytest.approx(theirs["STOI"], abs=2e-3)


def test_lower_bitrates_are_prefixes_of_the_code(codec_dir):
    """The evaluator encodes once and decodes the first k levels: that must be the k-level code."""
    tok = mmtok.load(codec_dir)
    x = read_audio(SPEECH, RATE, 1)[None, :, :RATE]
    full = tok.encode_chunked(x, num_quantizers=4)
    for k in (1, 2, 3):
        assert torch.equal(full[:, :k], tok.encode_chunked(x, num_quantizers=k))


@pytest.mark.parametrize("rate", [24000, 22050])   # an Opus rate, and one resampled to 24 kHz and back
def test_opus_is_sample_aligned(rate):
    x = read_audio(SPEECH, rate, 1)
    check = opus_alignment(x, rate, SPEECH.name)
    assert check["best_lag"] == 0
    assert check["si_sdr_lag+0"] > 15
    assert check["si_sdr_lag+0"] > max(check["si_sdr_lag-1"], check["si_sdr_lag+1"]) + 5


def test_opus_spends_what_it_is_asked():
    x = read_audio(SPEECH, RATE, 1)
    for kbps in (6.0, 12.0):
        out = opus_roundtrip(x, RATE, kbps)
        assert out.audio.shape == x.shape
        assert kbps * 0.97 <= out.kbps_spent <= kbps * 1.01   # the flush packet of the encoder's look-ahead: < 1 %
    assert cbr_bitrate(3.0) == 2800 and cbr_bitrate(1.5) == 1200   # whole-byte packets (7, 3 bytes) at or below
    low = opus_roundtrip(x, RATE, 1.5)
    assert low.kbps_spent <= 1.5 and float(si_sdr(low.audio[None], x[None])) < 0   # SILK at 1.2 kbps keeps no waveform
    assert MIN_KBPS == pytest.approx(0.8)


def test_kbps_on_image_tokenizer_is_one_error_line(tok_dir, image_folder, tmp_path):
    result = run_mmtok("eval", "-t", tok_dir, "--data", image_folder, "--out", tmp_path / "r", "--kbps", "3")
    assert_cli_error(result, "--kbps")
    assert not (tmp_path / "r").exists()


def test_kbps_below_the_lowest_bitrate(codec_dir):
    with pytest.raises(MmtokError, match=r"--kbps 0.5: tiny: .*below this tokenizer's lowest bitrate"):
        plan_bitrates("tiny", mmtok.load(codec_dir), (0.5,))


def test_pesq_edge_cases_are_nan_not_errors():
    x = read_audio(SPEECH, RATE, 1)[None, :, : 2 * RATE]
    silent = torch.zeros_like(x)
    assert math.isnan(float(pesq_wb(silent, x, RATE)[0]))           # a codec that outputs silence
    assert math.isnan(float(pesq_wb(silent, silent, RATE)[0]))      # a silent file
    assert math.isnan(float(pesq_wb(x[..., :1000], x[..., :1000], RATE)[0]))   # under 0.25 s
    assert 4 < float(pesq_wb(x, x, RATE)[0]) <= 4.65
    scores = clip_scores(silent[0], x[0], RATE, with_pesq=True)
    assert math.isnan(scores["pesq"]) and all(math.isfinite(scores[k]) for k in ("mel_distance", "si_sdr", "stoi"))


def test_two_rates_without_pesq(codec_dir, clips, monkeypatch, tmp_path):
    """Tokenizers at 16 and 24 kHz are compared at the lower rate; without the `pesq` package
    the report says PESQ is unavailable instead of failing."""
    monkeypatch.setitem(sys.modules, "pesq", None)   # `import pesq` raises ImportError
    monkeypatch.setitem(sys.modules, "speechmos", None)
    toks = {"a16": mmtok.load(codec_dir), "b24": make_codec(seed=1, sample_rate=24000)}
    short = write_sample_audio(tmp_path / "short" / "blip.wav", 0.05, RATE)   # too short for STOI and PESQ, and for a 1 s window
    files = sorted(clips.rglob("*.wav")) + sorted(clips.rglob("*.flac")) + [short]
    with Report("two codecs", "") as report:
        evaluate_audio(toks, files, report, EvalOptions(baselines=(), kbps=(2.0,), examples=1, progress=False))
        out = report.write(tmp_path / "r")
    audio = json.loads((out / "results.json").read_text())["audio"]
    assert audio["sample_rate"] == RATE and "pesq" not in audio["metrics"]
    assert "not installed" in audio["pesq"] and "not installed" in audio["dnsmos"] and audio["dnsmos_original"] == {}
    assert not any(k.startswith("dnsmos") for k in audio["metrics"] + list(audio["per_clip"][0]))
    assert {r["method"] for r in audio["per_clip"]} == {"a16", "b24"} and all("pesq" not in r for r in audio["per_clip"])
    assert set(audio["codebook"]) == set(audio["determinism"]) == {"a16", "b24"}
    assert audio["determinism"]["a16"]["items"] == 4   # 2 + 1 windows, and the short file zero-padded
    blip = [r for r in audio["per_clip"] if r["file"] == "blip.wav"]
    assert len(blip) == 2 and all(r["stoi"] is None and math.isfinite(r["mel_distance"]) for r in blip)   # NaN -> null
    md = (out / "report.md").read_text()
    assert "PESQ unavailable: the optional `pesq` package is not installed" in md
    assert "DNSMOS unavailable: the optional `speechmos` and `onnxruntime` packages are not installed" in md
    assert "lowest of the tokenizers' rates 16000 Hz, 24000 Hz" in md
    assert "undefined (silent or too short), left out: STOI in 2 codings" in md


def test_two_tokenizers_tokens_first(codec_dir, clips, tmp_path):
    """`-t A -t B`: every rate table of report.md / report.html and every results.json row
    leads with tokens/s then kbps, for both tokenizers (at 1 kbps: 200 and 100 tokens/s) and
    Opus (tokens n/a); with speechmos installed, DNSMOS columns are there for every method."""
    wide = make_codec(seed=1, ratios=(5, 4, 4, 2), codebook_size=1024).save_pretrained(tmp_path / "wide")   # 100 frames/s x 10 bits
    out = tmp_path / "report"
    result = run_mmtok("eval", "-t", codec_dir, "-t", wide, "--data", clips / "other", "--out", out, "--kbps", "1", "--examples", "0")
    assert result.returncode == 0, result.stderr
    audio = json.loads((out / "results.json").read_text())["audio"]
    for row in audio["summary"] + audio["per_clip"]:
        keys = list(row)
        assert keys[keys.index("method") + 1 : keys.index("method") + 3] == ["tokens_per_second", "kbps_spent"], keys
    tokens = {s["method"]: s["tokens_per_second"] for s in audio["summary"]}
    assert tokens == {"tiny-codec": 200.0, "wide": 100.0, "opus": None}
    assert [list(facts)[:2] for facts in audio["tokenizers"].values()] == [["tokens_per_second", "kbps"]] * 2
    md = (out / "report.md").read_text()
    header = "| method | tokens/s | kbps spent | kbps asked | mel distance ↓ |"
    assert md.count(header) == 1 and "| tokenizer | tokens/s measured | kbps measured |" in md
    table = md[md.index(header):].split("\n\n")[0].splitlines()[2:]
    assert [line.split(" | ")[:3] for line in table] == [
        ["| Opus (asked 1)", "n/a", f"{audio['summary'][2]['kbps_spent']:.2f}"] if "Opus" in line else line.split(" | ")[:3]
        for line in table]
    assert {line.split(" | ")[0]: line.split(" | ")[1] for line in table} == {
        "| tiny-codec (1 level)": "200", "| wide (1 level)": "100", "| Opus (asked 1)": "n/a"}
    html = (out / "report.html").read_text()
    assert "<tr><th>method</th><th>tokens/s</th><th>kbps spent</th><th>kbps asked</th>" in html
    if dnsmos_available():
        assert {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"} <= set(audio["metrics"])
        keys = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
        assert all(1 <= scores[k] <= 5 for scores in audio["dnsmos_original"].values() for k in keys)
        # Opus at 1 kbps decodes this clip to digital silence: null (no speech to judge); the codecs' output is scored
        assert all(1 <= r[k] <= 5 if r["method"] != "opus" else r[k] is None for r in audio["per_clip"] for k in keys)
        assert "DNSMOS OVRL ↑ | DNSMOS SIG ↑ | DNSMOS BAK ↑ |" in md and "DNSMOS of the originals: OVRL" in md


def test_dnsmos_prefers_clean_speech():
    """On the committed speech sample DNSMOS (OVRL and BAK) scores the clean clip above the
    same clip in white noise at 0 dB SNR; digital silence has no score."""
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    x = read_audio(SPEECH, RATE, 1)
    noisy = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * x.pow(2).mean().sqrt()
    clean, dirty = dnsmos(x, RATE, EVAL_HOP_SECONDS), dnsmos(noisy.clamp(-1, 1), RATE, EVAL_HOP_SECONDS)
    assert all(1 <= v <= 5 for v in (*clean.values(), *dirty.values()))
    assert clean["dnsmos_ovrl"] > dirty["dnsmos_ovrl"] + 0.5 and clean["dnsmos_bak"] > dirty["dnsmos_bak"] + 1
    assert all(math.isnan(v) for v in dnsmos(torch.zeros(1, RATE), RATE).values())
