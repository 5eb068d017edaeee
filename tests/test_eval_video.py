"""`mmtok eval` on video through the real command: two tiny tokenizers side by side with
H.264 at their bits, the report's files and numbers (bits honest, metrics the same as
`mmtok compare` on the same reconstruction), the windowed round trip equal to whole-clip
coding, the frame cap, and a wrong baseline giving one error line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import assert_cli_error, make_video_tokenizer, run_mmtok, write_sample_video

import mmtok
from mmtok.eval.baselines.h264 import TOLERANCE, encode_h264, x264_cpu, yuv_frames
from mmtok.eval.options import EvalOptions
from mmtok.eval.report import Report, format_cell
from mmtok.eval.video_clips import read_clip
from mmtok.eval.video_coding import roundtrip
from mmtok.eval.video_eval import evaluate_videos
from mmtok.eval.video_measure import h264_bpp_at, h264_label
from mmtok.eval.video_metrics import frame_psnr, frame_ssim, temporal_flicker
from mmtok.media.image import from_model, to_model
from mmtok.quantize import QuantizerConfig
from mmtok.tokens_file import TokenFile

SECOND = "fsq512"  # a second tokenizer with a larger codebook: another rate on the same clips


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-video")
    write_sample_video(root / "a.mp4", 13, 96, 128, fps=12, seed=1)
    write_sample_video(root / "odd.mp4", 9, 75, 98, fps=12.5, seed=2)  # odd size: padding and yuv420p's even sizes
    return root


@pytest.fixture(scope="module")
def second_tok_dir(tmp_path_factory) -> Path:
    tok = make_video_tokenizer(seed=1, quantizer=QuantizerConfig(kind="fsq", fsq_levels=(8, 8, 8)))
    return tok.save_pretrained(tmp_path_factory.mktemp("video-tok2") / SECOND)


@pytest.fixture(scope="module")
def evaluated(video_tok_dir, second_tok_dir, clips, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eval-out") / "report"
    result = run_mmtok("eval", "-t", video_tok_dir, "-t", f"{SECOND}={second_tok_dir}", "--data", clips, "--out", out,
                       "--examples", "1", timeout=180)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "results.json").read_text())["video"]


def compare_scores(original: Path, recon: Path) -> dict[str, float]:
    """`mmtok compare` of two files: {"PSNR": ..., "SSIM": ..., "flicker": ...} as printed."""
    result = run_mmtok("compare", original, recon)
    assert result.returncode == 0, result.stderr
    return {k: float(v) for k, v in re.findall(r"(PSNR|SSIM|flicker)\s+(-?[\d.]+)", result.stdout)}


def test_report_files_and_honest_bits(evaluated, video_tok_dir):
    out, video = evaluated
    markdown = (out / "report.md").read_text()
    figures = re.findall(r"\]\(figures/([^)]+)\)", markdown)
    assert {"rate_distortion.png", "quality_per_frame.png"} <= set(figures) and any(f.endswith(".jpg") for f in figures)
    for name in figures:
        data = (out / "figures" / name).read_bytes()
        assert data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0") and len(data) < 250_000, name
    assert (out / "report.html").read_text().count("<img") == len(figures)
    for section in ("Quality and rate", "Per clip", "Quality per frame", "Frames", "Determinism"):
        assert f"## {section}" in markdown
    # Random-init tokenizers score below H.264's coarsest CRF, and the headline says so.
    assert markdown.count("even H.264 at CRF 51 is better") == 2

    tok = mmtok.load(video_tok_dir)
    names = ["tiny-video", SECOND]
    assert [s["method"] for s in video["summary"]] == [*names[:1], h264_label(names[0]), names[1], h264_label(names[1])]
    for row in video["per_clip"]:
        pixels = row["frames"] * row["height"] * row["width"]
        ours = row["methods"]["tiny-video"]
        assert ours["grid"] == list(tok.grid_shape(row["frames"], row["height"], row["width"]))
        assert ours["bpp"] == pytest.approx(tok.bits_per_pixel(row["frames"], row["height"], row["width"]))
        for name in names:
            target = row["methods"][name]["bits"]
            h264 = row["methods"][h264_label(name)]
            assert h264["target_bits"] == target and h264["reached_target"]
            assert h264["bits"] == 8 * h264["payload_bytes"] <= (1 + TOLERANCE) * target
            assert h264["bpp"] == pytest.approx(h264["bits"] / pixels)
            assert h264["psnr"] > row["methods"][name]["psnr"]  # a random-init tokenizer loses to H.264
        crfs = [s["crf"] for s in row["sweep"]]
        bits = [s["bits"] for s in row["sweep"]]
        assert crfs == sorted(crfs) and bits == sorted(bits, reverse=True)  # coarser CRF, fewer bits
    for name in names:
        stats = video["determinism"][name]
        assert stats["items"] == 32 and stats["item_shape"] == [3, 5, 64, 64]
        assert 0.99 <= stats["repeat"] <= 1 and 0.99 <= stats["alone_vs_batch"] <= 1


def test_numbers_match_mmtok_compare(evaluated, clips, video_tok_dir, tmp_path):
    """H.264: the report's encode, reproduced byte for byte at its CRF in another process (x264
    without its AVX-512 code, which reads uninitialised memory), scores the same under
    `mmtok compare`. Tokenizer: `mmtok encode` gives the codes the report measured, and their
    decode scores as reported under compare's formula (`mmtok decode` would store the frames
    as H.264 again, which changes a random-init decoder's chroma noise by most of a dB)."""
    _, video = evaluated
    row = next(r for r in video["per_clip"] if r["file"] == "a.mp4")
    h264 = row["methods"][h264_label("tiny-video")]
    original = clips / "a.mp4"
    x = read_clip(original)
    assert "AVX512" not in (x264_cpu() or "")
    encoded = encode_h264(yuv_frames(x), row["fps"], h264["crf"], threads=video["h264"]["threads"])
    assert encoded.payload_bytes == h264["payload_bytes"]
    (tmp_path / "h264.mp4").write_bytes(encoded.data)
    scores = compare_scores(original, tmp_path / "h264.mp4")
    assert scores["PSNR"] == pytest.approx(h264["psnr"], abs=1e-3)
    assert scores["SSIM"] == pytest.approx(h264["ssim"], abs=1e-3)
    assert scores["flicker"] == pytest.approx(h264["flicker"], abs=1e-3)

    ours = row["methods"]["tiny-video"]
    assert run_mmtok("encode", original, "-t", video_tok_dir, "-o", tmp_path / "a.mmtok").returncode == 0
    codes = TokenFile.load(tmp_path / "a.mmtok").codes.long()
    assert list(codes.shape) == ours["grid"]
    tok = mmtok.load(video_tok_dir)
    recon = to_model(from_model(tok.decode(codes[None], size=tuple(x.shape[1:]))[0]))  # what a user decodes, in 8 bits
    assert float(frame_psnr(to_model(x), recon).mean()) == pytest.approx(ours["psnr"], abs=1e-4)
    assert float(frame_ssim(to_model(x), recon).mean()) == pytest.approx(ours["ssim"], abs=1e-4)
    assert temporal_flicker(to_model(x), recon) == pytest.approx(ours["flicker"], abs=1e-4)


def test_h264_rate_at_equal_psnr_interpolates_in_log_bpp():
    sweep = [{"bpp": 0.01, "psnr": 20.0}, {"bpp": 0.04, "psnr": 30.0}, {"bpp": 0.16, "psnr": 36.0}]
    assert h264_bpp_at(25.0, sweep) == pytest.approx(0.02)
    assert h264_bpp_at(36.0, sweep) == pytest.approx(0.16)
    assert h264_bpp_at(19.0, sweep) is None and h264_bpp_at(37.0, sweep) is None


def test_windowed_roundtrip_equals_whole_clip(clips, video_tok_dir):
    tok = mmtok.load(video_tok_dir)
    x = read_clip(clips / "odd.mp4")
    rt = roundtrip(tok, x, window=1)
    codes = tok.encode(to_model(x)[None])
    assert torch.equal(rt.codes, codes[0])
    whole = from_model(tok.decode(codes, size=tuple(x.shape[1:]))[0])
    assert rt.recon.shape == x.shape and (rt.recon.int() - whole.int()).abs().max() <= 1


def test_frame_cap_and_no_baselines(clips, video_tok_dir):
    """Called as a function: a clip is measured on its first `max_frames` frames (the report
    says so), and without baselines only the tokenizer is measured."""
    tok = mmtok.load(video_tok_dir)
    files = [clips / "a.mp4"]
    with Report("cap", "") as report:
        evaluate_videos({"tiny": tok}, files, report, EvalOptions(examples=1, progress=False), max_frames=6)
        video = report.results["video"]
        markdown = report.markdown()
    row = video["per_clip"][0]
    assert (row["frames"], row["source_frames"]) == (6, 13)
    assert len(row["methods"]["tiny"]["psnr_per_frame"]) == 6 and list(row["methods"]) == ["tiny"] and row["sweep"] == []
    assert "6 of 13" in markdown and "1 clip was cut" in markdown and "No classic codec was run" in markdown
    assert row["methods"]["tiny"]["bits"] == math.prod(tok.grid_shape(6, 96, 128)) * math.log2(tok.codebook_size)


def test_image_baseline_on_video_is_one_error_line(video_tok_dir, clips, tmp_path):
    result = run_mmtok("eval", "-t", video_tok_dir, "--data", clips, "--out", tmp_path / "r", "--baseline", "jpeg")
    assert_cli_error(result, "--baseline jpeg", "video", "h264")
    assert not (tmp_path / "r").exists()


def test_tokens_first_over_two_tokenizers(evaluated):
    """Tokens per second (codes x fps / frames), then bpp, lead every rate table and every
    results.json entry, for both tokenizers; H.264 makes no tokens: n/a / null."""
    out, video = evaluated
    names = ["tiny-video", SECOND]
    for row in video["per_clip"]:
        for label, method in row["methods"].items():
            assert list(method)[:2] == ["tokens_per_second", "bpp"], label
            if label in names:
                assert method["tokens_per_second"] == pytest.approx(method["codes"] * row["fps"] / row["frames"])
            else:
                assert method["tokens_per_second"] is None
    for s in video["summary"]:
        assert list(s)[:5] == ["method", "tokens_per_second_mean", "tokens_per_second_median", "bpp_mean", "bpp_median"]
        assert (s["tokens_per_second_mean"] is None) == (s["method"] not in names)
    assert all(list(facts)[0] == "tokens_per_second" for facts in video["tokenizers"].values())
    markdown = (out / "report.md").read_text()
    header = "| method | tokens/s | bpp | clips | PSNR mean |"
    table = markdown[markdown.index(header):].split("\n\n")[0].splitlines()[2:]
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in table}
    means = {s["method"]: s["tokens_per_second_mean"] for s in video["summary"]}
    assert {m: c for m, c in cells.items() if m in names} == {m: format_cell(means[m]) for m in names}
    assert [c for m, c in cells.items() if m not in names] == ["n/a", "n/a"]
    assert "| tokenizer | tokens/s (256x256, 24 fps) | bpp (nominal) |" in markdown
    assert "| H.264 CRF | tokens/s | bpp |" in markdown
    assert f"| clip | frames | size | fps | tiny-video tokens/s | {SECOND} tokens/s | tiny-video bpp |" in markdown


def test_image_tokenizer_is_measured_frame_by_frame(video_tok_dir, tok_dir, clips, tmp_path):
    """`-t VIDEO -t IMAGE`: the image tokenizer codes every frame alone (the baseline a video
    tokenizer must beat); its bits are frames x its grid x log2(K), and its PSNR is what
    coding each frame as an image gives."""
    out = tmp_path / "report"
    result = run_mmtok("eval", "-t", video_tok_dir, "-t", f"frames={tok_dir}", "--data", clips / "a.mp4", "--out", out,
                       "--no-baselines", "--examples", "0", timeout=180)
    assert result.returncode == 0, result.stderr
    video = json.loads((out / "results.json").read_text())["video"]
    image_tok, x = mmtok.load(tok_dir), read_clip(clips / "a.mp4")
    _, frames, height, width = x.shape
    row = video["per_clip"][0]["methods"]["frames"]
    assert row["bits"] == frames * math.prod(image_tok.grid_shape(height, width)) * math.log2(image_tok.codebook_sizes[0])
    assert row["tokens_per_second"] == pytest.approx(row["codes"] * video["per_clip"][0]["fps"] / frames)
    recon = from_model(image_tok.decode(image_tok.encode(to_model(x.permute(1, 0, 2, 3))), (height, width)))
    assert row["psnr_per_frame"] == pytest.approx(frame_psnr(to_model(x), to_model(recon.permute(1, 0, 2, 3))).tolist(), abs=1e-4)
    assert video["tokenizers"]["frames"]["kind"] == f"{image_tok.kind} (per frame)"
    assert video["determinism"]["frames"]["item_shape"][1] == 2   # crops of 2 frames, each coded alone

