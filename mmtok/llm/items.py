"""The items of a dataset to pre-tokenize: a folder of media files or a JSONL manifest.

A folder: every media file found recursively is one item (`Item.parts == (MediaRef,)`),
its id the path relative to the folder (POSIX), items sorted by id. The modality comes from
the suffix (`IMAGE_SUFFIXES`, `AUDIO_SUFFIXES`, `VIDEO_SUFFIXES`); a suffix of two
modalities (`.gif`) is an image when the vocab has an image stream, else a video. Files of a
modality the vocab has no stream for are left out (and counted), as are hidden files and
folders (names starting with "."), e.g. half-copied temp files.

A JSONL manifest: one object per line, text and media interleaved in order,

    {"id": "ex1", "parts": ["A cat:", {"image": "imgs/cat.png"}, "says", {"audio": "a.wav"},
                            {"video": "v.mp4", "fps": 8, "short_side": 128}, {"text": "."}]}

media paths relative to the manifest's folder (absolute ones kept), an optional "stream" per
media part to pick a vocab stream by name, `id` optional (default: the line number, from 1).
Blank lines are skipped. A line that is not valid JSON (or nested deeper than
`MAX_JSON_DEPTH`), has an unknown part type, a
duplicate id or names a stream the vocab lacks becomes an `Item` with `error` set: the
pipeline lists it as a failure and goes on. Missing media files are found later, when the
item is read, and are failures of that item too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mmtok.errors import MmtokError
from mmtok.files import MAX_JSON_DEPTH, parse_json, require_regular_file
from mmtok.modalities import MODALITIES

MANIFEST_SUFFIXES = {".jsonl"}
# Reading options a part of a manifest may set, where its media type takes them (`Modality.encode_options`).
ITEM_OPTIONS = frozenset({"fps", "short_side"})


@dataclass(frozen=True)
class MediaRef:
    """One media file of an item. `source` is the path as the dataset wrote it (what the
    item hash records, so a moved dataset can be resumed); `path` is where to read it."""

    modality: str            # "image" | "audio" | "video"
    source: str
    path: str
    stream: str              # name of the vocab stream that codes it
    fps: float | None = None         # video: resample to this rate (None: the file's)
    short_side: int | None = None    # video: resize the shorter side (None: as stored)


Part = str | MediaRef


@dataclass(frozen=True)
class Item:
    """One training sequence to make: text and media parts in order, or why it cannot be."""

    id: str
    parts: tuple[Part, ...] = ()
    error: str | None = None


@dataclass
class Dataset:
    """Every item of INPUT, in a fixed order; `skipped` counts folder files left out, by modality."""

    kind: str                # "folder" | "manifest"
    path: Path
    items: list[Item]
    skipped: dict[str, int]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the items (ids, parts as written, errors): a resumed run checks it, so an
        INPUT that changed since the output was started is refused instead of mixed in."""
        digest = hashlib.sha256()
        for item in self.items:
            parts = [p if isinstance(p, str) else {k: v for k, v in asdict(p).items() if k != "path"} for p in item.parts]
            digest.update(json.dumps([item.id, parts, item.error], sort_keys=True).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def load_dataset(path: str | Path, vocab, fps: float | None = None, short_side: int | None = None) -> Dataset:
    """Items of a folder or a `.jsonl` manifest (see module docstring); `fps` / `short_side`
    are the defaults for videos. MmtokError if INPUT itself is unusable."""
    path = Path(path)
    if path.is_dir():
        return _folder(path, vocab, fps, short_side)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(path, vocab, fps, short_side)
    if path.is_file():
        raise MmtokError(f"{path}: INPUT must be a folder of media files or a .jsonl manifest")
    if path.exists():
        require_regular_file(path)  # a FIFO or device: refused, never read
    raise MmtokError(f"{path}: no such folder or manifest; check INPUT")


def _modality_of(suffix: str, streams: dict[str, str]) -> str | None:
    """The modality a file suffix stands for, given the modalities the vocab has streams for."""
    kinds = [m.name for m in MODALITIES.values() if suffix in m.suffixes]  # ".gif": image, then video
    usable = [m for m in kinds if m in streams]
    return (usable or kinds or [None])[0]


def _folder(root: Path, vocab, fps: float | None, short_side: int | None) -> Dataset:
    modalities = {m for s in vocab.streams for m in s.media_types}
    # One stream per modality (a folder cannot say which of two image streams to use); an
    # Emu3 stream codes the images when no image tokenizer does (see `MediaVocab.stream_for`).
    streams = {m: vocab.stream_for(m).name for m in sorted(modalities)}
    items, skipped = [], {}
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if not file.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        modality = _modality_of(file.suffix.lower(), streams)
        if modality is None:
            continue
        if modality not in streams:
            skipped[modality] = skipped.get(modality, 0) + 1
            continue
        takes = MODALITIES[modality].encode_options
        ref = MediaRef(modality, rel.as_posix(), str(file), streams[modality], fps if "fps" in takes else None,
                       short_side if "short_side" in takes else None)
        items.append(Item(rel.as_posix(), (ref,)))
    if not items:
        found = f" (only {', '.join(f'{n} {m}' for m, n in skipped.items())} files, which this vocab has no stream for)" if skipped else ""
        raise MmtokError(f"{root}: no {'/'.join(sorted(modalities))} files found{found}; point INPUT at a folder of media or a .jsonl manifest")
    return Dataset("folder", root, sorted(items, key=lambda i: i.id), skipped)


def _manifest(path: Path, vocab, fps: float | None, short_side: int | None) -> Dataset:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise MmtokError(f"{path}: cannot read the manifest ({err}); it must be UTF-8 JSONL") from None
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = _parse_line(line, number, path.parent, vocab, fps, short_side)
        if item.id in first_line:
            item = Item(item.id, (), f"line {number}: duplicate id '{item.id}' (first on line {first_line[item.id]}); ids must be unique")
        else:
            first_line[item.id] = number
        items.append(item)
    if not items:
        raise MmtokError(f"{path}: the manifest has no items; write one JSON object per line")
    return Dataset("manifest", path, items, {})


def _parse_line(line: str, number: int, base: Path, vocab, fps: float | None, short_side: int | None) -> Item:
    default_id = str(number)
    try:
        data = parse_json(line)
    except json.JSONDecodeError as err:
        return Item(default_id, (), f"line {number}: not valid JSON ({err.msg} at column {err.colno})")
    except ValueError:  # nesting bounded: a deep line fails alone instead of the whole run
        return Item(default_id, (), f"line {number}: JSON nested more than {MAX_JSON_DEPTH} levels deep; flatten the line")
    if not isinstance(data, dict):
        return Item(default_id, (), f"line {number}: expected a JSON object with \"parts\", got {type(data).__name__}")
    raw_id = data.get("id", default_id)
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or str(raw_id) == "":
        return Item(default_id, (), f"line {number}: \"id\" must be a non-empty string or an integer")
    item_id = str(raw_id)
    unknown = sorted(set(data) - {"id", "parts"})
    if unknown:
        return Item(item_id, (), f"line {number}: unknown keys {unknown}; an item has \"id\" and \"parts\"")
    parts = data.get("parts")
    if not isinstance(parts, list) or not parts:
        return Item(item_id, (), f"line {number}: \"parts\" must be a non-empty list of text and media parts")
    try:
        return Item(item_id, tuple(_parse_part(p, i, base, vocab, fps, short_side) for i, p in enumerate(parts)))
    except MmtokError as err:
        return Item(item_id, (), f"line {number}: {err}")


def _parse_part(part: Any, index: int, base: Path, vocab, fps: float | None, short_side: int | None) -> Part:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise MmtokError(f"part {index} is {type(part).__name__}; parts are strings or objects like {{\"image\": \"a.png\"}}")
    if set(part) == {"text"} and isinstance(part["text"], str):
        return part["text"]
    kinds = [k for k in MODALITIES if k in part]
    if len(kinds) != 1:
        raise MmtokError(f"part {index} {json.dumps(part)[:80]}: unknown part type; use \"text\", \"image\", \"audio\" or \"video\"")
    modality = kinds[0]
    takes = MODALITIES[modality].encode_options & ITEM_OPTIONS
    allowed = {modality, "stream"} | takes
    extra = sorted(set(part) - allowed)
    if extra:
        raise MmtokError(f"part {index}: unknown keys {extra} for {modality}; allowed are {sorted(allowed)}")
    source = part[modality]
    if not isinstance(source, str) or not source:
        raise MmtokError(f"part {index}: \"{modality}\" must be a file path")
    stream_name = part.get("stream")
    if stream_name is not None and not isinstance(stream_name, str):
        raise MmtokError(f"part {index}: \"stream\" must be a stream name")
    stream = vocab.stream_for(stream_name or modality)
    if modality not in stream.media_types:
        raise MmtokError(f"part {index}: stream '{stream.name}' holds {' and '.join(stream.media_types)}, not {modality}")
    part_fps, part_side = part.get("fps", fps), part.get("short_side", short_side)
    if part_fps is not None and (isinstance(part_fps, bool) or not isinstance(part_fps, (int, float)) or part_fps <= 0):
        raise MmtokError(f"part {index}: \"fps\" must be a positive number")
    if part_side is not None and (isinstance(part_side, bool) or not isinstance(part_side, int) or part_side < 1):
        raise MmtokError(f"part {index}: \"short_side\" must be a positive integer")
    return MediaRef(
        modality, source, str(base / source), stream.name,
        float(part_fps) if "fps" in takes and part_fps is not None else None, part_side if "short_side" in takes else None,
    )
