"""Video files through the real `mmtok` command: round trips to playable H.264 mp4s at the
original fps, frame count and size, options on the way in, the file path equal to the
tensor API, and bad input giving one clear error line, a non-zero exit and no output."""

from __future__ import annotations

import av
import pytest
import torch
from conftest import assert_cli_error, files_under, make_video_tokenizer, run_mmtok, write_sample_video

import mmtok
from mmtok.media.video import read_video, video_info, write_video
from mmtok.tokens_file import TokenFile
from mmtok.video.files import decode_video, encode_video


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_sample_video(root / "a.mp4", 14, 24, 32, fps=12, seed=1)
    write_sample_video(root / "odd.mp4", 9, 18, 26, fps=12.5, seed=2)   # odd size in neither factor
    write_sample_video(root / "sub" / "one.mp4", 1, 16, 16, fps=25, seed=3)  # a 1-frame video
    return root


def test_cli_roundtrip_writes_playable_mp4(video_tok_dir, video_folder, tmp_path):
    result = run_mmtok("encode", video_folder, "-t", video_tok_dir, "-o", tmp_path / "tok")
    assert result.returncode == 0, result.stderr
    names = sorted(p.relative_to(tmp_path / "tok").as_posix() for p in (tmp_path / "tok").rglob("*.mmtok"))
    assert names == ["a.mmtok", "odd.mmtok", "sub/one.mmtok"]
    tf = TokenFile.load(tmp_path / "tok" / "a.mmtok")
    assert tf.modality == "video" and tuple(tf.codes.shape) == (5, 6, 8)
    assert tf.original["fps"] == 12 and tf.original["num_frames"] == 14

    result = run_mmtok("decode", tmp_path / "tok", "-o", tmp_path / "out")  # tokenizer from the token file
    assert result.returncode == 0, result.stderr
    for name, frames, fps in [("a", 14, 12), ("odd", 9, 12.5), ("sub/one", 1, 25)]:
        source, out = video_info(video_folder / f"{name}.mp4"), tmp_path / "out" / f"{name}.mp4"
        with av.open(str(out)) as container:  # playable: PyAV decodes every frame
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
            decoded = sum(1 for _ in container.decode(stream))
        assert decoded == frames
        info = video_info(out)
        assert info.fps == pytest.approx(fps) and info.num_frames == frames
        assert (info.width, info.height) == (source.width + source.width % 2, source.height + source.height % 2)


def test_file_path_matches_tensor_api(video_tok_dir, video_folder, tmp_path):
    """Windowed file coding gives exactly the codes of encode() on the whole video, and the
    decoded mp4 is the whole-video decode written as an mp4 (a random-init decoder's output
    is chroma noise that yuv420p cannot hold, so the comparison goes through the same writer)."""
    tok = mmtok.load(video_tok_dir)
    video = read_video(video_folder / "a.mp4")
    tf = encode_video(tok, video_folder / "a.mp4", window=1)
    assert torch.equal(tf.codes.long(), tok.encode(video[None])[0])
    decode_video(tok, tf, tmp_path / "a.mp4", window=2)
    expected = write_video(tmp_path / "expected.mp4", tok.decode(tf.codes[None], size=tuple(video.shape[1:]))[0], 12)
    assert (read_video(tmp_path / "a.mp4") - read_video(expected)).abs().max() < 0.02


def test_fps_and_short_side_options(video_tok_dir, video_folder, tmp_path):
    result = run_mmtok("encode", video_folder / "a.mp4", "-t", video_tok_dir, "-o", tmp_path / "a.mmtok", "--fps", "6", "--short-side", "12")
    assert result.returncode == 0, result.stderr
    tf = TokenFile.load(tmp_path / "a.mmtok")
    assert (tf.original["fps"], tf.original["num_frames"], tf.original["height"], tf.original["width"]) == (6, 7, 12, 16)
    assert tf.original["source_fps"] == 12 and tf.original["source_height"] == 24
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-o", tmp_path / "a.mp4")
    assert result.returncode == 0, result.stderr
    info = video_info(tmp_path / "a.mp4")
    assert (info.fps, info.num_frames, info.height, info.width) == (6, 7, 12, 16)


def test_progress_counts_frames(video_tok_dir, video_folder, tmp_path):
    from mmtok.video.files import encode_video_files

    class Bar:
        total, done = None, 0

        def update(self, n):
            self.done += n

    bar = Bar()
    encode_video_files(mmtok.load(video_tok_dir), [video_folder], tmp_path / "tok", progress=bar)
    assert bar.total == bar.done == 14 + 9 + 1


@pytest.mark.parametrize("case", ["garbage", "truncated", "audio_only", "missing"])
def test_bad_video_inputs(video_tok_dir, video_folder, tmp_path, case):
    bad = tmp_path / "in" / "bad.mp4"
    bad.parent.mkdir()
    if case == "garbage":
        bad.write_bytes(b"\x00\x01 not a video" * 100)
    elif case == "truncated":
        data = (video_folder / "a.mp4").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "audio_only":
        bad = bad.with_suffix(".mkv")
        with av.open(str(bad), "w") as container:
            stream = container.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(torch.zeros(1, 800, dtype=torch.int16).numpy(), format="s16", layout="mono")
            frame.sample_rate = 8000
            for packet in stream.encode(frame):
                container.mux(packet)
    elif case == "missing":
        bad = tmp_path / "in" / "nope.mp4"
    # A good file next to it: nothing at all may be written when one input is bad.
    (tmp_path / "in" / "good.mp4").write_bytes((video_folder / "a.mp4").read_bytes())
    result = run_mmtok("encode", tmp_path / "in" / "good.mp4", bad, "-t", video_tok_dir, "-o", tmp_path / "tok")
    assert_cli_error(result, bad.name)
    assert files_under(tmp_path / "tok") == []


def test_decode_refuses_foreign_and_damaged_token_files(video_tok_dir, video_folder, tmp_path):
    run_mmtok("encode", video_folder / "a.mp4", "-t", video_tok_dir, "-o", tmp_path / "a.mmtok")
    other = make_video_tokenizer(seed=1).save_pretrained(tmp_path / "other")
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-t", other, "-o", tmp_path / "out")
    assert_cli_error(result, "a.mmtok", "decode with the tokenizer that encoded it")
    tf = TokenFile.load(tmp_path / "a.mmtok")
    tf.codes = tf.codes[:-1]  # a latent frame short of the recorded 14 frames
    tf.save(tmp_path / "short.mmtok")
    result = run_mmtok("decode", tmp_path / "short.mmtok", "-t", video_tok_dir, "-o", tmp_path / "out")
    assert_cli_error(result, "short.mmtok", "re-encode")
    assert files_under(tmp_path / "out") == []


def test_option_errors(video_tok_dir, codec_dir, video_folder, tmp_path):
    result = run_mmtok("encode", video_folder / "a.mp4", "-t", video_tok_dir, "-o", tmp_path / "t", "--kbps", "3")
    assert_cli_error(result, "--kbps", "audio")
    result = run_mmtok("encode", video_folder / "a.mp4", "-t", codec_dir, "-o", tmp_path / "t", "--fps", "3")
    assert_cli_error(result, "--fps", "video")
    run_mmtok("encode", video_folder / "a.mp4", "-t", video_tok_dir, "-o", tmp_path / "a.mmtok")
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-o", tmp_path / "a.mp4", "--format", "png")
    assert_cli_error(result, "--format png")
    result = run_mmtok("decode", tmp_path / "a.mmtok", "-o", tmp_path / "a.avi")
    assert result.returncode != 0 and not (tmp_path / "a.avi").exists()
