"""Hostile inputs for images: `mmtok encode` / `mmtok decode` with an image tokenizer, given
damaged or wrong files, bad options and output paths that cannot be written. Each case must
end in one clear `error:` line naming the file, exit 1, nothing left behind (tests/hostile.py).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import png_bytes, sample_image, write_image
from hostile import check, disk_full, make_fifo, read_only_place

import mmtok
from mmtok.image.files import encode_image_files

CLASS = "image"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@dataclass
class Env:
    tmp: Path
    tok: Path
    other_tok: Path
    audio_tok: Path
    good: Path          # a valid PNG
    tokens: Path        # a valid token file of `good`

    @property
    def out(self) -> Path:
        return self.tmp / "out"


@pytest.fixture(scope="module")
def made(tmp_path_factory, tok_dir):
    root = tmp_path_factory.mktemp("hostile-image")
    good = write_image(root / "good.png", sample_image(24, 28, seed=3))
    tokens = encode_image_files(mmtok.load(tok_dir), [good], root / "good.mmtok")[0]
    return good, tokens


@pytest.fixture
def env(tmp_path, made, tok_dir, other_tok_dir, codec_dir) -> Env:
    good, tokens = made
    inputs = tmp_path / "in"
    inputs.mkdir()
    return Env(tmp_path, tok_dir, other_tok_dir, codec_dir, shutil.copy(good, inputs / "good.png"),
               shutil.copy(tokens, inputs / "good.mmtok"))


def _file(env: Env, name: str, data: bytes) -> Path:
    path = env.tmp / "in" / name
    path.write_bytes(data)
    return path


# -- damaged or wrong inputs ---------------------------------------------------------------------
@case
def truncated_png(e):
    bad = _file(e, "cut.png", e.good.read_bytes()[:300])
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def truncated_jpeg(e):
    write_image(e.tmp / "in" / "full.jpg", sample_image(40, 40), quality=90)
    bad = _file(e, "cut.jpg", (e.tmp / "in" / "full.jpg").read_bytes()[:200])
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def empty_png(e):
    bad = _file(e, "empty.png", b"")
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def random_bytes_png(e):
    bad = _file(e, "noise.png", bytes(range(256)) * 8)
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def text_named_jpg(e):
    bad = _file(e, "notes.jpg", b"just some text, not a picture\n" * 10)
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def decompression_bomb_header(e):
    import numpy as np

    bad = _file(e, "bomb.png", png_bytes(np.zeros((4, 4, 3), np.uint8), 8, 2, size=(100_000, 100_000)))
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def zero_width_png(e):
    import numpy as np

    bad = _file(e, "zero.png", png_bytes(np.zeros((4, 4, 3), np.uint8), 8, 2, size=(0, 4)))
    return ["encode", bad, "-t", e.tok, "-o", e.out], bad.name


@case
def folder_without_images(e):
    empty = e.tmp / "in" / "nothing"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    return ["encode", empty, "-t", e.tok, "-o", e.out], "nothing"


@case
def missing_input(e):
    return ["encode", e.tmp / "in" / "absent.png", "-t", e.tok, "-o", e.out], "absent.png"


@case
def fifo_input(e):
    fifo = make_fifo(e.tmp / "in" / "pipe.png")
    return ["encode", fifo, "-t", e.tok, "-o", e.out], "pipe.png"


@case
def device_input(e):
    return ["encode", "/dev/zero", "-t", e.tok, "-o", e.out], "/dev/zero"


@case
def one_corrupt_among_good(e):
    write_image(e.tmp / "in" / "batch" / "a.png", sample_image(24, 28, seed=1))
    write_image(e.tmp / "in" / "batch" / "b.png", sample_image(24, 28, seed=2))
    bad = e.tmp / "in" / "batch" / "c.png"
    bad.write_bytes(e.good.read_bytes()[:-200])  # header fine, pixels cut off
    return ["encode", e.tmp / "in" / "batch", "-t", e.tok, "-o", e.out], "c.png"


@case
def same_output_name_twice(e):
    other = e.tmp / "in" / "sub"
    other.mkdir()
    shutil.copy(e.good, other / "good.png")
    return ["encode", e.good, other / "good.png", "-t", e.tok, "-o", e.out], "same output name"


# -- tokenizers that do not fit ------------------------------------------------------------------
@case
def tokenizer_missing(e):
    return ["encode", e.good, "-t", e.tmp / "no-such-tok", "-o", e.out], "no-such-tok"


@case
def tokenizer_is_a_file(e):
    return ["encode", e.good, "-t", e.good, "-o", e.out], "good.png"


@case
def tokenizer_without_weights(e):
    broken = e.tmp / "tok"
    shutil.copytree(e.tok, broken)
    (broken / "model.safetensors").unlink()
    return ["encode", e.good, "-t", broken, "-o", e.out], "model.safetensors"


@case
def audio_tokenizer_for_images(e):
    return ["encode", e.good, "-t", e.audio_tok, "-o", e.out], "good.png"


@case
def decode_with_other_tokenizer(e):
    return ["decode", e.tokens, "-t", e.other_tok, "-o", e.out], "good.mmtok"


@case
def decode_image_codes_with_audio_codec(e):
    return ["decode", e.tokens, "-t", e.audio_tok, "-o", e.out], "good.mmtok"


@case
def decode_corrupt_token_file(e):
    bad = _file(e, "bad.mmtok", e.tokens.read_bytes()[:40])
    return ["decode", bad, "-t", e.tok, "-o", e.out], "bad.mmtok"


@case
def decode_png_named_mmtok(e):
    bad = _file(e, "pic.mmtok", e.good.read_bytes())
    return ["decode", bad, "-t", e.tok, "-o", e.out], "pic.mmtok"


# -- options -------------------------------------------------------------------------------------
@case
def batch_size_zero(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out, "--batch-size", "0"], "--batch-size"


@case
def batch_size_negative(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out, "--batch-size", "-3"], "--batch-size"


@case
def batch_size_not_a_number(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out, "--batch-size", "many"], "--batch-size"


@case
def decode_batch_size_zero(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out, "--batch-size", "0"], "--batch-size"


@case
def kbps_for_images(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out, "--kbps", "3"], "--kbps"


@case
def fps_for_images(e):
    return ["encode", e.good, "-t", e.tok, "-o", e.out, "--fps", "8"], "--fps"


@case
def decode_format_wav(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out, "--format", "wav"], "--format"


@case
def decode_format_unknown(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out, "--format", "tiff"], "--format"


# -- output paths --------------------------------------------------------------------------------
@case
def out_is_a_file_for_a_folder(e):
    second = shutil.copy(e.good, e.tmp / "in" / "second.png")
    target = _file(e, "taken.txt", b"keep me")
    return ["encode", e.good, second, "-t", e.tok, "-o", target], "taken.txt"


@case
def out_parent_is_a_file(e):
    blocker = _file(e, "blocker", b"a file")
    return ["encode", e.good, "-t", e.tok, "-o", blocker / "sub" / "x.mmtok"], "blocker"


@case
def out_under_a_device(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", "/dev/null/x.png"], "/dev/null"


@case
def out_read_only(e):
    return ["encode", e.good, "-t", e.tok, "-o", read_only_place() / "tokens"], str(read_only_place())


@case
def decode_out_read_only(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", read_only_place() / "x.png"], str(read_only_place())


@case
def disk_full_encode(e):
    many = e.tmp / "in" / "many"
    for i in range(3):  # small token files fit; the large image's does not: the disk "fills" mid-run
        write_image(many / f"{i}.png", sample_image(8, 8, seed=i))
    write_image(many / "large.png", sample_image(160, 160, seed=9))
    return ["encode", many, "-t", e.tok, "-o", e.out / "deep" / "tokens"], "large.mmtok", {"process": True, "preexec": disk_full(1500)}


@case
def disk_full_decode(e):
    return ["decode", e.tokens, "-t", e.tok, "-o", e.out / "deep" / "x.png"], "x.png", {"process": True, "preexec": disk_full(300)}


@pytest.mark.parametrize("name", CASES)
def test_hostile_image(name, env):
    args, names, *extra = CASES[name](env)
    check(CLASS, name, args, names, env.tmp, **(extra[0] if extra else {}))
