"""Training rows from `mmtok pretokenize` shards: packed, labelled per modality, resumable.

    from mmtok.llm import PackedTokens
    data = PackedTokens("data-tokens", seq_len=2048, train_on="media", seed=0, pad_id=tok.pad_token_id)
    loader = torch.utils.data.DataLoader(data, batch_size=8)     # num_workers=0: see "Resuming"
    model.config.use_cache = False            # see "Packing"
    for epoch in range(3):
        for batch in loader:                  # input_ids, labels, position_ids: [8, 2048] int64
            model(**batch).loss.backward()    # no attention_mask (see "Packing")

Packing. The items of the shards, in an order shuffled by `seed` and the epoch, are laid
end to end into rows of `seq_len` ids. An item that does not fit in what is left of a row
starts the next one (the rest is padded with `pad_id`); an item longer than `seq_len` is cut
into pieces that fill whole rows (`split_items=True` cuts every item at row ends instead:
no padding at all). `position_ids` restart at 0 at every item (a cut item's pieces
continue its count), exactly what transformers' `DataCollatorWithFlattening` produces: with
`position_ids` and no `attention_mask`, transformers models attend only within each item
(sdpa / eager: `masking_utils.find_packed_sequence_indices` turns the restarts into a
block-diagonal causal mask; flash-attention: `cu_seq_lens` from the same restarts) as long
as no KV cache is made. So: pass the batch as it is (an `attention_mask` of ones would let
items attend to each other) and set `model.config.use_cache = False` for training (with the
default `True`, transformers 5 builds a cache even in training and then skips the packed
check: items would see each other; tests/test_llm_dataset.py checks both). Items keep the
BOS / EOS that `mmtok pretokenize` puts around them by default, so the ids alone also
show where one ends (for attention code that ignores `position_ids`).

Labels. `labels` is `input_ids` where the loss is taken and -100 elsewhere: on the
modalities of `train_on` ("media", "text", "all", or names such as ("text", "image")),
minus the roles in `mask` (any of "start", "header", "separator", "end" of a media span:
e.g. `mask=("header", "separator")` when the grid is fixed at generation time anyway),
always minus padding and the first id of every piece (transformers shifts labels inside
the model, so that label would be predicted from the previous item).

Shuffling and ranks. Row order depends only on (`seed`, epoch): every process plans the
same rows and rank `r` of `world_size` takes rows `r, r + world_size, ...`, all ranks the
same count (up to `world_size - 1` rows of an epoch are left out). The epoch advances by
itself when a pass ends; `set_epoch(e)` (called by transformers' `Trainer` at each epoch
start) jumps to the start of epoch `e` unless it is the current one.

Resuming. `state_dict()` is `{"epoch", "position", ...}`: the rows this process has handed
out in the current epoch; `load_state_dict(state)` continues from there. It counts rows in
the process that iterates, so it is exact with `num_workers=0` (a row is a memory-mapped
slice: workers buy little). With workers, each takes every n-th row and the count stays 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmtok.errors import MmtokError
from mmtok.llm.shards import TokenShards
from mmtok.llm.streams import MediaStream

IGNORE = -100                                            # transformers' ignore_index
ROLES = ("text", "start", "header", "code", "separator", "end")
MASKABLE = ("start", "header", "separator", "end")


def id_roles(shards: TokenShards) -> np.ndarray:
    """`[vocab_size]` uint8: index into `ROLES` of every id, from the streams the shards record
    (text ids and anything outside a media block are "text")."""
    vocab = shards.info["vocab"]
    roles = np.zeros(int(vocab["vocab_size"]), dtype=np.uint8)
    for data in vocab["streams"]:
        s = MediaStream.from_json(data, str(shards.path))
        roles[s.dim_id : s.code_offset] = ROLES.index("header")
        roles[s.code_offset : s.stop_id] = ROLES.index("separator")   # codes overwrite below
        for lo, hi in s.code_ranges():
            roles[lo:hi] = ROLES.index("code")
        for span in s.span_types:   # one start / end pair per media type the stream serves
            roles[span.start_id] = ROLES.index("start")
            roles[span.end_id] = ROLES.index("end")
    return roles


def trained_modalities(names: list[str], train_on: str | Iterable[str]) -> np.ndarray:
    """`[len(names)]` bool over modality values (0 text, 1 + stream index)."""
    if isinstance(train_on, str):
        train_on = {"media": names[1:], "text": ["text"], "all": names}.get(train_on, [train_on])
    train_on = list(train_on)
    unknown = sorted(set(train_on) - set(names))
    if unknown or not train_on:
        raise MmtokError(f"train_on {train_on}: expected 'media', 'text', 'all' or names among {names}")
    return np.array([n in train_on for n in names])


@dataclass(frozen=True)
class Piece:
    """Ids `[start, stop)` of item `item`, placed in a row."""

    item: int
    start: int
    stop: int


def plan_rows(lengths: np.ndarray, order: np.ndarray, seq_len: int, split_items: bool) -> list[list[Piece]]:
    """Greedy packing of the items `order` (lengths `lengths[order]`) into rows of `seq_len`."""
    rows: list[list[Piece]] = []
    row: list[Piece] = []
    free = seq_len
    for item in order.tolist():
        n = int(lengths[item])
        if n == 0:
            continue
        if not split_items and n <= seq_len and n > free:
            rows.append(row)
            row, free = [], seq_len
        done = 0
        while done < n:
            take = min(free, n - done)
            row.append(Piece(item, done, done + take))
            done += take
            free -= take
            if free == 0:
                rows.append(row)
                row, free = [], seq_len
    if row:
        rows.append(row)
    return rows


class PackedTokens(torch.utils.data.IterableDataset):
    """Rows `{"input_ids", "labels", "position_ids"}`, each `[seq_len]` int64, from `mmtok
    pretokenize` output (see the module docstring for packing, labels, order and resuming).

    Args:
        shards: a `TokenShards` or its folder.
        seq_len: ids per row.
        train_on: "media" (default), "text", "all", or modality names ("text", "image", ...).
        mask: media-span roles never trained on: any of "start", "header", "separator", "end".
        pad_id: id of padding (labels -100 there; any id works, the LLM's pad id reads best).
        seed / shuffle: item order; `shuffle=False` keeps the shards' order every epoch.
        rank / world_size: this process's share of the rows (default: all of them).
        split_items: cut items at row ends (no padding) instead of starting a new row.
    """

    def __init__(
        self, shards: TokenShards | str | Path, seq_len: int, *, train_on: str | Iterable[str] = "media",
        mask: Iterable[str] = (), pad_id: int = 0, seed: int = 0, shuffle: bool = True, rank: int = 0,
        world_size: int = 1, split_items: bool = False,
    ):
        self.shards = shards if isinstance(shards, TokenShards) else TokenShards(shards)
        if seq_len < 2:
            raise MmtokError(f"seq_len must be at least 2, got {seq_len}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise MmtokError(f"rank {rank} is not within world size {world_size}")
        bad = sorted(set(mask) - set(MASKABLE))
        if bad:
            raise MmtokError(f"mask {bad}: roles that can be masked are {list(MASKABLE)}")
        self.seq_len, self.pad_id, self.seed, self.shuffle = seq_len, pad_id, seed, shuffle
        self.rank, self.world_size, self.split_items = rank, world_size, split_items
        self.train_on = trained_modalities(self.shards.modality_names, train_on)
        self.masked_roles = np.isin(np.arange(len(ROLES)), [ROLES.index(r) for r in mask])
        self.roles = id_roles(self.shards)
        self.lengths = self.shards.item_lengths()
        self.epoch, self.position = 0, 0
        self._rows: tuple[int, list[list[Piece]]] | None = None

    # -- order -------------------------------------------------------------------------
    def rows(self, epoch: int | None = None) -> list[list[Piece]]:
        """This rank's rows of `epoch` (default: the current one), in order."""
        epoch = self.epoch if epoch is None else epoch
        if self._rows is None or self._rows[0] != epoch:
            n = len(self.lengths)
            order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
            every = plan_rows(self.lengths, order, self.seq_len, self.split_items)
            per_rank = len(every) // self.world_size
            self._rows = (epoch, every[self.rank : per_rank * self.world_size : self.world_size])
        return self._rows[1]

    def __len__(self) -> int:
        return len(self.rows())

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    # -- rows --------------------------------------------------------------------------
    def row(self, pieces: list[Piece]) -> dict[str, torch.Tensor]:
        """One row: ids, labels and positions of its pieces, then padding."""
        ids = np.full(self.seq_len, self.pad_id, dtype=np.int64)
        labels = np.full(self.seq_len, IGNORE, dtype=np.int64)
        positions = np.zeros(self.seq_len, dtype=np.int64)
        at = 0
        for p in pieces:
            item_ids, modality = self.shards[p.item]
            piece = np.asarray(item_ids[p.start : p.stop], dtype=np.int64)
            keep = self.train_on[np.asarray(modality[p.start : p.stop])] & ~self.masked_roles[self.roles[piece]]
            keep[0] = False
            end = at + len(piece)
            ids[at:end] = piece
            labels[at:end] = np.where(keep, piece, IGNORE)
            positions[at:end] = np.arange(p.start, p.stop)
            at = end
        positions[at:] = np.arange(self.seq_len - at)   # padding: a block of its own
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels),
                "position_ids": torch.from_numpy(positions)}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rows = self.rows()
        worker = torch.utils.data.get_worker_info()
        if worker is not None:   # each worker process takes every n-th row (its own copy of the state)
            for pieces in rows[self.position + worker.id :: worker.num_workers]:
                yield self.row(pieces)
            return
        while self.position < len(rows):
            self.position += 1
            yield self.row(rows[self.position - 1])
        self.epoch, self.position = self.epoch + 1, 0

    # -- resuming ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "seq_len": self.seq_len,
                "rank": self.rank, "world_size": self.world_size, "items": len(self.lengths)}

    def load_state_dict(self, state: dict) -> None:
        """Continue where `state` (from `state_dict()` of the same dataset and rank) left off."""
        mine = self.state_dict()
        differ = [k for k in ("seed", "seq_len", "rank", "world_size", "items") if state.get(k) != mine[k]]
        if differ:
            raise MmtokError(f"data state was saved with other {', '.join(differ)} "
                             f"({', '.join(f'{k}={state.get(k)} here {mine[k]}' for k in differ)}); resume with the same settings")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    # -- Hugging Face datasets ---------------------------------------------------------
    def to_hf_dataset(self, epoch: int | None = None):
        """This rank's rows of `epoch` as a `datasets.Dataset` (columns input_ids, labels,
        position_ids; needs `pip install datasets`). Rows are built in memory, then handed
        to Arrow: for data that fits in memory (use the iterable for more)."""
        try:
            import datasets
            import pyarrow
        except ImportError:
            raise MmtokError("to_hf_dataset needs the `datasets` package: pip install datasets") from None
        epoch = self.epoch if epoch is None else epoch
        rows = [self.row(p) for p in self.rows(epoch)]
        table = pyarrow.table({k: pyarrow.array([r[k].numpy() for r in rows], pyarrow.list_(pyarrow.int64()))
                               for k in ("input_ids", "labels", "position_ids")})
        # a fingerprint from what decides the rows (datasets would otherwise hash the table)
        options = {**self.state_dict(), "epoch": epoch, "position": 0, "shards": self.shards.info["input"]["fingerprint"],
                   "vocab": self.shards.info["vocab"]["fingerprint"], "split": self.split_items, "shuffle": self.shuffle,
                   "pad": self.pad_id, "train_on": self.train_on.tolist(), "mask": self.masked_roles.tolist()}
        fingerprint = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
        return datasets.Dataset(table, fingerprint=fingerprint).with_format("torch")
