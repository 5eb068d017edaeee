"""Hostile inputs on the LLM side: `mmtok pretokenize` manifests and folders (a deeply nested
line or a FIFO fails that item, not the run; a FIFO manifest is refused), `mmtok detokenize`
ids files, and options / output paths of `pretokenize`, `detokenize`, `generate` and
`extend`. Each error case must be one `error:` line naming the file or option, exit 1,
nothing left behind (tests/hostile.py).

LLM *checkpoint* folders (truncated weights, pickled weights, non-causal configs) are loaded
by `mmtok extend`; their validation is another piece of work, so only the cases that already
give a clean error are here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import sample_image, write_image
from hostile import check, make_fifo, read_only_place, record, run_in_process

CLASS = "LLM and data files"
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Env:
    def __init__(self, tmp: Path, vocab: Path, llm: Path, tok: Path):
        self.tmp, self.vocab, self.llm, self.tok = tmp, vocab, llm, tok
        self.inputs = tmp / "in"
        self.inputs.mkdir()
        self.image = write_image(self.inputs / "cat.png", sample_image(16, 16))
        self.manifest = self.file("data.jsonl", json.dumps({"id": "a", "parts": ["A cat:", {"image": "cat.png"}]}) + "\n")
        self.ids = self.file("ids.json", json.dumps([1, 2, 3]))
        self.out = tmp / "out"

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    def pretokenize(self, source: Path | None = None, *options, out: Path | None = None, vocab: Path | None = None) -> list:
        return ["pretokenize", source or self.manifest, "--vocab", vocab or self.vocab, "-o", out or self.out, *options]

    def detokenize(self, ids: Path | None = None, *options, out: Path | None = None) -> list:
        return ["detokenize", "--vocab", self.vocab, ids or self.ids, "-o", out or self.out, *options]

    def generate(self, *options, out: Path | None = None, llm: Path | None = None) -> list:
        return ["generate", "--llm", llm or self.vocab, "-p", "A photo:", "-o", out or self.out / "ids.json", *options]

    def extend(self, *options, out: Path | None = None, llm: Path | None = None) -> list:
        return ["extend", "--llm", llm or self.llm, "-t", self.tok, "-o", out or self.out / "mm", "--allow-drift", *options]


@pytest.fixture
def env(tmp_path, extended_dir, llm_dir, tok_dir) -> Env:
    return Env(tmp_path, extended_dir, llm_dir, tok_dir)


# -- pretokenize ---------------------------------------------------------------------------------
@case
def manifest_is_a_fifo(e):
    return e.pretokenize(make_fifo(e.inputs / "pipe.jsonl")), "pipe.jsonl"


@case
def manifest_is_a_text_file(e):
    return e.pretokenize(e.file("data.txt", "hello")), "data.txt"


@case
def manifest_empty(e):
    return e.pretokenize(e.file("empty.jsonl", "\n\n")), "empty.jsonl"


@case
def manifest_not_utf8(e):
    return e.pretokenize(e.file("latin.jsonl", b"\xff\xfe{\"parts\": [\"caf\xe9\"]}\n")), "latin.jsonl"


@case
def input_missing(e):
    return e.pretokenize(e.inputs / "absent.jsonl"), "absent.jsonl"


@case
def vocab_missing(e):
    return e.pretokenize(None, vocab=e.tmp / "no-vocab"), "no-vocab"


@case
def vocab_is_a_plain_llm(e):
    return e.pretokenize(None, vocab=e.llm), "mmtok_vocab.json"


@case
def pretokenize_out_is_a_file(e):
    return e.pretokenize(None, out=e.file("taken", "x")), "taken"


@case
def pretokenize_out_read_only(e):
    return e.pretokenize(None, out=read_only_place() / "shards"), str(read_only_place())


@case
def workers_negative(e):
    return e.pretokenize(None, "--workers", "-1"), "--workers"


@case
def pretokenize_batch_size_zero(e):
    return e.pretokenize(None, "--batch-size", "0"), "--batch-size"


@case
def shard_items_zero(e):
    return e.pretokenize(None, "--shard-items", "0"), "--shard-items"


@case
def pretokenize_fps_nan(e):
    return e.pretokenize(None, "--fps", "nan"), "--fps"


@case
def pretokenize_short_side_zero(e):
    return e.pretokenize(None, "--short-side", "0"), "--short-side"


@case
def world_size_zero(e):
    return e.pretokenize(None, "--world-size", "0"), "--world-size"


@case
def rank_negative(e):
    return e.pretokenize(None, "--rank", "-1"), "--rank"


# -- detokenize ----------------------------------------------------------------------------------
@case
def ids_nested_deeply(e):
    return e.detokenize(e.file("deep.json", "[" * 200_000 + "]" * 200_000)), "deep.json"


@case
def ids_not_json(e):
    return e.detokenize(e.file("bad.json", "[1, 2,")), "bad.json"


@case
def ids_floats(e):
    return e.detokenize(e.file("floats.json", "[1.5, 2]")), "floats.json"


@case
def ids_a_string(e):
    return e.detokenize(e.file("text.json", "\"hello\"")), "text.json"


@case
def ids_fifo(e):
    return e.detokenize(make_fifo(e.inputs / "pipe.json")), "pipe.json"


@case
def ids_missing(e):
    return e.detokenize(e.inputs / "absent.json"), "absent.json"


@case
def detokenize_out_is_a_file(e):
    return e.detokenize(None, out=e.file("taken", "x")), "taken"


@case
def detokenize_out_read_only(e):
    return e.detokenize(None, out=read_only_place() / "gen"), str(read_only_place())


@case
def detokenize_fps_zero(e):
    return e.detokenize(None, "--fps", "0"), "--fps"


@case
def detokenize_fps_nan(e):
    return e.detokenize(None, "--fps", "nan"), "--fps"


@case
def detokenize_policy_unknown(e):
    return e.detokenize(None, "--policy", "guess"), "--policy"


@case
def detokenize_tokenizer_spec_without_name(e):
    return e.detokenize(None, "-t", "image"), "image"


# -- generate ------------------------------------------------------------------------------------
@case
def max_new_tokens_negative(e):
    return e.generate("--max-new-tokens", "-5"), "--max-new-tokens"


@case
def max_new_tokens_zero(e):
    return e.generate("--max-new-tokens", "0"), "--max-new-tokens"


@case
def audio_frames_zero(e):
    return e.generate("--audio-frames", "0"), "--audio-frames"


@case
def generate_llm_missing(e):
    return e.generate(llm=e.tmp / "no-llm"), "no-llm"


@case
def generate_llm_without_vocab(e):
    return e.generate(llm=e.llm), "mmtok_vocab.json"


@case
def generate_image_grid_malformed(e):
    return e.generate("--image-grid", "8by8"), "--image-grid"


@case
def generate_out_read_only(e):
    return e.generate(out=read_only_place() / "ids.json"), str(read_only_place())


# -- extend (options and outputs; LLM folder validation is issue 13's) --------------------------
@case
def audio_levels_zero(e):
    return e.extend("--audio-levels", "0"), "--audio-levels"


@case
def max_grid_huge(e):
    return e.extend("--max-grid", "100000000"), "--max-grid"


@case
def max_grid_zero(e):
    return e.extend("--max-grid", "0"), "--max-grid"


@case
def pad_to_multiple_of_zero(e):
    return e.extend("--pad-to-multiple-of", "0"), "--pad-to-multiple-of"


@case
def extend_llm_missing(e):
    return e.extend(llm=e.tmp / "no-llm"), "no-llm"


@case
def extend_tokenizer_missing(e):
    return ["extend", "--llm", e.llm, "-t", e.tmp / "no-tok", "-o", e.out / "mm"], "no-tok"


@case
def extend_out_is_a_file(e):
    return e.extend(out=e.file("taken", "x")), "taken"


@case
def extend_out_read_only(e):
    return e.extend(out=read_only_place() / "mm"), str(read_only_place())


@pytest.mark.parametrize("name", CASES)
def test_hostile_llm(name, env):
    args, names, *extra = CASES[name](env)
    check(CLASS, name, args, names, env.tmp, **(extra[0] if extra else {"timeout": 60}))


# -- per-item failures: a bad line or file fails that item, never the run ---------------------------
def test_pretokenize_fails_bad_items_and_goes_on(env):
    """A manifest with a deeply nested line, a FIFO, a device and a missing file among good
    items: the run finishes (exit 0, no hang), lists exactly those four failures with a
    reason each, and tokenizes the rest."""
    make_fifo(env.inputs / "pipe.png")
    write_image(env.inputs / "dog.png", sample_image(16, 16, seed=2))
    lines = [
        {"id": "good1", "parts": ["A cat:", {"image": "cat.png"}]},
        "[" * 100_000 + "]" * 100_000,
        {"id": "fifo", "parts": [{"image": "pipe.png"}]},
        {"id": "device", "parts": [{"image": "/dev/zero"}]},
        {"id": "missing", "parts": [{"image": "gone.png"}]},
        {"id": "good2", "parts": ["A dog:", {"image": "dog.png"}]},
    ]
    manifest = env.file("mixed.jsonl", "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    status, stdout, stderr, raised, hung = run_in_process(env.pretokenize(manifest), timeout=120)
    outcome = "hang" if hung else "traceback" if raised or "Traceback" in stderr else "clean" if status == 0 else "unclear"
    record(CLASS, "pretokenize_bad_items_among_good", outcome, stderr)
    assert outcome == "clean", stderr
    failures = [json.loads(line) for line in (env.out / "rank00000.failures.jsonl").read_text().splitlines()]
    reasons = {f["id"]: f["reason"] for f in failures}
    assert set(reasons) == {"2", "fifo", "device", "missing"}, reasons
    assert "nested" in reasons["2"] and "not a regular file" in reasons["fifo"] and "not a regular file" in reasons["device"]
    assert "2 items tokenized" in stdout and "4 failed" in stdout


def test_pretokenize_folder_with_a_fifo_does_not_hang(env):
    """A FIFO named like an image inside an INPUT folder is skipped like any non-file."""
    folder = env.inputs / "media"
    folder.mkdir()
    shutil.copy(env.image, folder / "a.png")
    make_fifo(folder / "b.png")
    status, stdout, stderr, raised, hung = run_in_process(env.pretokenize(folder), timeout=120)
    outcome = "hang" if hung else "traceback" if raised or "Traceback" in stderr else "clean" if status == 0 else "unclear"
    record(CLASS, "pretokenize_folder_with_fifo", outcome, stderr)
    assert outcome == "clean", stderr
    assert "1 items tokenized" in stdout
