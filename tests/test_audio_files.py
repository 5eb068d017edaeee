"""Audio files through the real `mmtok` command: round trips at chosen bitrates, original
rate and length restored, and every kind of bad input giving one clear error line, a
non-zero exit and no partial output."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import assert_cli_error, files_under, make_codec, run_mmtok, sample_audio, write_sample_audio

import mmtok
from mmtok.audio.files import decode_audio, encode_audio
from mmtok.media.audio import read_audio
from mmtok.metrics import si_sdr
from mmtok.tokens_file import TokenFile


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    write_sample_audio(root / "a.wav", 0.7, 16000, seed=1)
    write_sample_audio(root / "b.flac", 0.5, 44100, channels=2, seed=2)
    write_sample_audio(root / "sub" / "c.wav", 0.3, 8000, seed=3)
    sf.write(root / "d.ogg", sample_audio(0.4, 22050, seed=4).T.numpy(), 22050)
    sf.write(root / "e.mp3", sample_audio(0.6, 24000, seed=5).T.numpy(), 24000)
    return root


def test_cli_roundtrip_restores_rate_and_length(codec_dir, audio_folder, tmp_path):
    result = run_mmtok("encode", audio_folder, "-t", codec_dir, "-o", tmp_path / "tok", "--kbps", "2")
    assert result.returncode == 0, result.stderr
    token_files = sorted((tmp_path / "tok").rglob("*.mmtok"))
    assert [p.relative_to(tmp_path / "tok").as_posix() for p in token_files] == ["a.mmtok", "b.mmtok", "d.mmtok", "e.mmtok", "sub/c.mmtok"]
    tf = TokenFile.load(tmp_path / "tok" / "b.mmtok")
    assert tf.modality == "audio" and tf.codes.shape[0] == 2  # 2 kbps = 2 levels of 1 kbps
    assert tf.original["sample_rate"] == 44100 and tf.original["channels"] == 2

    result = run_mmtok("decode", tmp_path / "tok", "-o", tmp_path / "out", "--format", "flac")  # tokenizer from the file
    assert result.returncode == 0, result.stderr
    for src, name in [("a.wav", "a.flac"), ("b.flac", "b.flac"), ("sub/c.wav", "sub/c.flac"), ("d.ogg", "d.flac"), ("e.mp3", "e.flac")]:
        before, after = sf.info(audio_folder / src), sf.info(tmp_path / "out" / name)
        assert after.samplerate == before.samplerate
        assert abs(after.frames - before.frames) <= 0.01 * before.frames  # mp3 headers round the length
        assert after.channels == 1  # a mono codec writes mono files


def test_exact_length_for_wav(codec_dir, audio_folder, tmp_path):
    run_mmtok("encode", audio_folder / "a.wav", "-t", codec_dir, "-o", tmp_path / "a.mmtok", "--num-quantizers", "3")
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-t", codec_dir, "-o", tmp_path / "a.wav")
    assert result.returncode == 0, result.stderr
    assert sf.info(tmp_path / "a.wav").frames == sf.info(audio_folder / "a.wav").frames
    assert TokenFile.load(tmp_path / "a.mmtok").codes.shape[0] == 3


def test_python_file_path_matches_tensor_api(codec_dir, audio_folder, tmp_path):
    """The streamed file path gives exactly the codes and samples of encode/decode on the whole signal."""
    tok = mmtok.load(codec_dir)
    tf = encode_audio(tok, audio_folder / "a.wav", chunk_seconds=0.05)
    x = read_audio(audio_folder / "a.wav", 16000, 1)
    codes = tok.encode(x[None])[0]
    assert torch.equal(tf.codes, codes)
    decode_audio(tok, tf, tmp_path / "a.wav", chunk_seconds=0.05)
    y = read_audio(tmp_path / "a.wav", 16000, 1)
    ref = tok.decode(codes[None], length=x.shape[-1])[0]
    assert y.shape == ref.shape and (y - ref).abs().max() <= 2 / 32767  # 16-bit file rounding


def test_silent_file_encodes_and_decodes_quietly(codec_dir, tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(8000, dtype=np.float32), 16000)
    assert run_mmtok("encode", tmp_path / "silence.wav", "-t", codec_dir, "-o", tmp_path / "s.mmtok").returncode == 0
    assert run_mmtok("decode", tmp_path / "s.mmtok", "-t", codec_dir, "-o", tmp_path / "s.wav").returncode == 0
    assert sf.info(tmp_path / "s.wav").frames == 8000


def test_clipped_float_file_is_clipped_with_a_warning(codec_dir, tmp_path):
    x = sample_audio(0.3, 16000)[0].numpy() * 3
    sf.write(tmp_path / "loud.wav", x, 16000, subtype="FLOAT")
    result = run_mmtok("encode", tmp_path / "loud.wav", "-t", codec_dir, "-o", tmp_path / "loud.mmtok")
    assert result.returncode == 0, result.stderr
    assert "clipped" in result.stderr


def test_extreme_rates_and_many_channels(codec_dir, tmp_path):
    write_sample_audio(tmp_path / "in" / "r8k.wav", 0.3, 8000)
    write_sample_audio(tmp_path / "in" / "r192k.flac", 0.3, 192000)
    write_sample_audio(tmp_path / "in" / "six.wav", 0.3, 16000, channels=6)
    result = run_mmtok("encode", tmp_path / "in", "-t", codec_dir, "-o", tmp_path / "tok")
    assert result.returncode == 0, result.stderr
    assert TokenFile.load(tmp_path / "tok" / "six.mmtok").original["channels"] == 6
    assert run_mmtok("decode", tmp_path / "tok", "-t", codec_dir, "-o", tmp_path / "out").returncode == 0
    assert sf.info(tmp_path / "out" / "r192k.wav").samplerate == 192000
    assert sf.info(tmp_path / "out" / "r192k.wav").frames == round(0.3 * 192000)


def _bad_inputs(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "garbage.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" * 10)
    (root / "notes.txt").write_text("not audio")
    sf.write(root / "empty.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    x = sample_audio(0.3, 16000)[0].numpy().copy()
    x[100] = np.nan
    sf.write(root / "nan.wav", x, 16000, subtype="FLOAT")
    sf.write(root / "inf.wav", np.where(np.arange(x.size) == 5, np.inf, 0).astype(np.float32), 16000, subtype="FLOAT")
    sf.write(root / "slow.wav", sample_audio(0.3, 2000)[0].numpy(), 2000)
    sf.write(root / "whole.flac", sample_audio(2.0, 16000)[0].numpy(), 16000)
    data = (root / "whole.flac").read_bytes()
    (root / "truncated.flac").write_bytes(data[: len(data) // 2])
    return {
        "garbage.wav": "not a readable audio file", "notes.txt": "not a readable audio file", "empty.wav": "no samples",
        "nan.wav": "NaN or infinite", "inf.wav": "NaN or infinite", "slow.wav": "sample rate 2000 Hz",
        "truncated.flac": "corrupt or truncated",
    }


def test_bad_inputs_one_error_line_no_output(codec_dir, tmp_path):
    cases = _bad_inputs(tmp_path)
    for name, needle in cases.items():
        out = tmp_path / f"out-{name}"
        result = run_mmtok("encode", tmp_path / name, "-t", codec_dir, "-o", out / "x.mmtok")
        assert_cli_error(result, name, needle)
        assert files_under(out) == []


def test_failure_midway_removes_what_was_written(codec_dir, tmp_path):
    """Headers all pass the pre-flight; the third file's data is corrupt: nothing is left."""
    _bad_inputs(tmp_path / "bad")
    folder = tmp_path / "in"
    write_sample_audio(folder / "1.wav", 0.3, 16000)
    write_sample_audio(folder / "2.wav", 0.3, 16000, seed=2)
    (folder / "3.flac").write_bytes((tmp_path / "bad" / "truncated.flac").read_bytes())
    result = run_mmtok("encode", folder, "-t", codec_dir, "-o", tmp_path / "tok")
    assert_cli_error(result, "3.flac")
    assert files_under(tmp_path / "tok") == []


def test_token_file_from_another_tokenizer(codec_dir, audio_folder, tmp_path):
    other = make_codec(seed=1).save_pretrained(tmp_path / "other")
    run_mmtok("encode", audio_folder / "a.wav", "-t", codec_dir, "-o", tmp_path / "a.mmtok")
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-t", other, "-o", tmp_path / "a.wav")
    assert_cli_error(result, "a.mmtok", "decode with the tokenizer that encoded it")
    assert not (tmp_path / "a.wav").exists()


def test_bitrate_options(codec_dir, tok_dir, audio_folder, tmp_path):
    both = run_mmtok("encode", audio_folder / "a.wav", "-t", codec_dir, "-o", tmp_path / "x.mmtok", "--kbps", "2", "--num-quantizers", "2")
    assert_cli_error(both, "not both")
    low = run_mmtok("encode", audio_folder / "a.wav", "-t", codec_dir, "-o", tmp_path / "x.mmtok", "--kbps", "0.5")
    assert_cli_error(low, "lowest bitrate")
    image = run_mmtok("encode", audio_folder / "a.wav", "-t", tok_dir, "-o", tmp_path / "x.mmtok", "--kbps", "2")
    assert_cli_error(image, "image tokenizer")
    fmt = run_mmtok("decode", tmp_path / "nothing.mmtok", "-t", codec_dir, "-o", tmp_path / "o", "--format", "png")
    assert_cli_error(fmt, "png")
    assert files_under(tmp_path) == []


def test_quality_figures_are_sane(codec_dir):
    """A random-init codec reconstructs badly; SI-SDR of a signal with itself is huge."""
    x = sample_audio(0.5, 16000)[None]
    assert si_sdr(x, x).item() > 80
    tok = mmtok.load(codec_dir)
    assert si_sdr(tok.decode(tok.encode(x), length=x.shape[-1]), x).item() < 10


class Counter:
    """A minimal progress sink (what a tqdm bar offers): `total`, `update(n)`."""

    def __init__(self):
        self.total, self.n, self.calls = None, 0.0, 0

    def update(self, n):
        self.n += n
        self.calls += 1


def test_progress_counts_seconds_of_audio(codec_dir, audio_folder, tmp_path):
    """Long files show progress within the file: one update per block, ending at the total."""
    from mmtok.audio.files import decode_audio_files, encode_audio_files

    tok = mmtok.load(codec_dir)
    enc = Counter()
    encode_audio_files(tok, [audio_folder], tmp_path / "tok", progress=enc, chunk_seconds=0.1)
    assert enc.total == pytest.approx(0.7 + 0.5 + 0.3 + 0.4 + 0.6, abs=0.01) and enc.n == pytest.approx(enc.total, abs=0.01)
    assert enc.calls >= 25  # 0.1 s blocks
    dec = Counter()
    decode_audio_files(tok, [tmp_path / "tok"], tmp_path / "out", progress=dec, chunk_seconds=0.1)
    assert dec.n == pytest.approx(dec.total, abs=0.01) and dec.calls >= 25
