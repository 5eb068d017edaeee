"""On-disk format of `mmtok pretokenize` output, its writer pieces and the reader `TokenShards`.

Plain numpy and JSON, so any language or framework can read it (no pickles, no mmtok):

    OUT/dataset.json                 what was tokenized with what (below)
    OUT/rank00000.state.json         rank 0's progress: committed shards, items done, failures
    OUT/rank00000.failures.jsonl     {"id": ..., "reason": ...} per failed item of rank 0
    OUT/rank00000-shard00000/
        tokens.npy                   [N] uint32   LLM ids of all the shard's items, concatenated
        modality.npy                 [N] uint8    0 text, 1 + stream index (see dataset.json
                                                  "modality_names"); boundary / header tokens
                                                  of a media span carry its stream's value
        index.npy                    [n+1] int64  item i is tokens[index[i]:index[i+1]]
        items.json                   [n] item ids (JSON list of strings)

`dataset.json`: {"format": "mmtok-pretokenized", "version": 1, "vocab": {"fingerprint",
"text_vocab_size", "vocab_size", "embedding_rows", "streams": [id blocks and code ranges as
in mmtok_vocab.json]}, "modality_names", "input": {"kind", "path", "items", "fingerprint"},
"world_size", "shard_items", "bos", "eos", "fps", "short_side"}.

Only shards listed in a state file are part of the dataset: a shard folder is renamed into
place first and listed second, so a folder that is not listed (a run killed between the
two) is ignored by readers and deleted by the next run. Rank r's shard k holds rank r's
items at positions `k*shard_items ..` of its share (items `i` with `i % world_size == r`),
minus failures; a shard whose items all failed is not written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmtok import files
from mmtok.errors import MmtokError
from mmtok.files import atomic_write, give_usual_mode, write_json
from mmtok.llm.vocab import MediaVocab

DATASET_FILE = "dataset.json"
DATASET_FORMAT = "mmtok-pretokenized"
DATASET_VERSION = 1
STATE_FORMAT = "mmtok-pretokenize-state"
TEXT_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "special_tokens_map.json")


def rank_name(rank: int) -> str:
    return f"rank{rank:05d}"


def shard_name(rank: int, index: int) -> str:
    return f"{rank_name(rank)}-shard{index:05d}"


def vocab_identity(vocab) -> dict[str, Any]:
    """What `dataset.json` records about the vocab: sizes, id blocks, and a fingerprint of
    everything that decides the ids (media blocks, tokenizer fingerprints, the text
    tokenizer's files), but not paths, so a moved checkpoint still matches."""
    streams = []
    for s in vocab.streams:
        data = s.to_json()
        data["tokenizer"] = {k: v for k, v in data["tokenizer"].items() if k != "source"}
        streams.append(data)
    digest = hashlib.sha256(json.dumps(
        [vocab.text_vocab_size, vocab.vocab_size, vocab.embedding_rows, streams], sort_keys=True,
    ).encode())
    if vocab.directory is not None:
        for name in TEXT_FILES:
            file = Path(vocab.directory) / name
            if file.is_file():
                digest.update(name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return {
        "fingerprint": digest.hexdigest()[:16], "text_vocab_size": vocab.text_vocab_size,
        "vocab_size": vocab.vocab_size, "embedding_rows": vocab.embedding_rows, "streams": streams,
    }


def read_json(path: Path, what: str) -> Any:
    """A JSON file of the output folder; damage is one MmtokError."""
    return files.read_json(path, f"unreadable {what}", "was the folder damaged? Start again in a new output folder")


# -- per-rank state ------------------------------------------------------------------------
@dataclass
class ShardInfo:
    name: str
    items: int
    tokens: int


@dataclass
class RankState:
    """Progress of one rank, rewritten atomically after each shard is in place."""

    rank: int
    world_size: int
    items: int                                  # items in this rank's share
    done: int = 0                               # positions of the share committed (ok or failed)
    shards: list[ShardInfo] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)   # {"id", "reason"}

    @property
    def complete(self) -> bool:
        return self.done >= self.items

    @classmethod
    def path(cls, out: Path, rank: int) -> Path:
        return out / f"{rank_name(rank)}.state.json"

    @classmethod
    def load(cls, out: Path, rank: int) -> RankState | None:
        path = cls.path(out, rank)
        if not path.is_file():
            return None
        data = read_json(path, "progress file")
        try:
            if data.get("format") != STATE_FORMAT:
                raise KeyError("format")
            return cls(int(data["rank"]), int(data["world_size"]), int(data["items"]), int(data["done"]),
                       [ShardInfo(**s) for s in data["shards"]], [dict(f) for f in data["failures"]])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MmtokError(f"{path}: damaged progress file ({err}); start again in a new output folder") from None

    def save(self, out: Path) -> None:
        write_json(self.path(out, self.rank), {"format": STATE_FORMAT, **asdict(self)})
        self.write_failures(out)

    def write_failures(self, out: Path) -> None:
        """`rankNNNNN.failures.jsonl` from the state (derived: if a kill lands between the two
        writes, the next run rewrites it); left alone when it is already up to date."""
        path = out / f"{rank_name(self.rank)}.failures.jsonl"
        lines = "".join(json.dumps(f) + "\n" for f in self.failures)
        if not path.is_file() or path.read_text() != lines:
            atomic_write(path, lambda tmp: tmp.write_text(lines))


def clean_rank(out: Path, state: RankState) -> int:
    """Remove what a killed run of this rank left: temp files and folders, and shard folders
    renamed into place but never listed in the state. Returns how many were removed.
    Touches only this rank's names: other ranks may be running in the same folder."""
    prefix = rank_name(state.rank)
    listed = {s.name for s in state.shards}
    removed = 0
    for entry in out.iterdir():
        name = entry.name
        stale = name.startswith((f".tmp-{prefix}-", f".{prefix}.")) or (
            name.startswith(f"{prefix}-shard") and entry.is_dir() and name not in listed
        )
        if stale:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed += 1
    return removed


def write_shard(out: Path, name: str, ids: list[np.ndarray], modality: list[np.ndarray], item_ids: list[str]) -> ShardInfo:
    """Write one shard folder atomically: filled under a temp name, then renamed into place.

    `ids[i]` / `modality[i]`: `[L_i]` token ids (< 2**32) and modality values of item i."""
    lengths = np.array([0, *(len(a) for a in ids)], dtype=np.int64)
    index = np.cumsum(lengths)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=out))
    try:
        np.save(tmp / "tokens.npy", np.concatenate(ids).astype(np.uint32) if ids else np.zeros(0, np.uint32))
        np.save(tmp / "modality.npy", np.concatenate(modality).astype(np.uint8) if ids else np.zeros(0, np.uint8))
        np.save(tmp / "index.npy", index)
        (tmp / "items.json").write_text(json.dumps(item_ids))
        give_usual_mode(tmp)
        target = out / name
        if target.exists():  # an unlisted leftover (see clean_rank): never part of the dataset
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardInfo(name, len(item_ids), int(index[-1]))


# -- reader --------------------------------------------------------------------------------
class TokenShards:
    """Read-only view of a `mmtok pretokenize` output: every committed item of every rank.

        shards = TokenShards("data/tokens")            # vocab=DIR also checks the checkpoint
        len(shards)                                    # items
        ids, modality = shards[0]                      # [L] uint32, [L] uint8 (memory-mapped)
        shards.item_id(0)                              # "imgs/cat.png"
        for ids, modality in shards: ...

    Items come rank by rank, shard by shard (within a rank, in dataset order). Arrays are
    `np.load(mmap_mode="r")` views, so only what is indexed is read from disk. For training,
    `mmtok.llm.PackedTokens` (mmtok/llm/dataset.py) packs them into rows with labels per
    modality, a seeded order per epoch, rank shards and a resumable position.

    A `TokenShards` pickles without its open memory maps (cheap to hand to DataLoader
    workers); each process re-opens them on first use.
    """

    def __init__(self, path: str | Path, vocab: str | Path | MediaVocab | None = None):
        self.path = Path(path)
        if not (self.path / DATASET_FILE).is_file():
            raise MmtokError(f"{self.path}: no {DATASET_FILE}; not a `mmtok pretokenize` output")
        self.info = read_json(self.path / DATASET_FILE, "dataset file")
        if self.info.get("format") != DATASET_FORMAT or self.info.get("version") != DATASET_VERSION:
            raise MmtokError(f"{self.path / DATASET_FILE}: not a version-{DATASET_VERSION} {DATASET_FORMAT} file; upgrade mmtok")
        if vocab is not None:
            self.check_vocab(vocab)
        world = int(self.info["world_size"])
        self.states = [s for s in (RankState.load(self.path, r) for r in range(world)) if s is not None]
        self.shard_names = [s.name for state in self.states for s in state.shards]
        counts = [s.items for state in self.states for s in state.shards]
        self._starts = np.cumsum([0, *counts])  # global index of each shard's first item
        self._open: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = {}

    @property
    def modality_names(self) -> list[str]:
        """Value `v` of `modality` arrays -> "text" or the stream name."""
        return list(self.info["modality_names"])

    @property
    def complete(self) -> bool:
        """Every rank has finished its share."""
        return len(self.states) == int(self.info["world_size"]) and all(s.complete for s in self.states)

    def failures(self) -> list[dict[str, str]]:
        """`{"id", "reason"}` of every failed item, all ranks."""
        return [f for state in self.states for f in state.failures]

    def check_vocab(self, vocab: str | Path | MediaVocab) -> None:
        """MmtokError unless these ids were made with `vocab` (a `MediaVocab` or its folder)."""
        if not isinstance(vocab, MediaVocab):
            vocab = MediaVocab.load(vocab)
        have, want = self.info["vocab"]["fingerprint"], vocab_identity(vocab)["fingerprint"]
        if have != want:
            raise MmtokError(
                f"{self.path}: tokens were made with vocab {have}, but {vocab.directory} is {want}; "
                "use the checkpoint they were made for, or pre-tokenize again"
            )

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"item {index} out of range for {n} items")
        index %= n
        shard = int(np.searchsorted(self._starts, index, side="right")) - 1
        return shard, index - int(self._starts[shard])

    def _shard(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        if k not in self._open:
            folder = self.path / self.shard_names[k]
            try:
                self._open[k] = (
                    np.load(folder / "tokens.npy", mmap_mode="r", allow_pickle=False),
                    np.load(folder / "modality.npy", mmap_mode="r", allow_pickle=False),
                    np.load(folder / "index.npy", allow_pickle=False),
                    json.loads((folder / "items.json").read_text()),
                )
            except (OSError, ValueError) as err:
                raise MmtokError(f"{folder}: unreadable shard ({err}); the output folder was damaged") from None
        return self._open[k]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item `index` -> `(ids [L] uint32, modality [L] uint8)`, memory-mapped views."""
        shard, i = self._locate(index)
        tokens, modality, offsets, _ = self._shard(shard)
        start, stop = int(offsets[i]), int(offsets[i + 1])
        return tokens[start:stop], modality[start:stop]

    def item_id(self, index: int) -> str:
        shard, i = self._locate(index)
        return self._shard(shard)[3][i]

    def item_ids(self) -> list[str]:
        return [item for k in range(len(self.shard_names)) for item in self._shard(k)[3]]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self[i]

    def item_lengths(self) -> np.ndarray:
        """`[len(self)]` int64: ids per item, in item order (reads only the shards' index files)."""
        parts = [np.diff(self._shard(k)[2]) for k in range(len(self.shard_names))]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def num_tokens(self) -> int:
        return sum(s.tokens for state in self.states for s in state.shards)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}
