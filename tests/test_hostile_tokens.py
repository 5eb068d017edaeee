"""Token files that lie: `mmtok decode` (and `mmtok info`) given `.mmtok` files whose codes or
metadata were forged (float or bool codes, empty grids, absurd sample rates, lengths and
frame rates, shapes that disagree). Every one must be refused against the token-file schema
with one `error:` line naming the file, before any allocation or output (tests/hostile.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import safetensors
import safetensors.torch
import torch
from conftest import sample_image, write_image, write_sample_audio, write_sample_video
from hostile import check

import mmtok
from mmtok.audio.files import encode_audio_files
from mmtok.image.files import encode_image_files
from mmtok.video.files import encode_video_files

CLASS = "token files"
CASES = {}


def case(modality: str):
    def wrap(fn):
        CASES[fn.__name__] = (modality, fn)
        return fn
    return wrap


@pytest.fixture(scope="module")
def made(tmp_path_factory, tok_dir, codec_dir, video_tok_dir) -> dict[str, tuple[Path, Path]]:
    """A real token file and its tokenizer per modality."""
    root = tmp_path_factory.mktemp("hostile-tokens")
    image = write_image(root / "i.png", sample_image(24, 28))
    audio = write_sample_audio(root / "a.wav", 1.0, 16000)
    video = write_sample_video(root / "v.mp4", 5, 16, 16)
    return {
        "image": (encode_image_files(mmtok.load(tok_dir), [image], root / "i.mmtok")[0], tok_dir),
        "audio": (encode_audio_files(mmtok.load(codec_dir), [audio], root / "a.mmtok")[0], codec_dir),
        "video": (encode_video_files(mmtok.load(video_tok_dir), [video], root / "v.mmtok")[0], video_tok_dir),
    }


@dataclass
class Forge:
    """Rewrite a real token file: `codes` and metadata changes (None removes a key;
    `original_json` replaces the facts' JSON text); `original` changes merge into the
    recorded facts (None removes a key)."""

    source: Path
    target: Path

    def __call__(self, codes: torch.Tensor | None = None, original: dict | None = None, **meta) -> Path:
        with safetensors.safe_open(self.source, framework="pt") as f:
            stored, recorded = f.get_tensor("codes"), dict(f.metadata())
        facts = json.loads(recorded["original"])
        for key, value in (original or {}).items():
            if value is None:
                facts.pop(key, None)
            else:
                facts[key] = value
        recorded["original"] = json.dumps(facts)
        codes = stored if codes is None else codes
        recorded["grid"] = json.dumps(list(codes.shape))
        if "original_json" in meta:  # raw text in place of the facts
            recorded["original"] = meta.pop("original_json")
        for key, value in meta.items():
            if value is None:
                recorded.pop(key, None)
            else:
                recorded[key] = value
        safetensors.torch.save_file({"codes": codes.contiguous()}, self.target, metadata=recorded)
        return self.target

    def codes(self) -> torch.Tensor:
        with safetensors.safe_open(self.source, framework="pt") as f:
            return f.get_tensor("codes")


# -- every modality ------------------------------------------------------------------------------
def _empty_grid(f: Forge) -> Path:
    shape = list(f.codes().shape)
    shape[-1] = 0
    return f(codes=torch.zeros(shape, dtype=torch.uint8))


def _truncated(f: Forge) -> Path:
    data = f.source.read_bytes()
    f.target.write_bytes(data[: len(data) - 7])
    return f.target


GENERIC = {
    "float_codes": lambda f: f(codes=f.codes().float()),
    "bool_codes": lambda f: f(codes=f.codes() > 0),
    "grid_disagrees_with_codes": lambda f: f(grid="[1, 2, 3, 4]"),
    "missing_fingerprint": lambda f: f(fingerprint=None),
    "version_99": lambda f: f(version="99"),
    "original_is_a_list": lambda f: f(original_json="[1, 2]"),
    "unknown_modality": lambda f: f(modality="smell"),
    "truncated_file": _truncated,
    "codes_out_of_range": lambda f: f(codes=f.codes().to(torch.int32) + 100_000),
    "empty_grid": _empty_grid,
}
for _modality in ("image", "audio", "video"):
    for _name, _forge in GENERIC.items():
        CASES[f"{_modality}_{_name}"] = (_modality, _forge)


# -- image facts ---------------------------------------------------------------------------------
@case("image")
def image_height_not_a_number(f):
    return f(original={"height": "tall"})


@case("image")
def image_height_negative(f):
    return f(original={"height": -24})


@case("image")
def image_width_huge(f):
    return f(original={"width": 10**12})


@case("image")
def image_codes_3d(f):
    return f(codes=f.codes()[None])


# -- audio facts ---------------------------------------------------------------------------------
@case("audio")
def audio_num_samples_1e12(f):
    return f(original={"num_samples": 10**12})


@case("audio")
def audio_num_samples_float(f):
    return f(original={"num_samples": 16000.5})


@case("audio")
def audio_codec_samples_beyond_codes(f):
    return f(original={"codec_samples": 10**9})


@case("audio")
def audio_sample_rate_1e9(f):
    return f(original={"sample_rate": 10**9})


@case("audio")
def audio_sample_rate_zero(f):
    return f(original={"sample_rate": 0})


@case("audio")
def audio_sample_rate_negative(f):
    return f(original={"sample_rate": -16000})


@case("audio")
def audio_sample_rate_missing(f):
    return f(original={"sample_rate": None})


@case("audio")
def audio_zero_frames(f):
    return f(codes=f.codes()[:, :0])


@case("audio")
def audio_levels_as_frames(f):
    return f(codes=f.codes().T.contiguous())


# -- video facts ---------------------------------------------------------------------------------
@case("video")
def video_fps_zero(f):
    return f(original={"fps": 0})


@case("video")
def video_fps_1e9(f):
    return f(original={"fps": 1e9})


@case("video")
def video_fps_text(f):
    return f(original={"fps": "fast"})


@case("video")
def video_num_frames_mismatch(f):
    return f(original={"num_frames": 1000})


@case("video")
def video_height_zero(f):
    return f(original={"height": 0})


@case("video")
def video_num_frames_missing(f):
    return f(original={"num_frames": None})


@pytest.mark.parametrize("name", CASES)
def test_hostile_token_file(name, made, tmp_path):
    modality, forge = CASES[name]
    source, tok = made[modality]
    (tmp_path / "in").mkdir()
    bad = forge(Forge(source, tmp_path / "in" / f"{name}.mmtok"))
    check(CLASS, name, ["decode", bad, "-t", tok, "-o", tmp_path / "out"], bad.name, tmp_path)


def test_info_refuses_a_forged_token_file(made, tmp_path):
    source, _ = made["audio"]
    bad = Forge(source, tmp_path / "rate.mmtok")(original={"sample_rate": 0})
    check(CLASS, "info_forged", ["info", bad], bad.name, tmp_path)


def test_decode_without_t_refuses_a_forged_file(made, tmp_path):
    source, _ = made["image"]
    bad = Forge(source, tmp_path / "f.mmtok")(codes=Forge(source, tmp_path / "x").codes().float())
    (tmp_path / "x").unlink(missing_ok=True)
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    check(CLASS, "decode_recorded_tokenizer_forged", ["decode", bad, "-o", tmp_path / "out"], bad.name, tmp_path)
