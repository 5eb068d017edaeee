"""Hostile inputs for video: `mmtok encode` / `mmtok decode` with the tiny video tokenizer,
given damaged or wrong files, bad options (a frame rate of 1e9 must not run forever) and
output paths that cannot be written. Each case must end in one clear `error:` line naming the
file or option, exit 1, nothing left behind (tests/hostile.py)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_sample_audio, write_sample_video
from hostile import check, disk_full, make_fifo, read_only_place

import mmtok
from mmtok.video.files import encode_video_files

CLASS = "video"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@dataclass
class Env:
    tmp: Path
    tok: Path
    image_tok: Path
    audio_tok: Path
    good: Path          # 9 frames of 24x32 at 12 fps
    tokens: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / "in" / name
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def made(tmp_path_factory, video_tok_dir):
    root = tmp_path_factory.mktemp("hostile-video")
    good = write_sample_video(root / "good.mp4", 9, 24, 32)
    tokens = encode_video_files(mmtok.load(video_tok_dir), [good], root / "good.mmtok")[0]
    return good, tokens


@pytest.fixture
def env(tmp_path, made, video_tok_dir, tok_dir, codec_dir) -> Env:
    good, tokens = made
    (tmp_path / "in").mkdir()
    return Env(tmp_path, video_tok_dir, tok_dir, codec_dir, shutil.copy(good, tmp_path / "in" / "good.mp4"),
               shutil.copy(tokens, tmp_path / "in" / "good.mmtok"))


def encode(e: Env, path: Path, *options) -> list:
    return ["encode", path, "-t", e.tok, "-o", e.out, *options]


def decode(e: Env, path: Path | None = None, *options, out: Path | None = None) -> list:
    return ["decode", path or e.tokens, "-t", e.tok, "-o", out or e.out, *options]


# -- damaged or wrong files ----------------------------------------------------------------------
@case
def truncated_mp4(e):
    data = e.good.read_bytes()
    return encode(e, e.file("cut.mp4", data[: len(data) // 3])), "cut.mp4"


@case
def mp4_cut_near_the_end(e):
    data = e.good.read_bytes()
    return encode(e, e.file("tail.mp4", data[: len(data) - 400])), "tail.mp4"


@case
def empty_mp4(e):
    return encode(e, e.file("empty.mp4", b"")), "empty.mp4"


@case
def random_bytes_mp4(e):
    return encode(e, e.file("noise.mp4", bytes(range(256)) * 64)), "noise.mp4"


@case
def text_named_webm(e):
    return encode(e, e.file("notes.webm", b"not a video\n" * 50)), "notes.webm"


@case
def audio_only_named_mp4(e):
    wav = write_sample_audio(e.tmp / "in" / "voice.wav", 0.5, 16000)
    return encode(e, e.file("voice.mp4", wav.read_bytes())), "voice.mp4"


@case
def fifo_mp4(e):
    return encode(e, make_fifo(e.tmp / "in" / "pipe.mp4")), "pipe.mp4"


@case
def folder_without_videos(e):
    (e.tmp / "in" / "none").mkdir()
    (e.tmp / "in" / "none" / "a.txt").write_text("x")
    return encode(e, e.tmp / "in" / "none"), "none"


@case
def one_damaged_among_good(e):
    batch = e.tmp / "in" / "batch"
    write_sample_video(batch / "a.mp4", 5, 16, 16)
    (batch / "b.mp4").write_bytes(e.good.read_bytes()[:500])
    return encode(e, batch), "b.mp4"


@case
def missing_input(e):
    return encode(e, e.tmp / "in" / "absent.mp4"), "absent.mp4"


# -- options -------------------------------------------------------------------------------------
@case
def fps_1e9(e):
    return encode(e, e.good, "--fps", "1e9"), "--fps", {"timeout": 30}


@case
def fps_zero(e):
    return encode(e, e.good, "--fps", "0"), "--fps"


@case
def fps_negative(e):
    return encode(e, e.good, "--fps", "-5"), "--fps"


@case
def fps_nan(e):
    return encode(e, e.good, "--fps", "nan"), "--fps"


@case
def fps_inf(e):
    return encode(e, e.good, "--fps", "inf"), "--fps"


@case
def short_side_zero(e):
    return encode(e, e.good, "--short-side", "0"), "--short-side"


@case
def short_side_huge(e):
    return encode(e, e.good, "--short-side", "100000"), "--short-side"


@case
def short_side_text(e):
    return encode(e, e.good, "--short-side", "big"), "--short-side"


@case
def kbps_for_video(e):
    return encode(e, e.good, "--kbps", "3"), "--kbps"


@case
def num_quantizers_for_video(e):
    return encode(e, e.good, "--num-quantizers", "2"), "--num-quantizers"


@case
def batch_size_zero(e):
    return encode(e, e.good, "--batch-size", "0"), "--batch-size"


@case
def decode_format_wav(e):
    return decode(e, None, "--format", "wav"), "--format"


@case
def decode_to_avi(e):
    return decode(e, out=e.out / "x.avi"), "x.avi"


@case
def decode_with_image_tokenizer(e):
    return ["decode", e.tokens, "-t", e.image_tok, "-o", e.out], "good.mmtok"


@case
def encode_with_audio_codec(e):
    return ["encode", e.good, "-t", e.audio_tok, "-o", e.out], "good.mp4"


# -- output paths --------------------------------------------------------------------------------
@case
def out_is_a_file_for_a_folder(e):
    second = shutil.copy(e.good, e.tmp / "in" / "second.mp4")
    return ["encode", e.good, second, "-t", e.tok, "-o", e.file("taken", b"x")], "taken"


@case
def out_parent_is_a_file(e):
    return encode(e, e.good)[:-1] + [e.file("blocker", b"x") / "t.mmtok"], "blocker"


@case
def out_read_only(e):
    return encode(e, e.good)[:-1] + [read_only_place() / "t.mmtok"], str(read_only_place())


@case
def decode_out_read_only(e):
    return decode(e, out=read_only_place() / "x.mp4"), str(read_only_place())


@case
def decode_out_parent_is_a_file(e):
    return decode(e, out=e.file("blocker", b"x") / "x.mp4"), "blocker"


@case
def disk_full_encode(e):
    return encode(e, e.good)[:-1] + [e.out / "deep" / "t.mmtok"], "t.mmtok", {"process": True, "preexec": disk_full(600)}


@case
def disk_full_decode(e):
    return decode(e, out=e.out / "deep" / "x.mp4"), "x.mp4", {"process": True, "preexec": disk_full(2000)}


@pytest.mark.parametrize("name", CASES)
def test_hostile_video(name, env):
    args, names, *extra = CASES[name](env)
    check(CLASS, name, args, names, env.tmp, **(extra[0] if extra else {}))
