"""`mmtok detokenize`: generated ids -> text, PNG / WAV / MP4 files and a transcript, all
or nothing, through the real entry point (plus the Python API for the finer cases)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import pytest
import soundfile as sf
import torch
from conftest import assert_cli_error, run_mmtok, train_bpe
from PIL import Image

import mmtok
from mmtok.errors import MmtokError
from mmtok.llm import MediaVocab, StreamOptions
from mmtok.llm.detokenize import detokenize, read_ids

TEXT = 400
IMAGE, AUDIO, VIDEO = (3, 5), (4, 6), (2, 3, 4)   # image grid, audio [K,t], video grid


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tok_dir, codec_dir, video_tok_dir) -> Path:
    """An "extended checkpoint" folder: mmtok_vocab.json next to the LLM's HF tokenizer."""
    folder = tmp_path_factory.mktemp("ckpt") / "llm-mm"
    folder.mkdir()
    tokenizers = {"image": mmtok.load(tok_dir), "audio": mmtok.load(codec_dir), "video": mmtok.load(video_tok_dir)}
    vocab = MediaVocab.create(tokenizers, TEXT, StreamOptions(row_separator=True, frame_separator=True, max_dim=16))
    vocab.save(folder)
    train_bpe(TEXT).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vocab(checkpoint) -> MediaVocab:
    return MediaVocab.load(checkpoint)


def codes(shape: tuple[int, ...], high: int, seed: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


def sequence(vocab: MediaVocab, seed: int = 0) -> tuple[list[int], list[int]]:
    """(ids mixing text with an image, an audio clip and a video; the text ids alone)."""
    text_tok = vocab.text_tokenizer
    hello, middle, bye = (text_tok.encode(s) for s in ("A picture: ", " then a sound", " and a clip."))
    ids = torch.cat([
        torch.tensor(hello), vocab.encode_codes(codes(IMAGE, 125, seed), "image"), torch.tensor(middle),
        vocab.encode_codes(codes(AUDIO, 32, seed), "audio"), vocab.encode_codes(codes(VIDEO, 125, seed), "video"),
        torch.tensor(bye),
    ])
    return ids.tolist(), hello + middle + bye


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def check_media(folder: Path, image=IMAGE, audio_frames=AUDIO[1], video=VIDEO) -> None:
    with Image.open(folder / "media-000.png") as img:
        assert img.size == (image[1] * 4, image[0] * 4)
    info = sf.info(str(folder / "media-001.wav"))
    assert info.samplerate == 16000 and info.frames == audio_frames * 80
    with av.open(str(folder / "media-002.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 1 + 4 * (video[0] - 1)
    assert (frames[0].width, frames[0].height) == (video[2] * 4, video[1] * 4)


def test_cli_one_sequence(vocab, checkpoint, tok_dir, tmp_path):
    ids, text_ids = sequence(vocab)
    out = tmp_path / "out"
    copy = shutil.copytree(tok_dir, tmp_path / "image-tok-copy")   # -t NAME=PATH: the same tokenizer elsewhere
    ids_file = write_json(tmp_path / "ids.json", ids)
    result = run_mmtok("detokenize", "--vocab", checkpoint, ids_file, "-o", out, "--fps", 12, "-t", f"image={copy}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 22 text tokens, 1 image, 1 audio, 1 video, 0 problems"
    assert sorted(p.name for p in out.iterdir()) == ["media-000.png", "media-001.wav", "media-002.mp4", "text.txt", "transcript.md"]
    check_media(out)
    text = vocab.text_tokenizer.decode(text_ids)
    assert (out / "text.txt").read_text() == text == "A picture:  then a sound and a clip."
    transcript = (out / "transcript.md").read_text()
    assert "![image 0](media-000.png)" in transcript and "[audio 1](media-001.wav)" in transcript
    assert "[video 2](media-002.mp4)" in transcript and "Problems" not in transcript
    assert transcript.index("A picture:") < transcript.index("media-000") < transcript.index(" then a sound") < transcript.index("media-001")
    with av.open(str(out / "media-002.mp4")) as container:
        assert container.streams.video[0].average_rate == 12


def test_cli_batch_with_repairs(vocab, checkpoint, tmp_path):
    clean, _ = sequence(vocab, seed=1)
    broken = list(clean)
    image_end = broken.index(vocab.stream("image").end_id)
    del broken[image_end - 3 : image_end]                 # truncated image body
    broken.insert(2, vocab.stream("audio").end_id)        # a stray end token in text
    broken.append(vocab.vocab_size + 50)                  # an out-of-range id
    ids_file = write_json(tmp_path / "ids.json", {"ids": [clean, broken]})
    out = tmp_path / "out"
    result = run_mmtok("detokenize", "--vocab", checkpoint, ids_file, "-o", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["000", "001"]
    assert not (out / "000" / "problems.txt").exists()
    check_media(out / "000")
    check_media(out / "001")
    problems = (out / "001" / "problems.txt").read_text().splitlines()
    assert len(problems) == 3, problems
    assert "stray media id" in problems[0] and "truncated" in problems[1] and "out-of-range id" in problems[2]
    transcript = (out / "001" / "transcript.md").read_text()
    assert "## Problems (policy: repair)" in transcript and "repaired: 1 problem)" in transcript
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: sequence 1: ")]
    assert len(warnings) == 3
    assert result.stdout.splitlines() == [f"{out / '000'}: 22 text tokens, 1 image, 1 audio, 1 video, 0 problems",
                                          f"{out / '001'}: 22 text tokens, 1 image, 1 audio, 1 video, 3 problems"]
    # strict: one error line naming the file and the sequence, nothing written
    strict_out = tmp_path / "strict"
    result = run_mmtok("detokenize", "--vocab", checkpoint, ids_file, "-o", strict_out, "--policy", "strict")
    assert_cli_error(result, str(ids_file), "sequence 1", "stray media id", "audio end token at 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.json", "out"]


def test_cli_bad_inputs_leave_nothing(vocab, checkpoint, other_tok_dir, tmp_path):
    ids, _ = sequence(vocab)
    good = write_json(tmp_path / "ids.json", ids)
    out = tmp_path / "out"
    cases = [
        ((tmp_path / "missing.json", "--vocab", checkpoint), ("missing.json", "no such ids file")),
        ((good, "--vocab", tmp_path / "no-vocab"), ("no-vocab", "mmtok_vocab.json")),
        ((good, "--vocab", checkpoint, "-t", f"image={other_tok_dir}"), ("stream 'image'", "fingerprint")),
    ]
    for args, needles in cases:
        assert_cli_error(run_mmtok("detokenize", *args, "-o", out), *needles)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ids.json"]


# -- Python API ----------------------------------------------------------------------
def test_read_ids(tmp_path):
    assert [s.tolist() for s in read_ids(write_json(tmp_path / "a.json", [1, 2]))[0]] == [[1, 2]]
    sequences, batched = read_ids(write_json(tmp_path / "b.json", {"ids": [[1], [], [3, 4]]}))
    assert batched and [s.tolist() for s in sequences] == [[1], [], [3, 4]]
    assert read_ids(write_json(tmp_path / "c.json", []))[0][0].numel() == 0
    assert read_ids(write_json(tmp_path / "d.json", [2**70]))[0][0].tolist() == [2**62]
    for bad, needle in (({"x": 1}, '"ids" key'), (5, "got a JSON int"), ([[1], 2], "sequence 1: 2 is not a list"),
                        ([1.5], "1.5 is not a token id"), (["a", 1], '"a" is not'), ([True], "true is not"),
                        ([[1, None]], "sequence 0: null is not")):
        with pytest.raises(MmtokError, match=needle):
            read_ids(write_json(tmp_path / "bad.json", bad))
    (tmp_path / "broken.json").write_text("[1, 2,")
    with pytest.raises(MmtokError, match="broken.json: not readable JSON"):
        read_ids(tmp_path / "broken.json")


def test_tokenizer_overrides():
    from mmtok.cli.detokenize import tokenizer_overrides

    assert tokenizer_overrides(("image=a/b", "audio=c=d")) == {"image": "a/b", "audio": "c=d"}
    for spec in ("image", "=x", "image="):
        with pytest.raises(MmtokError, match="NAME=PATH"):
            tokenizer_overrides((spec,))


def test_drop_policy_and_empty_audio(vocab, tmp_path):
    clean, _ = sequence(vocab)
    audio = vocab.stream("audio")
    broken = [*clean[:-3], audio.start_id, audio.end_id, vocab.stream("image").start_id, 5]
    out = tmp_path / "out"
    (result,) = detokenize(vocab, [torch.tensor(broken)], out, policy="drop")
    assert len(result.parsed.problems) == 1 and "span dropped" in result.parsed.problems[0]
    assert [name for _, name in result.media] == ["media-000.png", "media-001.wav", "media-002.mp4", None]
    transcript = (out / "transcript.md").read_text()
    assert "*(audio 3: empty span at" in transcript and "## Problems (policy: drop)" in transcript
    assert (out / "problems.txt").read_text().count("\n") == 1


def test_output_folder_is_replaced_whole(vocab, tmp_path):
    ids, _ = sequence(vocab)
    out = tmp_path / "out"
    detokenize(vocab, [torch.tensor(ids)] * 2, out)
    assert sorted(p.name for p in out.iterdir()) == ["000", "001"]
    detokenize(vocab, [torch.tensor(ids[:3])], out)   # an earlier output is replaced, not merged
    assert sorted(p.name for p in out.iterdir()) == ["text.txt", "transcript.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(MmtokError, match="holds other files"):
        detokenize(vocab, [torch.tensor(ids)], other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    with pytest.raises(MmtokError, match="fps"):
        detokenize(vocab, [torch.tensor(ids)], tmp_path / "x", fps=0)


def test_failure_midway_leaves_nothing(vocab, tmp_path, monkeypatch):
    import mmtok.llm.detokenize as module

    ids, _ = sequence(vocab)
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:
            raise MmtokError("disk full")
        return original(*args)

    original = module._write_media
    monkeypatch.setattr(module, "_write_media", failing)
    with pytest.raises(MmtokError, match="disk full"):
        detokenize(vocab, [torch.tensor(ids)], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_in_memory_vocab_needs_no_text_tokenizer_for_media_only(tmp_path):
    from conftest import make_tokenizer

    vocab = MediaVocab.create({"image": make_tokenizer("fsq")}, TEXT)
    (result,) = detokenize(vocab, [vocab.encode_codes(codes(IMAGE, 125, 0), "image")], tmp_path / "out")
    assert result.text == "" and (tmp_path / "out" / "media-000.png").is_file()
    with pytest.raises(MmtokError, match="built in memory"):
        detokenize(vocab, [torch.tensor([1, 2])], tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
