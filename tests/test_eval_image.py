"""`mmtok eval` on image tokenizers: the report, the classic baselines at matched bits,
MS-SSIM, and agreement with `mmtok encode` / `decode` / `compare`."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import assert_cli_error, run_mmtok, sample_image, write_image

import mmtok
from mmtok.cli.main import main
from mmtok.eval.baselines.pillow_codecs import JPEG, WEBP, ImageCoder, encode
from mmtok.eval.image_eval import evaluate_images
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report
from mmtok.eval.selection import evaluation_files
from mmtok.media.image import to_model
from mmtok.metrics import MS_SSIM_MIN_SIDE, ms_ssim
from mmtok.modalities import named

# Three sizes, so every file is coded alone by `mmtok encode` too (same-size files are batched),
# one large enough for MS-SSIM, one with sizes that are not multiples of the factor.
SIZES = {"big.png": (168, 176), "small.png": (40, 48), "odd.jpg": (37, 53)}


def ok(result):
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-images")
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        write_image(root / name, sample_image(h, w, seed=10 + i), **({"quality": 95} if name.endswith(".jpg") else {}))
    return root


@pytest.fixture(scope="module")
def full_report(photos, saved_tokenizers, tmp_path_factory) -> Path:
    """Two tokenizers of different bit rates, every image baseline."""
    out = tmp_path_factory.mktemp("eval-report") / "report"
    ok(run_mmtok("eval", "-t", saved_tokenizers["fsq"], "-t", saved_tokenizers["vq"], "--data", photos, "--out", out,
                 "--examples", "2"))
    return out


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["image"]


def test_report_files_and_sections(full_report):
    for name in ("report.md", "report.html", "results.json", "figures/rate_distortion.png",
                 "figures/codebook_usage.png", "figures/reconstructions.jpg"):
        assert (full_report / name).is_file(), name
    md = (full_report / "report.md").read_text()
    for needle in ("## Rate and distortion", "## Reconstructions", "## Codebook usage", "## Determinism",
                   "JPEG @ fsq", "JPEG @ vq", "WebP @ fsq", "patch k-means", "favours the baseline", "headers included"):
        assert needle in md, needle
    for figure in (full_report / "figures").iterdir():
        assert figure.stat().st_size < 1_000_000, figure


def test_tokenizer_numbers(full_report):
    res = results(full_report)
    assert sorted(Path(f).name for f in res["files"]) == sorted(SIZES)
    for name, k in (("fsq", 125), ("vq", 64)):
        tok = res["tokenizers"][name]
        assert tok["codebook_sizes"] == [k] and tok["downsample"] == 4
        for row in tok["per_image"]:
            h, w = row["height"], row["width"]
            assert row["bpp"] == pytest.approx(math.ceil(h / 4) * math.ceil(w / 4) * math.log2(k) / (h * w))
            # MS-SSIM only where five scales fit.
            assert (row["ms_ssim"] is None) == (min(h, w) < MS_SSIM_MIN_SIDE)
        summary = tok["summary"]
        assert 0 < summary["usage"] <= 1 and 1 <= summary["perplexity"] <= k
        assert summary["ms_ssim_images"] == 1
        det = tok["determinism"]
        assert 0 <= det["repeat"] <= 1 and 0 <= det["alone_vs_batch"] <= 1 and det["items"] == 3
    assert res["determinism"]["crop"] == 37  # the smallest image's short side


def test_codecs_spend_at_most_the_tokenizer_bits(full_report):
    res = results(full_report)
    tok_bpp = {name: {r["name"]: r["bpp"] for r in tok["per_image"]} for name, tok in res["tokenizers"].items()}
    within = 0
    for codec in (JPEG, WEBP):
        matched = res["baselines"][codec.name]["matched"]
        assert set(matched) == {"fsq", "vq"}
        for label, entry in matched.items():
            assert entry["summary"]["over_target"] == sum(r["over_target"] for r in entry["per_image"])
            for row in entry["per_image"]:
                assert row["target_bpp"] == tok_bpp[label][row["name"]]
                assert row["payload_bpp"] < row["bpp"]
                if row["over_target"]:  # flagged: only the lowest quality, and it really overshoots
                    assert row["quality"] == codec.lowest and row["bpp"] > row["target_bpp"]
                else:
                    within += 1
                    assert row["bpp"] <= row["target_bpp"]
    assert within >= 2  # the big image fits both codecs: the check above is not vacuous


def test_kmeans_has_the_first_tokenizers_grid(full_report):
    res = results(full_report)
    km = res["baselines"]["kmeans"]
    assert km["codebook_size"] == 125 and km["patch"] == 4 and km["fitted_on_evaluated_files"]
    assert km["inertia"][-1] <= km["inertia"][0]
    fsq = {r["name"]: r["bpp"] for r in res["tokenizers"]["fsq"]["per_image"]}
    assert {r["name"]: r["bpp"] for r in km["per_image"]} == fsq


def test_report_psnr_equals_encode_decode_compare(full_report, photos, saved_tokenizers, tmp_path):
    """The same commands a user runs (in-process: three more interpreter starts would double
    this file's run time)."""
    def mmtok_cli(*args: str | Path) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    mmtok_cli("encode", photos, "-t", saved_tokenizers["fsq"], "-o", tmp_path / "tokens")
    mmtok_cli("decode", tmp_path / "tokens", "-o", tmp_path / "recon")
    printed = mmtok_cli("compare", photos, tmp_path / "recon")
    compared = {m[1]: float(m[2]) for m in re.finditer(r"^(\S+)\s+PSNR\s+([\d.]+)", printed, re.M)}
    reported = {r["name"]: r["psnr"] for r in results(full_report)["tokenizers"]["fsq"]["per_image"]}
    assert set(compared) == set(reported)
    for name, value in reported.items():
        assert value == pytest.approx(compared[name], abs=1e-3), name


def test_bad_baseline_is_one_error_line(tok_dir, photos, tmp_path):
    result = run_mmtok("eval", "-t", tok_dir, "--data", photos, "--out", tmp_path / "r", "--baseline", "png")
    assert_cli_error(result, "--baseline png", "jpeg")
    assert not (tmp_path / "r").exists()


def test_no_baselines(tok_dir, photos, tmp_path):
    out = tmp_path / "plain"
    ok(run_mmtok("eval", "-t", tok_dir, "--data", photos / "small.png", "--out", out, "--no-baselines"))
    res = results(out)
    assert res["baselines"] == {} and list(res["tokenizers"]) == ["fsq"]
    assert "JPEG @" not in (out / "report.md").read_text()


def test_kmeans_skipped_when_too_few_patches(tok_dir, photos, tmp_path):
    """A k-means training set with fewer patches than codes: the baseline is skipped and the
    report says why."""
    write_image(tmp_path / "train" / "tiny.png", sample_image(12, 12, seed=3))  # 9 patches < 125 codes
    options = EvalOptions(baselines=("kmeans",), progress=False, baseline_train=(str(tmp_path / "train"),))
    with Report("skipped") as report:
        evaluate_images({"fsq": mmtok.load(tok_dir)}, [photos / "small.png"], report, options)
        km = report.results["image"]["baselines"]["kmeans"]
        assert "fewer than 125 codes" in km["skipped"] and not km["fitted_on_evaluated_files"]
        assert "patch k-means** was skipped" in report.markdown()


# -- the pieces, on their own ---------------------------------------------------------------

def test_within_picks_the_best_quality_that_fits():
    image = sample_image(96, 112, seed=7)
    for codec in (JPEG, WEBP):
        coder = ImageCoder(codec, image)
        low, high = coder.at(codec.lowest).bpp, coder.at(codec.highest).bpp
        for budget in (low * 1.5, (low + high) / 2, high * 2):
            coded = coder.within(budget)
            assert coded.bpp <= budget
            if coded.quality < codec.highest:  # one step up no longer fits
                assert encode(codec, image, coded.quality + 1).bpp > budget
        below = coder.within(low / 2)
        assert below.quality == codec.lowest and below.bpp > low / 2


def test_header_bytes():
    """Without optimised Huffman tables, a JPEG's tables and headers have the same size at every
    quality; a simple lossy WebP has a 20-byte container (RIFF header + one chunk header)."""
    image = sample_image(64, 64, seed=1)
    plain = dataclasses.replace(JPEG, options={})
    headers = {encode(plain, image, q).header_bytes for q in (5, 50, 90)}
    sizes = {encode(plain, image, q).file_bytes for q in (5, 50, 90)}
    assert len(headers) == 1 and len(sizes) == 3
    assert {encode(WEBP, image, q).header_bytes for q in (0, 50, 90)} == {20}


def test_ms_ssim():
    x = to_model(sample_image(MS_SSIM_MIN_SIDE, 170, seed=2))[None]
    g = torch.Generator().manual_seed(0)
    noisy = [(x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1) for s in (0.02, 0.1, 0.3)]
    scores = [float(ms_ssim(x, y)[0]) for y in noisy]
    assert float(ms_ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    assert math.isnan(float(ms_ssim(x[..., :-1, :], x[..., :-1, :])[0]))  # one row short of five scales


def test_heldout_recipe_fits_kmeans_on_the_training_files(photos, tmp_path):
    """With --heldout and no --baseline-train, k-means learns from the files the recipe trained
    on, never from the held-out files it is scored on."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("kind: image-vq\ntrain:\n  exclude: ['small*']\n")
    evaluated, train = evaluation_files((photos,), named("image"), recipe, None)
    assert sorted(Path(p).name for p in train) == ["big.png", "odd.jpg"]
    assert all(f.name.startswith("small") for f in evaluated) and evaluated
    assert evaluation_files((photos,), named("image"), None, None)[1] == ()


def test_tokens_first_over_two_tokenizers(full_report):
    """Tokens per image, then bits, lead every table row and results.json entry: for both
    tokenizers (codes on the /4 grid), n/a / null for the classic codecs."""
    res = results(full_report)
    grid = {name: math.ceil(h / 4) * math.ceil(w / 4) for name, (h, w) in SIZES.items()}
    mean_tokens = sum(grid.values()) / len(grid)
    for name in ("fsq", "vq"):
        tok = res["tokenizers"][name]
        assert list(tok)[:2] == ["tokens_per_image_mean", "bpp_mean"] and tok["tokens_per_image_mean"] == pytest.approx(mean_tokens)
        assert list(tok["summary"])[:3] == ["tokens_mean", "tokens_median", "bpp_mean"]
        assert [list(r)[:3] for r in tok["per_image"]] == [["name", "tokens", "bpp"]] * len(SIZES)
        assert {r["name"]: r["tokens"] for r in tok["per_image"]} == grid
    for codec in ("jpeg", "webp"):
        for matched in res["baselines"][codec]["matched"].values():
            assert matched["summary"]["tokens_mean"] is None
            assert all(list(r)[:3] == ["name", "tokens", "bpp"] and r["tokens"] is None for r in matched["per_image"])
    md = (full_report / "report.md").read_text()
    header = "| method | tokens per image | bpp | payload bpp | PSNR |"
    table = md[md.index(header):].split("\n\n")[0].splitlines()[2:]
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in table}
    assert cells["fsq"] == cells["vq"] == f"{mean_tokens:.1f}" and cells["patch k-means"] == f"{mean_tokens:.1f}"
    assert all(cells[m] == "n/a" for m in cells if m.startswith(("JPEG", "WebP"))) and len(cells) == 7
    assert "| codec | quality | tokens per image | bpp |" in md
    assert "| file | size | fsq tokens | vq tokens | fsq bpp | vq bpp | fsq PSNR |" in md
    html = (full_report / "report.html").read_text()
    assert "<tr><th>method</th><th>tokens per image</th><th>bpp</th>" in html
