"""Small file-system helpers shared by every command: atomic writes, input expansion,
output naming and all-or-nothing output (`Transaction`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from mmtok.errors import MmtokError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` then rename `tmp` onto `path`, so readers never see half a file.

    The temp file keeps `path`'s suffix because some writers (PIL, soundfile) pick the
    format from it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        give_usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path, problem: str, fix: str) -> Any:
    """Parse the JSON file `path`; unreadable or invalid -> MmtokError "`path`: `problem`
    (reason); `fix`"."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MmtokError(f"{path}: {problem} ({err}); {fix}") from None


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    text = json.dumps(data, indent=1)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def replace_directory(directory: Path, fill: Callable[[Path], None], merge: bool = True) -> Path:
    """Write a folder atomically: `fill(tmp)` builds it in a temp folder next to `directory`,
    which is then renamed into place. If `directory` exists, the files `fill` wrote are moved
    over it one by one, keeping files it did not write (e.g. a recipe next to a tokenizer), or
    with `merge=False` the old folder is swapped out whole (nothing of it is kept)."""
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        fill(tmp)
        give_usual_mode(tmp)
        if directory.exists() and merge:
            for item in tmp.iterdir():
                os.replace(item, directory / item.name)
            shutil.rmtree(tmp)
        elif directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / directory.name)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def expand_inputs(inputs: Iterable[str | Path], suffixes: set[str], what: str) -> list[Path]:
    """Files named directly, plus files with one of `suffixes` found (recursively) in folders.

    Raises MmtokError for a missing path or a folder with no matching files.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not files:
                raise MmtokError(f"{item}: folder has no {what} files ({', '.join(sorted(suffixes))}); point at a folder with {what}s")
            found += files
        elif item.is_file():
            found.append(item)
        else:
            raise MmtokError(f"{item}: no such file or folder; check the path")
    if not found:
        raise MmtokError(f"no {what} files given; pass files or folders")
    return found


def give_usual_mode(path: Path) -> None:
    """chmod `path` (and a folder's contents) to what the umask gives new files.

    mkstemp / mkdtemp / safetensors create 0600 files and 0700 folders; a saved tokenizer
    or token file should be as readable as anything else the user writes.
    """
    mask = os.umask(0)
    os.umask(mask)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)


def output_paths(inputs: list[Path], roots: dict[Path, Path], out: Path, suffix: str, single_file_ok: bool) -> list[Path]:
    """Where each input's result goes: `out` itself for one input with a matching suffix,
    otherwise `out/<path relative to the folder it was found in>` with `suffix`."""
    if len(inputs) == 1 and single_file_ok and out.suffix and not out.is_dir():
        return [out]
    paths = []
    for item in inputs:
        root = roots.get(item)
        rel = item.relative_to(root) if root else Path(item.name)
        paths.append(out / rel.with_suffix(suffix))
    if len(set(paths)) != len(paths):
        raise MmtokError(f"{out}: two inputs would write the same output name; encode them into separate folders")
    return paths


def collect(inputs: Iterable[str | Path], suffixes: set[str], what: str) -> tuple[list[Path], dict[Path, Path]]:
    """Expand files and folders; remember which folder each file came from (for output names)."""
    files: list[Path] = []
    roots: dict[Path, Path] = {}
    for item in map(Path, inputs):
        found = expand_inputs([item], suffixes, what)
        if item.is_dir():
            roots.update({f: item for f in found})
        files += found
    return files, roots


class Transaction:
    """Tracks outputs written by one command; on failure, removes them (no partial output)."""

    def __init__(self) -> None:
        self.written: list[Path] = []

    def __enter__(self) -> Transaction:
        return self

    def add(self, path: Path) -> None:
        self.written.append(path)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for path in self.written:
                path.unlink(missing_ok=True)


class Progress(Protocol):
    """What the file commands report progress to (a tqdm bar fits)."""

    total: float | None

    def update(self, n: float) -> object: ...


def start_progress(progress: Progress | None, total: float) -> Callable[[float], object] | None:
    """Set `progress.total` and return its `update` (None without a progress bar)."""
    if progress is None:
        return None
    progress.total = total
    return progress.update
