"""Training: recipes, reproducible batches, pickle-free checkpoints, and real (tiny) runs of
`mmtok train image` through the console script, including exact resume and a 2-process
`accelerate launch` run. The real quality check (PSNR climbs) is marked slow."""

from __future__ import annotations

import json
import math
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml
from conftest import (
    ACCELERATE,
    MEDIA,
    assert_cli_error,
    files_under,
    make_tokenizer,
    run_command,
    run_mmtok,
    sample_image,
    write_image,
)

import mmtok
from mmtok import MmtokError
from mmtok.metrics import psnr
from mmtok.image import ImageDVAE, ImageVQ
from mmtok.media.image import read_image, to_model
from mmtok.train.image_data import RandomCrops, StepBatches
from mmtok.train.loop import lr_factor
from mmtok.train.recipe import ImageTrainConfig, load_recipe
from mmtok.train.state import load_train_state, save_train_state

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"patch_size": 2, "channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1}
# A real schedule (warmup, then cosine decay over the 6 steps): "stop after 3, then resume"
# must replay "6 steps in one go" exactly, learning rate included.
TINY_TRAIN = {"steps": 6, "batch_size": 2, "crop_size": 16, "warmup_steps": 2, "log_every": 2, "checkpoint_every": 1000}


def write_recipe(path: Path, kind: str, model: dict | None = None, **train) -> Path:
    if kind == "image-vq":
        model = model or {**TINY_MODEL, "latent_dim": 4, "quantizer": {"kind": "fsq", "fsq_levels": [5, 5, 5]}}
    else:
        model = model or {**TINY_MODEL, "codebook_size": 32, "embed_dim": 4}
    path.write_text(yaml.safe_dump({"kind": kind, "model": model, "train": {**TINY_TRAIN, **train}}))
    return path


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr[-3000:]}"
    return result


def train(data: Path, out: Path, recipe: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_mmtok("train", "image", "--data", data, "--out", out, "--config", recipe, "--no-progress", *extra, timeout=300)


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def same_tensors(a: Path, b: Path) -> list[str]:
    """Names of tensors that differ (bitwise) between two safetensors files."""
    x, y = safetensors.torch.load_file(a), safetensors.torch.load_file(b)
    assert x.keys() == y.keys()
    return [k for k in x if not torch.equal(x[k], y[k])]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-data")
    for i in range(4):
        write_image(root / f"img{i}.png", sample_image(40, 48, seed=20 + i))
    write_image(root / "tiny.png", sample_image(10, 12, seed=30))  # smaller than a crop: upscaled
    return root


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory, data) -> tuple[Path, subprocess.CompletedProcess]:
    """A tiny FSQ tokenizer trained for 6 steps in one go."""
    root = tmp_path_factory.mktemp("vq-run")
    recipe = write_recipe(root / "recipe.yaml", "image-vq")
    return root / "out", ok(train(data, root / "out", recipe))


# -- recipes -------------------------------------------------------------------------------
def test_default_recipe():
    recipe = load_recipe(None, "image")
    assert recipe.kind == "image-vq" and recipe.train == ImageTrainConfig()


def test_shipped_recipe_loads_and_roundtrips(tmp_path):
    recipe = load_recipe(ROOT / "tokenizers_trained" / "mmtok-image-f8" / "recipe.yaml", "image")
    assert recipe.kind == "image-vq" and recipe.model.downsample == 8
    assert recipe.train.crop_size % recipe.model.downsample == 0
    assert len(recipe.train.exclude) == 8
    (tmp_path / "again.yaml").write_text(recipe.to_yaml())
    assert load_recipe(tmp_path / "again.yaml", "image") == recipe


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kind: image-vq\noptimizer: adam\n", "optimizer"),
        ("kind: audio-codec\n", "audio-codec"),
        ("kind: image-vq\nmodel: {patch_sise: 4}\n", "patch_sise"),
        ("kind: image-vq\ntrain: {stepz: 4}\n", "stepz"),
        ("kind: [unclosed\n", "YAML"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_bad_recipes(tmp_path, text, needle):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(MmtokError, match=needle):
        load_recipe(tmp_path / "r.yaml", "image")


def test_missing_recipe(tmp_path):
    with pytest.raises(MmtokError, match="no such recipe"):
        load_recipe(tmp_path / "nope.yaml", "image")


# -- schedule, batches, checkpoints (in process) -------------------------------------------
def test_lr_factor():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 10, 100, 0.1) == pytest.approx(0.1)
    values = [lr_factor(s, 10, 100, 0.1) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_step_batches_are_a_function_of_seed_step_rank():
    full = list(StepBatches(5, 3, seed=0, rank=0, start=0, steps=8))
    assert len(full) == 8 and all(len(b) == 3 for b in full)
    assert full == list(StepBatches(5, 3, seed=0, rank=0, start=0, steps=8))
    # Resuming at step 5 replays exactly the tail.
    assert list(StepBatches(5, 3, seed=0, rank=0, start=5, steps=8)) == full[5:]
    assert len(StepBatches(5, 3, seed=0, rank=0, start=5, steps=8)) == 3
    # Other ranks and seeds see other batches.
    assert list(StepBatches(5, 3, seed=0, rank=1, start=0, steps=8)) != full
    assert list(StepBatches(5, 3, seed=1, rank=0, start=0, steps=8)) != full
    assert all(0 <= i < 5 for batch in full for i, _ in batch)
    assert len({i for batch in full for i, _ in batch}) > 1


def test_step_batches_same_in_another_process():
    """Batches must not depend on per-process hash randomisation (PYTHONHASHSEED)."""
    code = "from mmtok.train.image_data import StepBatches; print(list(StepBatches(7, 2, 3, 1, 0, 4)))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED=s), check=True).stdout
        for s in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(list(StepBatches(7, 2, 3, 1, 0, 4)))


def test_random_crops(data):
    files = sorted(data.glob("*.png"))
    crops = RandomCrops(files, 16)
    a = crops[(0, 123)]
    assert a.shape == (3, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= -1 and float(a.max()) <= 1
    assert torch.equal(a, RandomCrops(files, 16)[(0, 123)])
    assert not torch.equal(a, crops[(0, 124)]) or not torch.equal(a, crops[(0, 125)])
    tiny = files.index(data / "tiny.png")
    assert crops[(tiny, 1)].shape == (3, 16, 16)
    # A crop is a window of the image (possibly mirrored).
    image = to_model(read_image(files[0]))
    found = False
    for top in range(40 - 16 + 1):
        for left in range(48 - 16 + 1):
            window = image[:, top : top + 16, left : left + 16]
            if torch.equal(window, a) or torch.equal(window.flip(-1), a):
                found = True
    assert found


def test_train_state_roundtrip(tmp_path):
    """Model, optimizer, torch / python / numpy RNG come back exactly, with no pickle."""
    model = make_tokenizer("dvae").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    for _ in range(2):
        opt.zero_grad()
        model(x, 0.5)["recon"].pow(2).mean().backward()
        opt.step()
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    save_train_state(tmp_path / "last", 2, {"model": model}, {"model": opt}, is_main=True, rank=0)
    expected_rng = (torch.rand(3), random.random(), np.random.rand())
    assert all(p.suffix in (".safetensors", ".json") for p in files_under(tmp_path))

    model2 = make_tokenizer("dvae", seed=9).train()
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-3)
    state = load_train_state(tmp_path / "last", {"model": model2}, {"model": opt2}, rank=0)
    assert state["step"] == 2
    assert (torch.rand(3).tolist(), random.random(), np.random.rand()) == (expected_rng[0].tolist(), *expected_rng[1:])
    for k, v in model.state_dict().items():
        assert torch.equal(v, model2.state_dict()[k]), k
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert json.loads(json.dumps(s1["param_groups"])) == json.loads(json.dumps(s2["param_groups"]))
    for idx, slots in s1["state"].items():
        for name, value in slots.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(s2["state"][idx][name])), (idx, name)


def test_resume_without_checkpoint(tmp_path):
    model = make_tokenizer("fsq")
    with pytest.raises(MmtokError, match="resume"):
        load_train_state(tmp_path / "none", {"model": model}, {}, rank=0)


# -- real runs through the console script ---------------------------------------------------
def test_train_writes_loadable_tokenizer_and_log(vq_run):
    out, result = vq_run
    assert "saved image-vq tokenizer" in result.stdout
    tok = mmtok.load(out)
    assert isinstance(tok, ImageVQ) and tok.config.quantizer.fsq_levels == (5, 5, 5)
    assert load_recipe(out / "recipe.yaml", "image").model == tok.config
    # Training moved the weights away from the initialisation (same seed, same init).
    init = make_tokenizer("fsq", seed=0)
    assert tok.fingerprint != init.fingerprint
    rows = log_rows(out)
    assert [r["step"] for r in rows] == [2, 4, 6]
    for row in rows:
        assert math.isfinite(row["loss"]) and row["loss"] > 0
        assert 0 < row["psnr"] < 60 and 0 < row["usage"] <= 1 and row["perplexity"] >= 1
        assert row["lr"] > 0
    ckpt = out / "checkpoints" / "last"
    assert json.loads((ckpt / "state.json").read_text())["step"] == 6
    assert same_tensors(ckpt / "model.safetensors", out / "model.safetensors") == []
    pickled = [p for p in files_under(out) if p.suffix in (".pt", ".pth", ".bin", ".pkl", ".ckpt")]
    assert pickled == [] and (ckpt / "optim-model.safetensors").is_file()
    # The trained tokenizer works end to end.
    image = to_model(sample_image(24, 20, seed=1))[None]
    assert tok.decode(tok.encode(image), size=(24, 20)).shape == (1, 3, 24, 20)


def test_exact_resume(vq_run, data, tmp_path):
    """6 steps in one go == stop after 3, then --resume: bitwise equal weights and optimizer."""
    straight, _ = vq_run
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq")
    out = tmp_path / "out"
    assert "continue with --resume" in ok(train(data, out, recipe, "--stop-after", "3")).stdout
    ckpt = out / "checkpoints" / "last"
    assert json.loads((ckpt / "state.json").read_text())["step"] == 3
    assert not (out / "model.safetensors").exists()  # the tokenizer is saved only when training completes
    assert same_tensors(ckpt / "model.safetensors", straight / "model.safetensors") != []  # only 3 steps so far
    ok(train(data, out, recipe, "--resume"))
    assert same_tensors(out / "model.safetensors", straight / "model.safetensors") == []
    ckpt, ref = out / "checkpoints" / "last", straight / "checkpoints" / "last"
    assert same_tensors(ckpt / "optim-model.safetensors", ref / "optim-model.safetensors") == []
    assert mmtok.load(out).fingerprint == mmtok.load(straight).fingerprint
    assert log_rows(out)[-1] == {**log_rows(straight)[-1], "steps_per_s": log_rows(out)[-1]["steps_per_s"]}


@pytest.fixture(scope="module")
def dvae_recipe(tmp_path_factory) -> Path:
    # Default tau annealing and KL warm-up: both schedules must continue across a resume, and
    # the Gumbel noise draws from the RNG, which resume must restore.
    model = {**TINY_MODEL, "codebook_size": 32, "embed_dim": 4}
    return write_recipe(tmp_path_factory.mktemp("dvae") / "recipe.yaml", "image-dvae", model=model, steps=4)


def test_dvae_trains_and_resumes_exactly(data, dvae_recipe, tmp_path):
    """The dVAE draws Gumbel noise from the torch RNG every step, so this also checks that
    resume restores the RNG stream exactly (nothing may draw from it after the restore)."""
    ok(train(data, tmp_path / "straight", dvae_recipe))
    tok = mmtok.load(tmp_path / "straight")
    assert isinstance(tok, ImageDVAE) and tok.codebook_sizes == [32]
    assert tok.fingerprint != make_tokenizer("dvae").fingerprint
    assert [r["step"] for r in log_rows(tmp_path / "straight")] == [2, 4]
    ok(train(data, tmp_path / "resumed", dvae_recipe, "--stop-after", "2"))
    ok(train(data, tmp_path / "resumed", dvae_recipe, "--resume"))
    assert same_tensors(tmp_path / "resumed" / "model.safetensors", tmp_path / "straight" / "model.safetensors") == []


def test_vq_with_adversarial_loss_resumes_exactly(data, tmp_path):
    """EMA VQ codebook (k-means init, dead-code restart) plus the PatchGAN term switched on
    mid-run: the discriminator and its optimizer are checkpointed and resume exactly."""
    model = {**TINY_MODEL, "latent_dim": 4, "quantizer": {"kind": "vq", "codebook_size": 16, "codebook_dim": 4}}
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq", model=model, adv_weight=0.1, adv_start=2)
    ok(train(data, tmp_path / "straight", recipe))
    rows = log_rows(tmp_path / "straight")
    assert rows[0]["d_loss"] == 0 and rows[-1]["d_loss"] > 0  # discriminator on from step 2
    ok(train(data, tmp_path / "resumed", recipe, "--stop-after", "3"))
    ok(train(data, tmp_path / "resumed", recipe, "--resume"))
    a, b = tmp_path / "straight" / "checkpoints" / "last", tmp_path / "resumed" / "checkpoints" / "last"
    for name in ("model", "disc", "optim-model", "optim-disc"):
        assert same_tensors(a / f"{name}.safetensors", b / f"{name}.safetensors") == [], name


def test_train_rejects_bad_crop_size(data, tmp_path):
    """A crop that is not a multiple of the downsample factor is a recipe error: one line."""
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq", crop_size=18)
    assert_cli_error(train(data, tmp_path / "out", recipe), "crop_size")


def test_train_resume_without_checkpoint_cli(data, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq")
    assert_cli_error(train(data, tmp_path / "out", recipe, "--resume"), "resume")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_accelerate_launch(data, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` runs two CPU processes (gloo) and
    writes one tokenizer, with one RNG state per rank in the checkpoint."""
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq", steps=4)
    out = tmp_path / "out"
    cmd = [
        str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "mmtok.cli.main", "train", "image", "--data", str(data), "--out", str(out),
        "--config", str(recipe), "--no-progress",
    ]
    result = ok(run_command(cmd, timeout=300, env=dict(os.environ, CUDA_VISIBLE_DEVICES="")))
    assert result.stdout.count("saved image-vq tokenizer") == 1  # reported by the main process only
    tok = mmtok.load(out)
    assert tok.fingerprint != make_tokenizer("fsq").fingerprint
    ckpt = out / "checkpoints" / "last"
    assert (ckpt / "rng-0.safetensors").is_file() and (ckpt / "rng-1.safetensors").is_file()
    assert json.loads((ckpt / "state.json").read_text())["step"] == 4
    assert [r["step"] for r in log_rows(out)] == [2, 4]  # logged once (main process), not twice
    assert same_tensors(ckpt / "model.safetensors", out / "model.safetensors") == []


# -- real training (slow) ------------------------------------------------------------------
@pytest.mark.slow
def test_training_improves_reconstruction(tmp_path):
    """A small model trained for a few hundred steps on three of the sample photos
    reconstructs the fourth (held out) far better than its untrained initialisation.
    Reference (2 CPU cores, ~15 s): training-crop PSNR ~19 -> ~27 dB; held-out ~8 -> ~19 dB."""
    model = {"patch_size": 2, "channels": 16, "channel_mult": [1, 2], "num_res_blocks": 1, "latent_dim": 4,
             "quantizer": {"kind": "fsq", "fsq_levels": [8, 8, 8, 5]}}
    recipe = write_recipe(tmp_path / "recipe.yaml", "image-vq", model=model, steps=600, batch_size=8, crop_size=32,
                          lr=2e-3, warmup_steps=20, log_every=100, exclude=["astronaut*"])
    ok(train(MEDIA, tmp_path / "out", recipe))
    trained = mmtok.load(tmp_path / "out")
    torch.manual_seed(0)
    untrained = ImageVQ(trained.config)
    held_out = to_model(read_image(MEDIA / "astronaut.jpg"))[None]
    size = tuple(held_out.shape[-2:])

    def quality(tok) -> float:
        return float(psnr(tok.decode(tok.encode(held_out), size=size), held_out)[0])

    before, after = quality(untrained), quality(trained)
    rows = log_rows(tmp_path / "out")
    assert rows[-1]["psnr"] > rows[0]["psnr"] + 5, rows
    assert after > before + 8, (before, after)
    assert after > 16, after
