"""Hostile inputs for audio: `mmtok encode` / `mmtok decode` with the tiny codec, given
damaged or lying files (WAV / OGG / FLAC / MP3 whose container promises more than decodes),
bad options and output paths that cannot be written. Each case must end in one clear
`error:` line naming the file, exit 1, nothing left behind (tests/hostile.py)."""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import sample_audio, write_sample_audio
from hostile import check, disk_full, make_fifo, read_only_place

import mmtok
from mmtok.audio.files import encode_audio_files

CLASS = "audio"
CASES = {}
RATE = 16000


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@dataclass
class Env:
    tmp: Path
    tok: Path
    image_tok: Path
    good: Path          # 2 s mono WAV
    tokens: Path        # its token file
    media: dict         # name -> bytes of valid files in other containers

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def file(self, name: str, data: bytes) -> Path:
        path = self.tmp / "in" / name
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def made(tmp_path_factory, codec_dir):
    root = tmp_path_factory.mktemp("hostile-audio")
    good = write_sample_audio(root / "good.wav", 2.0, RATE)
    tokens = encode_audio_files(mmtok.load(codec_dir), [good], root / "good.mmtok")[0]
    long = sample_audio(20.0, RATE)[0].numpy()  # long enough for many OGG pages
    media = {}
    for suffix, fmt, subtype in ((".ogg", "OGG", "VORBIS"), (".flac", "FLAC", "PCM_16"), (".mp3", "MP3", "MPEG_LAYER_III")):
        sf.write(root / f"long{suffix}", long, RATE, format=fmt, subtype=subtype)
        media[suffix] = (root / f"long{suffix}").read_bytes()
    return good, tokens, media


@pytest.fixture
def env(tmp_path, made, codec_dir, tok_dir) -> Env:
    good, tokens, media = made
    (tmp_path / "in").mkdir()
    return Env(tmp_path, codec_dir, tok_dir, shutil.copy(good, tmp_path / "in" / "good.wav"),
               shutil.copy(tokens, tmp_path / "in" / "good.mmtok"), media)


def encode(e: Env, path: Path, *options) -> list:
    return ["encode", path, "-t", e.tok, "-o", e.out, *options]


def _wav(e: Env, name: str, data: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> Path:
    path = e.tmp / "in" / name
    sf.write(path, data, rate, subtype=subtype)
    return path


def _patched_wav(e: Env, name: str, field: str, value: int) -> Path:
    """The good WAV with one header field rewritten."""
    data = bytearray(e.good.read_bytes())
    if field == "data_size":
        i = data.index(b"data")
        data[i + 4 : i + 8] = struct.pack("<I", value)
    elif field == "sample_rate":
        i = data.index(b"fmt ")
        data[i + 12 : i + 16] = struct.pack("<I", value)
    return e.file(name, bytes(data))


# -- files whose container promises more than decodes --------------------------------------------
@case
def wav_missing_its_last_1_5_s(e):
    data = e.good.read_bytes()
    return encode(e, e.file("cut.wav", data[: len(data) - int(1.5 * RATE) * 2])), "cut.wav"


@case
def wav_header_promises_10_hours(e):
    return encode(e, _patched_wav(e, "tenhours.wav", "data_size", 10 * 3600 * RATE * 2)), "tenhours.wav"


@case
def ogg_with_garbage_pages(e):
    data = bytearray(e.media[".ogg"])
    n = len(data)
    data[int(0.4 * n) : int(0.41 * n)] = np.random.default_rng(0).integers(0, 256, int(0.41 * n) - int(0.4 * n), dtype=np.uint8).tobytes()
    return encode(e, e.file("garbage.ogg", bytes(data))), "garbage.ogg"


@case
def ogg_cut_mid_page(e):
    data = e.media[".ogg"]
    return encode(e, e.file("cut.ogg", data[: len(data) * 2 // 3])), "cut.ogg"


@case
def flac_truncated(e):
    data = e.media[".flac"]
    return encode(e, e.file("cut.flac", data[: len(data) // 2])), "cut.flac"


@case
def mp3_truncated(e):
    data = e.media[".mp3"]
    return encode(e, e.file("cut.mp3", data[: len(data) // 2])), "cut.mp3"


@case
def mp3_truncated_in_a_real_process(e):
    """libmpg123 prints notes from C, past sys.stderr: only a real process shows them."""
    data = e.media[".mp3"]
    return encode(e, e.file("cut.mp3", data[: len(data) // 2])), "cut.mp3", {"process": True}


# -- damaged or unusable files -------------------------------------------------------------------
@case
def empty_wav(e):
    return encode(e, e.file("empty.wav", b"")), "empty.wav"


@case
def wav_with_zero_frames(e):
    return encode(e, _wav(e, "silent0.wav", np.zeros(0, np.float32))), "silent0.wav"


@case
def random_bytes_wav(e):
    return encode(e, e.file("noise.wav", bytes(range(256)) * 16)), "noise.wav"


@case
def image_named_flac(e):
    return encode(e, e.file("pic.flac", b"\x89PNG\r\n\x1a\n" + bytes(200))), "pic.flac"


@case
def wav_with_nan_samples(e):
    x = sample_audio(1.0, RATE)[0].numpy()
    x[100] = np.nan
    return encode(e, _wav(e, "nan.wav", x, subtype="FLOAT")), "nan.wav"


@case
def wav_with_inf_samples(e):
    x = sample_audio(1.0, RATE)[0].numpy()
    x[7] = np.inf
    return encode(e, _wav(e, "inf.wav", x, subtype="FLOAT")), "inf.wav"


@case
def sample_rate_1000_hz(e):
    return encode(e, _wav(e, "low.wav", sample_audio(1.0, 1000)[0].numpy(), rate=1000)), "low.wav"


@case
def sample_rate_header_zero(e):
    return encode(e, _patched_wav(e, "rate0.wav", "sample_rate", 0)), "rate0.wav"


@case
def sample_rate_header_huge(e):
    return encode(e, _patched_wav(e, "rate-huge.wav", "sample_rate", 1_000_000_000)), "rate-huge.wav"


@case
def fifo_wav(e):
    return encode(e, make_fifo(e.tmp / "in" / "pipe.wav")), "pipe.wav"


@case
def folder_without_audio(e):
    (e.tmp / "in" / "none").mkdir()
    (e.tmp / "in" / "none" / "x.txt").write_text("text")
    return encode(e, e.tmp / "in" / "none"), "none"


@case
def one_damaged_among_good(e):
    batch = e.tmp / "in" / "batch"
    write_sample_audio(batch / "a.wav", 1.0, RATE)
    write_sample_audio(batch / "b.wav", 1.0, RATE, seed=1)
    (batch / "c.wav").write_bytes(e.good.read_bytes()[:-8000])
    return encode(e, batch), "c.wav"


# -- options -------------------------------------------------------------------------------------
@case
def kbps_nan(e):
    return encode(e, e.good, "--kbps", "nan"), "--kbps"


@case
def kbps_inf(e):
    return encode(e, e.good, "--kbps", "inf"), "--kbps"


@case
def kbps_zero(e):
    return encode(e, e.good, "--kbps", "0"), "--kbps"


@case
def kbps_negative(e):
    return encode(e, e.good, "--kbps", "-1"), "--kbps"


@case
def kbps_below_one_level(e):
    return encode(e, e.good, "--kbps", "0.01"), "kbps"


@case
def num_quantizers_zero(e):
    return encode(e, e.good, "--num-quantizers", "0"), "--num-quantizers"


@case
def num_quantizers_too_many(e):
    return encode(e, e.good, "--num-quantizers", "99"), "99"


@case
def kbps_and_num_quantizers(e):
    return encode(e, e.good, "--kbps", "2", "--num-quantizers", "2"), "--kbps"


@case
def fps_for_audio(e):
    return encode(e, e.good, "--fps", "8"), "--fps"


@case
def short_side_for_audio(e):
    return encode(e, e.good, "--short-side", "64"), "--short-side"


@case
def decode_format_png(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out, "--format", "png"], "--format"


@case
def decode_to_mp3_file(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out / "x.mp3"], "x.mp3"


@case
def decode_with_image_tokenizer(e):
    return ["decode", e.tokens, "-t", e.image_tok, "-o", e.out], "good.mmtok"


# -- output paths --------------------------------------------------------------------------------
@case
def out_is_a_file_for_a_folder(e):
    second = shutil.copy(e.good, e.tmp / "in" / "second.wav")
    return ["encode", e.good, second, "-t", e.tok, "-o", e.file("taken", b"x")], "taken"


@case
def out_read_only(e):
    return encode(e, e.good)[:-1] + [read_only_place() / "t"], str(read_only_place())


@case
def decode_out_parent_is_a_file(e):
    blocker = e.file("blocker", b"x")
    return ["decode", e.tokens, "-t", e.tok, "-o", blocker / "x.wav"], "blocker"


@case
def decode_out_read_only(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", read_only_place() / "x.flac"], str(read_only_place())


@case
def disk_full_encode(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out / "deep" / "t.mmtok"], "t.mmtok", {"process": True, "preexec": disk_full(1000)}


@case
def disk_full_decode(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out / "deep" / "x.wav"], "x.wav", {"process": True, "preexec": disk_full(20000)}


@pytest.mark.parametrize("name", CASES)
def test_hostile_audio(name, env):
    args, names, *extra = CASES[name](env)
    check(CLASS, name, args, names, env.tmp, **(extra[0] if extra else {}))
