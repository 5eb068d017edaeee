"""`mmtok pretokenize`: a dataset of media (or interleaved text + media) -> LLM-ready id shards.

    summary = pretokenize("data/", "llama-mm", "data-tokens", workers=4)
    shards = TokenShards("data-tokens")          # mmtok.llm.shards: the format and the reader

Pipeline, per process:
1. Items (`mmtok.llm.items`): a folder (one item per media file) or a JSONL manifest, in a
   fixed order; process `rank` of `world_size` takes items `i` with `i % world_size == rank`.
2. A torch DataLoader with `workers` processes reads media files into tensors
   (`mmtok.llm.item_reader`), in order.
3. The main process encodes: same-size images in batches of `batch_size` (the tiled path
   for images over 1 MP, as `encode_image` does), audio and video item by item through the
   tokenizers' streaming encoders (the same pieces `encode_audio` / `encode_video` feed,
   so the codes are theirs). The codes become ids through `vocab.build` with the codes
   wrapped as `TokenFile`s: nothing is encoded twice, and text goes through the LLM tokenizer.
4. Every `shard_items` items of the share are committed: the shard folder is written under
   a temp name and renamed, then the rank's state file is rewritten atomically (items done,
   shards, failures). A run killed at any moment loses at most the uncommitted items; the
   next run removes the leftovers and redoes exactly those (see `shards.clean_rank`).

Failures (unreadable, missing or corrupt media, malformed manifest lines, grids too large
for the vocab) are per item: recorded with the reason, skipped, counted. Errors in the
setup (no vocab, no INPUT, an output folder made from another vocab / input / options) are
one `MmtokError` before anything is written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmtok.errors import MmtokError
from mmtok.files import check_output_dir, make_dirs, write_json
from mmtok.llm import shards
from mmtok.llm.encode import ItemEncoder
from mmtok.llm.item_reader import DecodedItem, DecodedMedia, ItemReader, keep
from mmtok.llm.items import Dataset, load_dataset
from mmtok.llm.sequence import MediaPart
from mmtok.llm.shards import DATASET_FILE, RankState, rank_name
from mmtok.llm.vocab import MediaVocab
from mmtok.modalities import named
from mmtok.tokens_file import TokenFile

DEFAULT_SHARD_ITEMS = 1000


@dataclass(frozen=True)
class Settings:
    """Options an output folder is tied to: a resumed run must use the same ones."""

    world_size: int
    shard_items: int = DEFAULT_SHARD_ITEMS
    bos: bool = True
    eos: bool = True
    fps: float | None = None
    short_side: int | None = None


FLAGS = {"world_size": "--world-size", "shard_items": "--shard-items", "bos": "--bos/--no-bos", "eos": "--eos/--no-eos",
         "fps": "--fps", "short_side": "--short-side"}


@dataclass
class Summary:
    """What one process did. Counts are over its whole share (earlier runs included)."""

    out: Path
    rank: int
    world_size: int
    items: int                 # items in this rank's share
    resumed_at: int            # share positions already committed when this run started
    tokenized: int             # items written to shards
    failed: int
    shards: int
    tokens: int
    seconds: float             # this run's pipeline time (after setup)
    already_complete: bool = False
    failures_file: Path = field(default_factory=Path)

    @property
    def processed_now(self) -> int:
        return self.items - self.resumed_at


def distributed_env(rank: int | None = None, world_size: int | None = None) -> tuple[int, int, int]:
    """`(rank, world_size, local_rank)`: the arguments, else RANK / WORLD_SIZE / LOCAL_RANK as
    `torchrun` and `accelerate launch` set them, else a single process."""
    try:
        rank = int(os.environ.get("RANK", 0)) if rank is None else rank
        world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
    except ValueError as err:
        raise MmtokError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({err})") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise MmtokError(f"rank {rank} is not within world size {world_size}; pass 0 <= --rank < --world-size")
    return rank, world_size, local_rank


def pick_device(device: str | None, local_rank: int) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def pretokenize(
    input: str | Path, vocab: str | Path | MediaVocab, out: str | Path, *, workers: int = 0, batch_size: int = 16,
    shard_items: int | None = None, bos: bool | None = None, eos: bool | None = None, fps: float | None = None,
    short_side: int | None = None, rank: int | None = None, world_size: int | None = None, device: str | None = None,
    progress: bool = True, log: Callable[[str], object] = lambda _: None,
) -> Summary:
    """Pre-tokenize `input` (folder or .jsonl) with the extended checkpoint `vocab` into `out`.

    Options left as None take the value recorded in an existing `out`, else the default
    (`shard_items` 1000, `bos` / `eos` True, `fps` / `short_side` as stored in the files).
    Resumes an interrupted run; returns this process's `Summary`."""
    if workers < 0 or batch_size < 1:
        raise MmtokError(f"--workers must be >= 0 and --batch-size >= 1, got {workers} and {batch_size}")
    out = Path(out)
    check_output_dir(out)
    vocab = vocab if isinstance(vocab, MediaVocab) else MediaVocab.load(vocab)
    rank, world_size, local_rank = distributed_env(rank, world_size)
    stored = _existing_output(out)
    settings = _settings(out, stored, Settings(world_size, shard_items, bos, eos, fps, short_side))
    dataset = load_dataset(input, vocab, settings.fps, settings.short_side)
    for modality, n in dataset.skipped.items():
        log(f"note: {n} {modality} file(s) in {dataset.path} left out: the vocab has no {modality} stream")
    identity = shards.vocab_identity(vocab)
    if stored is not None:
        _check_same(out, stored, identity, dataset, vocab)
    else:  # (a resumed run was checked when it started; loading the LLM tokenizer takes seconds)
        _check_special_tokens(vocab, settings)

    make_dirs(out)
    if stored is None:
        write_json(out / DATASET_FILE, _dataset_json(vocab, identity, dataset, settings))
    share = dataset.items[rank::world_size]
    state = RankState.load(out, rank) or RankState(rank, world_size, len(share))
    if state.items != len(share) or state.world_size != world_size:
        raise MmtokError(f"{RankState.path(out, rank)}: records {state.items} items of {state.world_size} ranks, expected "
                         f"{len(share)} of {world_size}; start again in a new output folder")
    if shards.clean_rank(out, state):
        log(f"{out}: removed the unfinished shard of an interrupted run; resuming at item {state.done} of {len(share)}")
    if state.complete:
        state.write_failures(out)  # a kill right after the last state write may have left it stale
        return _summary(out, state, settings, state.done, 0.0, already_complete=True)

    if settings.bos or settings.eos or dataset.kind == "manifest":
        vocab.text_tokenizer  # noqa: B018 -- load it now (seconds of imports), not inside the first shard
    start = time.perf_counter()
    resumed_at = state.done
    _run(share, state, out, vocab, settings, workers, batch_size, pick_device(device, local_rank), progress)
    return _summary(out, state, settings, resumed_at, time.perf_counter() - start)


# -- setup checks ------------------------------------------------------------------------------
def _existing_output(out: Path) -> dict | None:
    if out.exists() and not out.is_dir():
        raise MmtokError(f"{out}: exists and is not a folder; choose an output folder")
    if not out.is_dir():
        return None
    if (out / DATASET_FILE).is_file():
        data = shards.read_json(out / DATASET_FILE, "dataset file")
        if not isinstance(data, dict) or data.get("format") != shards.DATASET_FORMAT or data.get("version") != shards.DATASET_VERSION:
            raise MmtokError(f"{out / DATASET_FILE}: not a version-{shards.DATASET_VERSION} pretokenize output; choose a new output folder")
        return data
    if any(not p.name.startswith(".") for p in out.iterdir()):
        raise MmtokError(f"{out}: exists, is not empty and is not a pretokenize output; choose a new output folder")
    return None


def _settings(out: Path, stored: dict | None, given: Settings) -> Settings:
    values = {}
    for key, default in Settings(given.world_size).__dict__.items():
        wanted = getattr(given, key)
        if stored is None:
            values[key] = default if wanted is None else wanted
            continue
        have = stored.get(key)
        if wanted is not None and wanted != have:
            if key == "world_size":
                raise MmtokError(f"{out}: was started by {have} process(es), this run has world size {wanted}; "
                                 f"resume with {have} processes (RANK / WORLD_SIZE or --world-size) or use a new output folder")
            raise MmtokError(f"{out}: was started with {FLAGS[key]} {have}, not {wanted}; resume with the same option "
                             "(or leave it out) or use a new output folder")
        values[key] = have
    settings = Settings(**values)
    if settings.shard_items < 1:
        raise MmtokError(f"--shard-items must be >= 1, got {settings.shard_items}")
    return settings


def _check_same(out: Path, stored: dict, identity: dict, dataset: Dataset, vocab: MediaVocab) -> None:
    have = stored.get("vocab", {}).get("fingerprint")
    if have != identity["fingerprint"]:
        raise MmtokError(f"{out}: was made with vocab {have}, but {vocab.directory} is vocab {identity['fingerprint']} "
                         "(other tokenizers, layout or LLM); resume with the same --vocab or use a new output folder")
    recorded = stored.get("input", {})
    if recorded.get("fingerprint") != dataset.fingerprint:
        raise MmtokError(f"{out}: was made from another input ({recorded.get('items')} items of {recorded.get('path')}; "
                         f"{dataset.path} now has {len(dataset.items)}); resume with the same INPUT or use a new output folder")


def _check_special_tokens(vocab: MediaVocab, settings: Settings) -> None:
    for which in ("bos", "eos"):
        if getattr(settings, which) and getattr(vocab.text_tokenizer, f"{which}_token_id", None) is None:
            raise MmtokError(f"{vocab.directory}: the LLM tokenizer has no {which} token; pass --no-{which}")


def _dataset_json(vocab: MediaVocab, identity: dict, dataset: Dataset, settings: Settings) -> dict:
    return {
        "format": shards.DATASET_FORMAT, "version": shards.DATASET_VERSION, "vocab": identity,
        "modality_names": ["text", *(s.name for s in vocab.streams)],
        "input": {"kind": dataset.kind, "path": str(dataset.path.resolve()), "items": len(dataset.items),
                  "fingerprint": dataset.fingerprint},
        **settings.__dict__,
        "dtypes": {"tokens": "uint32", "modality": "uint8", "index": "int64"},
    }


def _summary(out: Path, state: RankState, settings: Settings, resumed_at: int, seconds: float, already_complete: bool = False) -> Summary:
    return Summary(
        out, state.rank, settings.world_size, state.items, resumed_at, sum(s.items for s in state.shards), len(state.failures),
        len(state.shards), sum(s.tokens for s in state.shards), seconds, already_complete,
        out / f"{rank_name(state.rank)}.failures.jsonl",
    )


# -- the pipeline ------------------------------------------------------------------------------
def _run(share: list, state: RankState, out: Path, vocab: MediaVocab, settings: Settings,
         workers: int, batch_size: int, device: torch.device, progress: bool) -> None:
    from tqdm.auto import tqdm

    readings = {s.name: named(s.modality).reading(vocab.tokenizer(s.name)) for s in vocab.streams}
    reader = ItemReader(share, state.done, readings)
    loader = torch.utils.data.DataLoader(reader, batch_size=None, num_workers=workers, collate_fn=keep,
                                         prefetch_factor=4 if workers else None)
    decoded_items = iter(loader)  # fork the workers before any model runs in this process
    for s in vocab.streams:
        vocab.tokenizer(s.name).to(device)
    encoder = ItemEncoder(vocab, batch_size)
    n = settings.shard_items
    desc = "pretokenize" if settings.world_size == 1 else f"pretokenize {rank_name(state.rank)}"
    chunk: list = []
    chunk_failures = 0
    with tqdm(total=len(share), initial=state.done, desc=desc, unit="item", disable=None if progress else True) as bar:
        bar.set_postfix(failed=len(state.failures))
        for decoded in decoded_items:
            job = encoder.add(decoded)
            chunk.append(job)
            chunk_failures += job.error is not None
            bar.update(1)
            end = min((decoded.position // n + 1) * n, len(share))
            if decoded.position + 1 == end:
                _commit(out, state, vocab, settings, encoder, chunk, decoded.position // n, end)
                chunk, chunk_failures = [], 0
            if job.error is not None or not chunk:
                bar.set_postfix(failed=len(state.failures) + chunk_failures)


def _commit(out: Path, state: RankState, vocab: MediaVocab, settings: Settings, encoder, chunk: list, index: int, end: int) -> None:
    """Finish the chunk's items, write them as shard `index`, then record it in the state."""
    encoder.flush()
    ids, modality, item_ids = [], [], []
    for job in chunk:
        if job.error is None:
            try:
                seq = vocab.build(_build_parts(vocab, job.decoded, job.codes), settings.bos, settings.eos)
            except MmtokError as err:
                job.error = str(err)
            else:
                ids.append(seq.input_ids.numpy())
                modality.append(seq.modality.numpy().astype(np.uint8))
                item_ids.append(job.decoded.item.id)
        if job.error is not None:
            state.failures.append({"id": job.decoded.item.id, "reason": job.error})
    if item_ids:
        state.shards.append(shards.write_shard(out, shards.shard_name(state.rank, index), ids, modality, item_ids))
    state.done = end
    state.save(out)


def _build_parts(vocab: MediaVocab, decoded: DecodedItem, codes: dict[int, torch.Tensor]) -> list:
    parts = []
    for slot, part in enumerate(decoded.parts):
        if isinstance(part, DecodedMedia):
            ref = part.ref
            tokens = TokenFile.from_codes(vocab.tokenizer(ref.stream, ref.modality), codes[slot], {}, ref.source)
            part = MediaPart.of(ref.modality)(tokens, stream=ref.stream)
        parts.append(part)
    return parts
