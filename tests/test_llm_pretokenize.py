"""`mmtok pretokenize`: folder and JSONL datasets -> id shards equal to `vocab.build` of the
same parts; failures listed per item; kill -9 and resume with nothing lost or duplicated;
two processes under torchrun; the reader; setup errors that leave no output behind."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    MMTOK,
    assert_cli_error,
    extend_tiny,
    files_under,
    run_command,
    run_mmtok,
    sample_image,
    write_image,
    write_sample_audio,
    write_sample_video,
)

from mmtok.errors import MmtokError
from mmtok.llm import Audio, Image, MediaVocab, Video
from mmtok.llm.pretokenize import pretokenize
from mmtok.llm.shards import RankState, TokenShards

PART = {".png": Image, ".jpg": Image, ".wav": Audio, ".flac": Audio, ".mp4": Video}
FOLDER_OK = ["a1.wav", "a2.flac", "img0.png", "img1.png", "img2.png", "img3.png", "sub/odd.jpg", "v1.mp4"]
FOLDER_FAILED = {"bad.png": "not an image", "big.png": "outside 1..16", "trunc.mp4": "trunc.mp4"}


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def vocab(extended_dir) -> MediaVocab:
    return MediaVocab.load(extended_dir)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """11 items: 4 same-size images (one batch), an odd size in a sub-folder, one too large
    for the vocab's 16-code grid headers, a corrupt image, two audio files (one resampled),
    a video and a truncated video; plus a hidden image and a text file that are not items."""
    root = tmp_path_factory.mktemp("media")
    for i in range(4):
        write_image(root / f"img{i}.png", sample_image(32, 40, seed=i))
    write_image(root / "sub" / "odd.jpg", sample_image(29, 37, seed=9), quality=95)
    write_image(root / "big.png", sample_image(80, 72, seed=5))
    write_image(root / ".hidden.png", sample_image(8, 8))
    (root / "bad.png").write_bytes(b"not a png at all")
    (root / "notes.txt").write_text("not media")
    write_sample_audio(root / "a1.wav", 0.5, 16000)
    write_sample_audio(root / "a2.flac", 0.6, 22050, seed=3)
    video = write_sample_video(root / "v1.mp4", 9, 24, 32).read_bytes()
    (root / "trunc.mp4").write_bytes(video[: len(video) // 2])
    return root


def expected(vocab: MediaVocab, parts: list, bos: bool = True, eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    seq = vocab.build(parts, bos, eos)
    return seq.input_ids.numpy(), seq.modality.numpy().astype(np.uint8)


def by_id(shards: TokenShards) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    ids = shards.item_ids()
    assert len(set(ids)) == len(ids), "an item appears twice"
    return {name: tuple(np.asarray(a) for a in shards[i]) for i, name in enumerate(ids)}


def assert_same_items(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name][0], b[name][0]) and np.array_equal(a[name][1], b[name][1]), name


@pytest.fixture(scope="module")
def folder_run(media, extended_dir, tmp_path_factory):
    """`mmtok pretokenize` of the folder through the console script: 2 decoding workers,
    3 items per shard, BOS / EOS on (the defaults)."""
    out = tmp_path_factory.mktemp("pretok") / "out"
    result = ok(run_mmtok("pretokenize", media, "--vocab", extended_dir, "-o", out, "--workers", "2", "--shard-items", "3"))
    return out, result


def test_folder_ids_equal_vocab_build(folder_run, media, vocab, extended_dir):
    out, result = folder_run
    assert "8 items tokenized" in result.stdout and "3 failed" in result.stdout, result.stdout
    shards = TokenShards(out, vocab=extended_dir)
    assert shards.complete and len(shards) == 8 and shards.item_ids() == FOLDER_OK  # dataset order within one rank
    for name, (ids, modality) in by_id(shards).items():
        want_ids, want_modality = expected(vocab, [PART[Path(name).suffix](media / name)])
        assert ids.dtype == np.uint32 and modality.dtype == np.uint8
        assert np.array_equal(ids, want_ids), name
        assert np.array_equal(modality, want_modality), name
    failures = {f["id"]: f["reason"] for f in shards.failures()}
    assert sorted(failures) == sorted(FOLDER_FAILED)
    for name, needle in FOLDER_FAILED.items():
        assert needle in failures[name]
    lines = (out / "rank00000.failures.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(FOLDER_FAILED)


def test_format_is_plain_numpy_and_json(folder_run, extended_dir):
    out, _ = folder_run
    info = json.loads((out / "dataset.json").read_text())
    recorded = json.loads((extended_dir / "mmtok_vocab.json").read_text())
    assert [s["ids"] for s in info["vocab"]["streams"]] == [s["ids"] for s in recorded["streams"]]
    assert info["vocab"]["vocab_size"] == recorded["vocab_size"] and info["modality_names"] == ["text", "image", "audio", "video"]
    assert (info["world_size"], info["shard_items"], info["bos"], info["eos"]) == (1, 3, True, True)
    state = json.loads((out / "rank00000.state.json").read_text())
    total = 0
    for shard in state["shards"]:
        folder = out / shard["name"]
        tokens = np.load(folder / "tokens.npy", allow_pickle=False)
        modality = np.load(folder / "modality.npy", allow_pickle=False)
        index = np.load(folder / "index.npy", allow_pickle=False)
        items = json.loads((folder / "items.json").read_text())
        assert (tokens.dtype, modality.dtype, index.dtype) == (np.uint32, np.uint8, np.int64)
        assert tokens.shape == modality.shape and index[0] == 0 and index[-1] == len(tokens) and len(index) == len(items) + 1
        assert tokens.max() < recorded["vocab_size"]
        total += len(items)
    assert total == 8
    # Shard k holds positions 3k..3k+2 of the (sorted) share minus failures: bad.png is in
    # shard 0, big.png in shard 1, trunc.mp4 in shard 3.
    assert [s["name"] for s in state["shards"]] == [f"rank00000-shard0000{k}" for k in range(4)]
    assert [s["items"] for s in state["shards"]] == [2, 2, 3, 1]


def test_rerun_on_finished_output_is_a_no_op(folder_run, media, extended_dir):
    out, _ = folder_run
    before = {p: p.stat().st_mtime_ns for p in files_under(out) if p.suffix == ".npy"}
    result = run_mmtok("pretokenize", media, "--vocab", extended_dir, "-o", out, "--strict")
    assert "already complete, nothing to do: 8 items tokenized" in result.stdout, result.stdout
    assert_cli_error(result, "3 of 11 items failed", "--strict")  # --strict: exit 1 when anything failed
    assert {p: p.stat().st_mtime_ns for p in files_under(out) if p.suffix == ".npy"} == before


def test_batch_size_and_workers_do_not_change_ids(folder_run, media, vocab, tmp_path):
    summary = pretokenize(media, vocab, tmp_path / "out", workers=0, batch_size=1, shard_items=100, progress=False)
    assert (summary.tokenized, summary.failed, summary.shards) == (8, 3, 1)
    assert_same_items(by_id(TokenShards(tmp_path / "out")), by_id(TokenShards(folder_run[0])))


@pytest.fixture(scope="module")
def manifest(media) -> Path:
    lines = [
        {"id": "ex1", "parts": ["A cat:", {"image": "img0.png"}, " says", {"audio": "a1.wav"}, {"video": "v1.mp4"}]},
        {"parts": [{"text": "two sizes"}, {"image": "img1.png"}, {"image": "sub/odd.jpg"}, {"image": "img2.png"}]},
        {"id": "missing", "parts": ["x", {"image": "nope.png"}]},
        "{not json",
        {"id": "unknown", "parts": [{"pdf": "x.pdf"}]},
        {"id": "badstream", "parts": [{"image": "img0.png", "stream": "nope"}]},
        "",
        {"id": "ex1", "parts": ["same id again"]},
        {"id": 9, "parts": ["text only"]},
        {"id": "vid-opts", "parts": [{"video": str(media / "v1.mp4"), "fps": 6, "short_side": 16}]},
        {"id": "corrupt", "parts": ["a", {"audio": "a1.wav"}, {"image": "bad.png"}]},
    ]
    path = media / "manifest.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_manifest_interleaved_text_and_media(manifest, media, vocab, tmp_path):
    summary = pretokenize(manifest, vocab, tmp_path / "out", shard_items=2, batch_size=2, progress=False)
    assert (summary.items, summary.tokenized, summary.failed) == (10, 4, 6)
    got = by_id(TokenShards(tmp_path / "out"))
    want = {
        "ex1": ["A cat:", Image(media / "img0.png"), " says", Audio(media / "a1.wav"), Video(media / "v1.mp4")],
        "2": ["two sizes", Image(media / "img1.png"), Image(media / "sub/odd.jpg"), Image(media / "img2.png")],
        "9": ["text only"],
        "vid-opts": [Video(media / "v1.mp4", fps=6, short_side=16)],
    }
    assert_same_items(got, {name: expected(vocab, parts) for name, parts in want.items()})
    assert set(np.unique(got["ex1"][1])) == {0, 1, 2, 3}  # text, image, audio, video
    failures = {f["id"]: f["reason"] for f in TokenShards(tmp_path / "out").failures()}
    assert sorted(failures) == ["4", "badstream", "corrupt", "ex1", "missing", "unknown"]
    assert "nope.png: no such file" in failures["missing"]
    assert "not valid JSON" in failures["4"] and "unknown part type" in failures["unknown"]
    assert "no 'nope' stream" in failures["badstream"] and "duplicate id 'ex1'" in failures["ex1"]
    assert "bad.png" in failures["corrupt"]


# -- kill -9 and resume ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """24 items (two image sizes, audio, video) so a run lasts long enough to be killed."""
    root = tmp_path_factory.mktemp("many")
    for i in range(20):
        write_image(root / f"img{i:02d}.png", sample_image(32 if i % 3 else 24, 40, seed=i))
    for i in range(3):
        write_sample_audio(root / f"a{i}.wav", 0.4, 16000, seed=i)
    write_sample_video(root / "v.mp4", 9, 24, 32)
    return root


def state_done(out: Path, rank: int = 0) -> int:
    state = RankState.load(out, rank) if out.is_dir() else None
    return state.done if state else 0


def start_and_kill(args: list, out: Path, after_done: int) -> int:
    """Start the console script, SIGKILL it (and its workers) as soon as its state records
    more than `after_done` items; returns the items done then."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.Popen([str(MMTOK), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and state_done(out) <= after_done and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return state_done(out)


def test_kill_and_resume_loses_and_duplicates_nothing(many, vocab, extended_dir, tmp_path):
    pretokenize(many, vocab, tmp_path / "ref", shard_items=100, bos=False, eos=False, progress=False)
    reference = by_id(TokenShards(tmp_path / "ref"))
    out = tmp_path / "out"
    args = ["pretokenize", many, "--vocab", extended_dir, "-o", out, "--shard-items", "2", "--batch-size", "2",
            "--workers", "1", "--no-bos", "--no-eos"]
    first = start_and_kill(args, out, after_done=0)
    second = start_and_kill(args, out, after_done=first)  # killed again, after resuming
    assert 0 < first < second < 24
    partial = TokenShards(out)  # a reader sees exactly the committed items meanwhile
    assert not partial.complete and len(partial) == second
    result = ok(run_mmtok(*args))
    assert f"resumed at item {second}" in result.stdout and "24 items tokenized" in result.stdout, result.stdout
    assert_same_items(by_id(TokenShards(out)), reference)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_leftovers_of_a_kill_between_rename_and_state_are_removed(media, vocab, tmp_path):
    out = tmp_path / "out"
    pretokenize(media, vocab, out, shard_items=3, progress=False)
    reference = by_id(TokenShards(out))
    # The moments a kill can hit: a shard renamed into place but not yet recorded, a
    # half-written shard folder, a half-written state file.
    state = RankState.load(out, 0)
    state.shards.pop()
    state.done, state.failures = 9, [f for f in state.failures if f["id"] != "trunc.mp4"]
    state.save(out)
    (out / ".tmp-rank00000-shard00003-abc").mkdir()
    (out / ".tmp-rank00000-shard00003-abc" / "tokens.npy").write_bytes(b"\x93NUMPY half")
    (out / ".rank00000.state.x1y2.json").write_text("{")
    assert len(TokenShards(out)) == 7  # the unrecorded shard is not part of the dataset
    notes = []
    summary = pretokenize(media, vocab, out, progress=False, log=notes.append)
    assert summary.resumed_at == 9 and summary.processed_now == 2
    assert any("removed the unfinished shard" in n for n in notes)
    assert_same_items(by_id(TokenShards(out)), reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# -- several processes ------------------------------------------------------------------------
def test_torchrun_two_processes_split_the_items(media, vocab, extended_dir, tmp_path):
    pretokenize(media, vocab, tmp_path / "ref", shard_items=2, bos=False, eos=False, progress=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "mmtok.cli.main",
           "pretokenize", str(media), "--vocab", str(extended_dir), "-o", str(out), "--shard-items", "2", "--no-bos", "--no-eos"]
    result = ok(run_command(cmd, timeout=180))
    assert "rank 0/2" in result.stdout and "rank 1/2" in result.stdout, result.stdout
    shards = TokenShards(out)
    assert shards.complete and sorted(p.name for p in out.glob("rank*.state.json")) == ["rank00000.state.json", "rank00001.state.json"]
    rank1 = RankState.load(out, 1)
    assert [f["id"] for f in RankState.load(out, 0).failures + rank1.failures] and rank1.items == 5  # items 1, 3, 5, ...
    assert_same_items(by_id(shards), by_id(TokenShards(tmp_path / "ref")))
    assert sorted(f["id"] for f in shards.failures()) == sorted(FOLDER_FAILED)


def test_rank_and_world_size_options_and_env(media, vocab, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    summary = pretokenize(media, vocab, out, progress=False)
    assert (summary.rank, summary.world_size, summary.items) == (2, 3, 3)
    assert not TokenShards(out).complete
    with pytest.raises(MmtokError, match="was started by 3 process"):
        pretokenize(media, vocab, out, rank=0, world_size=2, progress=False)
    for rank in (0, 1):
        pretokenize(media, vocab, out, rank=rank, progress=False)
    assert TokenShards(out).complete and len(TokenShards(out)) == 8
    with pytest.raises(MmtokError, match="rank 3 is not within world size 3"):
        pretokenize(media, vocab, tmp_path / "other", rank=3, progress=False)


# -- reader ------------------------------------------------------------------------------------
def test_reader(folder_run, extended_dir, llm_dir, other_tok_dir, codec_dir, video_tok_dir, tmp_path):
    out, _ = folder_run
    shards = TokenShards(out)
    assert len(shards) == 8 and shards.num_tokens() == sum(len(ids) for ids, _ in shards)
    last_ids, last_modality = shards[-1]
    assert np.array_equal(last_ids, shards[7][0]) and shards.item_id(-1) == "v1.mp4"
    assert isinstance(last_ids, np.memmap) or isinstance(last_ids.base, np.memmap)  # not read into memory
    assert set(np.unique(last_modality)) == {0, shards.modality_names.index("video")}  # BOS / EOS are text
    with pytest.raises(IndexError):
        shards[8]
    clone = pickle.loads(pickle.dumps(shards))
    assert np.array_equal(clone[3][0], shards[3][0])
    other = tmp_path / "other-vocab"
    extend_tiny(llm_dir, other, {"image": other_tok_dir, "audio": codec_dir, "video": video_tok_dir},
                row_separator=True, frame_separator=True, max_dim=16, pad_to_multiple_of=64)
    with pytest.raises(MmtokError, match="tokens were made with vocab"):
        TokenShards(out, vocab=other)
    with pytest.raises(MmtokError, match="not a `mmtok pretokenize` output"):
        TokenShards(tmp_path)


# -- setup errors: one line, no output ---------------------------------------------------------
def test_missing_vocab_or_input_is_one_error_and_no_output(media, extended_dir, tmp_path):
    out = tmp_path / "out"
    assert_cli_error(run_mmtok("pretokenize", media, "--vocab", tmp_path / "nope", "-o", out), "nope", "mmtok extend")
    assert_cli_error(run_mmtok("pretokenize", tmp_path / "missing", "--vocab", extended_dir, "-o", out), "missing", "INPUT")
    assert not out.exists()


def test_setup_errors(media, vocab, extended_dir, llm_dir, other_tok_dir, codec_dir, video_tok_dir, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.txt").write_text("a.png\n")
    cases = [
        (tmp_path / "empty", out, "no audio/image/video files found"),
        (tmp_path / "list.txt", out, "must be a folder of media files or a .jsonl manifest"),
        (media, media, "is not empty and is not a pretokenize output"),
    ]
    for source, target, message in cases:
        with pytest.raises(MmtokError, match=message):
            pretokenize(source, vocab, target, progress=False)
    assert not out.exists()
    with pytest.raises(MmtokError, match="no mmtok_vocab.json"):
        pretokenize(media, llm_dir, out, progress=False)
    assert not out.exists()

    pretokenize(media, vocab, out, shard_items=4, bos=False, progress=False)
    other = tmp_path / "other-vocab"
    extend_tiny(llm_dir, other, {"image": other_tok_dir, "audio": codec_dir, "video": video_tok_dir},
                row_separator=True, frame_separator=True, max_dim=16, pad_to_multiple_of=64)
    with pytest.raises(MmtokError, match="was made with vocab .* resume with the same --vocab"):
        pretokenize(media, other, out, progress=False)
    with pytest.raises(MmtokError, match="was started with --shard-items 4, not 5"):
        pretokenize(media, vocab, out, shard_items=5, progress=False)
    with pytest.raises(MmtokError, match="--bos/--no-bos False, not True"):
        pretokenize(media, vocab, out, bos=True, progress=False)
    write_image(media / "new.png", sample_image(8, 8))
    try:
        with pytest.raises(MmtokError, match="was made from another input"):
            pretokenize(media, vocab, out, progress=False)
    finally:
        (media / "new.png").unlink()
    assert pretokenize(media, vocab, out, progress=False).already_complete  # stored options are used when left out


# -- encoding paths ----------------------------------------------------------------------------
def test_long_media_are_streamed_from_the_file_with_the_same_ids(folder_run, media, vocab, tmp_path, monkeypatch):
    from mmtok.audio.modality import AUDIO
    from mmtok.video.modality import VIDEO

    # Every audio / video "too long to hold whole": workers hand back the path, the main
    # process streams the file through encode_audio / encode_video.
    monkeypatch.setattr(AUDIO, "max_held_seconds", 0.0)
    monkeypatch.setattr(VIDEO, "max_held_bytes", 0)
    pretokenize(media, vocab, tmp_path / "out", progress=False)
    assert_same_items(by_id(TokenShards(tmp_path / "out")), by_id(TokenShards(folder_run[0])))


def test_video_codebook_over_256_codes(media, llm_dir, tmp_path):
    """uint16 codes (torch has no min / max for them) still become ids."""
    import torch
    from conftest import make_video_tokenizer

    from mmtok.quantize import QuantizerConfig
    from mmtok.video.files import encode_video

    tok_dir = make_video_tokenizer(quantizer=QuantizerConfig(kind="fsq", fsq_levels=(8, 8, 5))).save_pretrained(tmp_path / "video320")
    extend_tiny(llm_dir, tmp_path / "vocab", {"video": tok_dir})
    vocab = MediaVocab.load(tmp_path / "vocab")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "v1.mp4").write_bytes((media / "v1.mp4").read_bytes())
    summary = pretokenize(tmp_path / "clips", vocab, tmp_path / "out", bos=False, eos=False, progress=False)
    assert (summary.tokenized, summary.failed) == (1, 0)
    codes = encode_video(vocab.tokenizer("video"), media / "v1.mp4").codes
    assert codes.dtype == torch.uint16
    assert np.array_equal(TokenShards(tmp_path / "out")[0][0], vocab.stream("video").span(codes.long()).numpy())


def test_image_batching_with_many_sizes(vocab):
    """Images of three sizes interleaved, batches of 2, at most 3 waiting: every image gets
    the codes `encode_image` gives it alone."""
    import torch

    from mmtok.image.files import encode_image
    from mmtok.llm.item_reader import DecodedItem, DecodedMedia
    from mmtok.media.modality import Held
    from mmtok.llm.encode import ItemEncoder
    from mmtok.llm.items import Item, MediaRef

    encoder = ItemEncoder(vocab, batch_size=2, max_waiting=3)
    images = [sample_image(*[(16, 20), (24, 20), (16, 28)][i % 3], seed=i) for i in range(10)]
    jobs = []
    for i, image in enumerate(images):
        ref = MediaRef("image", f"{i}.png", f"{i}.png", "image")
        jobs.append(encoder.add(DecodedItem(i, Item(str(i), (ref,)), [DecodedMedia(ref, Held(image))])))
    assert encoder.waiting <= 3
    encoder.flush()
    tok = vocab.tokenizer("image")
    for job, image in zip(jobs, images):
        assert job.error is None and torch.equal(job.codes[0], encode_image(tok, image).codes)
