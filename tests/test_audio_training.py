"""Training an audio codec through `mmtok train audio`: the recipe, a loadable codec and a
log with per-level usage, exact resume with quantizer dropout, k-means init and the MS-STFT
discriminator, the frame-rate FSQ codec with its MPD + MS-STFT discriminator, and (slow) real
runs that improve reconstruction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml
from conftest import assert_cli_error, make_codec, make_vocos, run_mmtok, sample_audio, write_sample_audio

import mmtok
from mmtok.audio import AudioCodec, VocosFSQCodec
from mmtok.eval.audio_metrics import mel_distance
from mmtok.train.recipe import AudioTrainConfig, load_recipe

ROOT = Path(__file__).resolve().parents[1]
TINY_CODEC = {"sample_rate": 16000, "ratios": [5, 4, 4], "n_filters": 4, "dilations": [1], "dimension": 8,
              "num_quantizers": 4, "codebook_size": 32, "min_quantizers": 1}
TINY_TRAIN = {"steps": 6, "batch_size": 2, "segment_seconds": 0.1, "warmup_steps": 2, "log_every": 2, "checkpoint_every": 1000}


# conftest.TINY_VOCOS as a recipe: 16 kHz, hop 80, 125 FSQ codes.
TINY_VOCOS = {"sample_rate": 16000, "hop_length": 80, "stem_n_fft": 160, "head_n_fft": 320, "head_lookahead": 2, "dim": 16,
              "intermediate": 32, "encoder_depth": 2, "decoder_depth": 2, "kernel": 3, "fsq_levels": [5, 5, 5]}


def write_recipe(path: Path, model: dict | None = None, kind: str = "audio-codec", **train) -> Path:
    base = TINY_VOCOS if kind == "audio-vocos-fsq" else TINY_CODEC
    path.write_text(yaml.safe_dump({"kind": kind, "model": {**base, **(model or {})}, "train": {**TINY_TRAIN, **train}}))
    return path


def train(data: Path, out: Path, recipe: Path, *extra: str):
    result = run_mmtok("train", "audio", "--data", data, "--out", out, "--config", recipe, "--no-progress", *extra, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def tensors_differing(a: Path, b: Path) -> list[str]:
    x, y = safetensors.torch.load_file(a), safetensors.torch.load_file(b)
    assert x.keys() == y.keys()
    return [k for k in x if not torch.equal(x[k], y[k])]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Six short clips at mixed rates and channel counts (the loader converts them)."""
    root = tmp_path_factory.mktemp("audio-data")
    for i, (rate, channels) in enumerate([(16000, 1), (22050, 2), (24000, 1), (8000, 1), (44100, 1), (16000, 2)]):
        write_sample_audio(root / f"clip{i}.wav", 0.6, rate, channels, seed=i)
    return root


def test_default_audio_recipe():
    recipe = load_recipe(None, "audio")
    assert recipe.kind == "audio-codec" and recipe.train == AudioTrainConfig()
    assert recipe.model.hop_length == 320 and recipe.model.sample_rate == 24000


def test_shipped_audio_recipe_loads():
    recipe = load_recipe(ROOT / "tokenizers_trained" / "mmtok-audio-24k" / "recipe.yaml", "audio")
    assert recipe.model.num_quantizers == 8 and recipe.train.exclude


def test_image_kind_is_not_an_audio_recipe(tmp_path):
    (tmp_path / "r.yaml").write_text("kind: image-vq\n")
    assert_cli_error(run_mmtok("train", "audio", "--data", tmp_path, "--out", tmp_path / "o", "--config", tmp_path / "r.yaml"),
                     "not a audio tokenizer")


def test_train_audio_writes_codec_and_log(data, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml")
    assert "saved audio-codec tokenizer" in train(data, tmp_path / "out", recipe).stdout
    tok = mmtok.load(tmp_path / "out")
    assert isinstance(tok, AudioCodec) and tok.fingerprint != make_codec().fingerprint
    rows = [json.loads(line) for line in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert {"si_sdr", "mel", "stft", "usage", "usage_per_stream"} <= rows[-1].keys()
    assert len(rows[-1]["usage_per_stream"]) == 4


def test_exact_resume_with_dropout_kmeans_and_discriminator(data, tmp_path):
    """Quantizer dropout draws from Python's RNG, k-means init and dead-code restarts from
    torch's, and the discriminator switches on at step 2: stop after 3 + resume must equal
    6 straight steps bitwise, discriminator and optimizers included."""
    recipe = write_recipe(tmp_path / "r.yaml", {"kmeans_init": True}, adv_weight=1.0, adv_start=2)
    train(data, tmp_path / "straight", recipe)
    rows = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert rows[0]["d_loss"] == 0 and rows[-1]["d_loss"] > 0 and rows[-1]["fm"] > 0
    assert "continue with --resume" in train(data, tmp_path / "resumed", recipe, "--stop-after", "3").stdout
    train(data, tmp_path / "resumed", recipe, "--resume")
    a, b = tmp_path / "straight" / "checkpoints" / "last", tmp_path / "resumed" / "checkpoints" / "last"
    for name in ("model", "disc", "optim-model", "optim-disc"):
        assert tensors_differing(a / f"{name}.safetensors", b / f"{name}.safetensors") == [], name


def test_vocos_trains_with_mpd_and_resumes_exactly(data, tmp_path):
    """The frame-rate FSQ codec through `mmtok train audio`: its kind's discriminator (MPD +
    MS-STFT) switches on at step 2, and stop after 3 + resume equals 6 straight steps bitwise."""
    recipe = write_recipe(tmp_path / "r.yaml", kind="audio-vocos-fsq", adv_weight=1.0, adv_start=2)
    assert "saved audio-vocos-fsq tokenizer" in train(data, tmp_path / "straight", recipe).stdout
    tok = mmtok.load(tmp_path / "straight")
    assert isinstance(tok, VocosFSQCodec) and tok.fingerprint != make_vocos().fingerprint
    rows = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert rows[0]["d_loss"] == 0 and rows[-1]["d_loss"] > 0 and rows[-1]["fm"] > 0 and 0 < rows[-1]["usage"] <= 1
    disc = safetensors.torch.load_file(tmp_path / "straight" / "checkpoints" / "last" / "disc.safetensors")
    assert any(k.startswith("parts.0.discs.4.") for k in disc) and any(k.startswith("parts.1.discs.2.") for k in disc)
    train(data, tmp_path / "resumed", recipe, "--stop-after", "3")
    train(data, tmp_path / "resumed", recipe, "--resume")
    a, b = tmp_path / "straight" / "checkpoints" / "last", tmp_path / "resumed" / "checkpoints" / "last"
    for name in ("model", "disc", "optim-model", "optim-disc"):
        assert tensors_differing(a / f"{name}.safetensors", b / f"{name}.safetensors") == [], name


@pytest.mark.slow
def test_vocos_training_improves_reconstruction(data, tmp_path):
    """300 real steps of the frame-rate codec on the generated clips: mel distance on a
    held-out clip drops."""
    recipe = write_recipe(tmp_path / "r.yaml", {"dim": 32, "intermediate": 64}, kind="audio-vocos-fsq", steps=300, batch_size=4,
                          segment_seconds=0.2, lr=0.002, warmup_steps=20, log_every=50, mel_weight=15.0)
    clip = sample_audio(1.0, 16000, seed=99)[None]
    before = make_vocos(dim=32, intermediate=64)
    train(data, tmp_path / "out", recipe)
    after = mmtok.load(tmp_path / "out")
    dist = lambda tok: mel_distance(tok.decode(tok.encode(clip), length=clip.shape[-1]), clip, 16000).item()
    assert dist(after) < 0.7 * dist(before)


@pytest.mark.slow
def test_training_improves_reconstruction(data, tmp_path):
    """300 real steps on the generated clips: multi-scale mel distance on a held-out clip drops."""
    recipe = write_recipe(tmp_path / "r.yaml", {"n_filters": 8, "dimension": 16}, steps=300, batch_size=4, segment_seconds=0.2,
                          lr=0.002, warmup_steps=20, log_every=50)
    clip = sample_audio(1.0, 16000, seed=99)[None]
    before = make_codec(n_filters=8, dimension=16, min_quantizers=1)
    train(data, tmp_path / "out", recipe)
    after = mmtok.load(tmp_path / "out")
    dist = lambda tok: mel_distance(tok.decode(tok.encode(clip), length=clip.shape[-1]), clip, 16000).item()
    assert dist(after) < 0.7 * dist(before)
