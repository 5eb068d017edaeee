"""Encoding is deterministic: the same file gives the same codes run after run (in fresh
processes), and an item alone vs inside a batch of 32 gets the same codes on >= 99.9% of
positions, for every tokenizer kind (tiny random-init ones and the shipped trained ones).
The pretrained transformers codecs have their own batch tests in test_audio_pretrained.py
and test_video_pretrained.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import KINDS, make_codec, make_tokenizer, make_vocos, make_video_tokenizer, sample_audio, sample_image, sample_video

import mmtok
from mmtok.eval.determinism import code_agreement

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "tokenizers_trained"


def image_items(n: int, size: int) -> torch.Tensor:
    return torch.stack([sample_image(size, size, seed=i) for i in range(n)]).float() / 127.5 - 1


def audio_items(n: int, rate: int, seconds: float) -> torch.Tensor:
    return torch.stack([sample_audio(seconds, rate, seed=i) for i in range(n)])


def video_items(n: int, frames: int, size: int) -> torch.Tensor:
    return torch.stack([sample_video(frames, size, size, seed=i) for i in range(n)])


def check(stats: dict) -> None:
    assert stats["repeat"] == 1.0, stats                 # same input, same codes
    assert stats["alone_vs_batch"] >= 0.999, stats       # the bar
    assert stats["positions"] > 0 and stats["batch"] == 32


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_image_tokenizers(kind):
    tok = make_tokenizer(kind)
    check(code_agreement(tok.encode, image_items(8, 32)))


def test_tiny_audio_codec():
    tok = make_codec()
    check(code_agreement(tok.encode, audio_items(8, tok.sample_rate, 0.25)))


def test_tiny_audio_vocos_fsq():
    tok = make_vocos()
    check(code_agreement(tok.encode, audio_items(8, tok.sample_rate, 0.25)))


def test_tiny_video_tokenizer():
    tok = make_video_tokenizer()
    check(code_agreement(tok.encode, video_items(4, 5, 16)))


def test_shipped_tokenizers_alone_vs_batch():
    image = mmtok.load(SHIPPED / "mmtok-image-f8")
    check(code_agreement(image.encode, image_items(32, 64)))
    audio = mmtok.load(SHIPPED / "mmtok-audio-24k")
    check(code_agreement(audio.encode, audio_items(32, audio.sample_rate, 0.2), alone=8))
    video = mmtok.load(SHIPPED / "mmtok-video-f8t4")
    check(code_agreement(video.encode, video_items(8, 5, 32), alone=4))


def test_code_agreement_counts_disagreements():
    # An "encoder" whose codes depend on the batch size: the measure must see it.
    def batch_dependent(x: torch.Tensor) -> torch.Tensor:
        codes = (x.flatten(1) > 0).long()
        if x.shape[0] > 1:
            codes[:, 0] = 1 - codes[:, 0]
        return codes

    stats = code_agreement(batch_dependent, torch.randn(4, 10))
    assert stats["repeat"] == 1.0 and stats["alone_vs_batch"] == pytest.approx(0.9)
    flaky = iter(range(10**6))
    stats = code_agreement(lambda x: torch.full((x.shape[0], 3), next(flaky)), torch.randn(2, 5))
    assert stats["repeat"] == 0.0


ENCODE_ALL = """
import hashlib, sys, tempfile
from pathlib import Path
import torch
import mmtok
from mmtok.audio.files import encode_audio_files
from mmtok.image.files import encode_image_files
from mmtok.tokens_file import TokenFile
from mmtok.video.files import encode_video_files

root, media, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
threads = int(sys.argv[4])
torch.set_num_threads(threads)
jobs = [(encode_image_files, "mmtok-image-f8", "images/astronaut.jpg"),
        (encode_audio_files, "mmtok-audio-24k", "audio/espeak-en-gb-x-rp_en_001.flac"),
        (encode_video_files, "mmtok-video-f8t4", "video/kenburns_13_scipy_ascent.mp4")]
for encode, name, file in jobs:
    tok = mmtok.load(root / name)
    for path in encode(tok, [media / file], out / Path(file).parent):
        codes = TokenFile.load(path).codes
        print(path.name, hashlib.sha256(codes.numpy().tobytes()).hexdigest())
"""


def test_same_files_same_codes_in_fresh_processes(tmp_path):
    """A committed sample file of each modality, encoded by its shipped tokenizer in two
    separate processes (with different thread counts), gives identical codes."""
    runs = []
    for i, threads in enumerate((1, 2)):
        proc = subprocess.run(
            [sys.executable, "-c", ENCODE_ALL, str(SHIPPED), str(ROOT / "tests/media"), str(tmp_path / str(i)), str(threads)],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(proc.stdout.splitlines())
    assert len(runs[0]) == 3 and runs[0] == runs[1]
