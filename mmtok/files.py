"""Small file-system helpers shared by every command: atomic writes, input expansion,
output naming and all-or-nothing output (`Transaction`).

Every output goes through `atomic_write` / `replace_directory`, and every output folder is
made by `make_dirs`: they are the one place where an output path that is a file (or a
folder where a file is wanted), a read-only location or a full disk becomes one `MmtokError`
naming the path, with the temp files removed. `make_dirs` remembers the folders it created,
so a failed run removes them again (`remove_created_dirs`, called by `Transaction` and the
CLI): no empty output folders are left behind.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from mmtok.errors import MmtokError


# Folders made by `make_dirs` in this process, in creation order (see `remove_created_dirs`).
_created_dirs: list[Path] = []

# OS error numbers of a bad output location -> what to tell the user.
_WRITE_PROBLEMS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write elsewhere",
    errno.EFBIG: "the file grew beyond what this file system (or ulimit -f) allows; write elsewhere",
    errno.EROFS: "the location is read-only; choose a writable output path",
    errno.EACCES: "permission denied; choose a writable output path",
    errno.EPERM: "operation not permitted; choose a writable output path",
    errno.EISDIR: "is a folder where a file is needed; choose a file name or remove the folder",
    errno.ENOTDIR: "a part of the path is a file where a folder is needed; choose another output path",
    errno.EEXIST: "already exists as a file where a folder is needed; choose another output path",
    errno.ENAMETOOLONG: "the file name is too long; choose a shorter output path",
}
# Libraries that do their own I/O (safetensors in Rust, libsndfile, PyAV) report these errors
# in their own exception types; their messages carry the OS's wording.
_WRITE_WORDING = {
    "no space left": errno.ENOSPC, "quota exceeded": errno.EDQUOT, "file too large": errno.EFBIG,
    "read-only file system": errno.EROFS, "permission denied": errno.EACCES, "is a directory": errno.EISDIR,
    "not a directory": errno.ENOTDIR,
}


def write_problem(path: Path, err: BaseException) -> MmtokError | None:
    """The one-line error for a failed write to `path`, or None when `err` is not about the
    output location (a bug, or a user error raised as MmtokError already)."""
    code = getattr(err, "errno", None) if isinstance(err, OSError) else None
    if code not in _WRITE_PROBLEMS:
        text = str(err).lower()
        code = next((c for words, c in _WRITE_WORDING.items() if words in text), None)
        if code is None and "system error" in text:  # libsndfile's whole message for a failed write()
            code = _probe_write(Path(path).parent)
    if code is None:
        return None
    return MmtokError(f"{path}: cannot write: {_WRITE_PROBLEMS[code]}")


def _probe_write(folder: Path, size: int = 1 << 16) -> int | None:
    """The errno the OS gives for writing `size` bytes in `folder` now (None if it works):
    recovers the reason a library only reported as a "system error"."""
    try:
        with tempfile.TemporaryFile(dir=folder) as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        return err.errno if err.errno in _WRITE_PROBLEMS else None
    return None


def make_dirs(directory: Path) -> Path:
    """`mkdir -p directory`, remembering each folder it creates (removed again by
    `remove_created_dirs` when the run fails); a path that is a file, or a location that
    cannot be written, is one MmtokError naming it."""
    directory = Path(directory)
    missing = []
    level = directory
    while not level.exists() and not level.is_symlink() and level != level.parent:
        missing.append(level)
        level = level.parent
    if not level.is_dir():
        raise MmtokError(f"{level}: is a file where a folder is needed; choose another output path")
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except OSError as err:
            raise (write_problem(folder, err) or err) from None
        _created_dirs.append(folder)
    return directory


def remove_created_dirs(since: int = 0) -> None:
    """Remove the folders `make_dirs` created (after the first `since` of them) that are
    still empty, newest first: after a failed run, no empty output folders are left behind."""
    for folder in reversed(_created_dirs[since:]):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (holds other output or earlier results) or gone: keep it
    del _created_dirs[since:]


def forget_created_dirs() -> None:
    """The run succeeded: the folders it created are output, not litter."""
    _created_dirs.clear()


def check_output_file(path: Path, probed: set[Path] | None = None) -> None:
    """Cheap pre-flight for a file to be written at `path`, before any work is done: it must
    not be a folder, no parent may be a file, and a file must be creatable in the nearest
    existing folder (`probed`: folders already found writable, skipped)."""
    path = Path(path)
    if path.is_dir():
        raise MmtokError(f"{path}: is a folder where a file is needed; choose a file name or remove the folder")
    level = path.parent
    while not level.exists() and level != level.parent:
        level = level.parent
    if not level.is_dir():
        raise MmtokError(f"{level}: is a file where a folder is needed; choose another output path")
    if probed is not None and level in probed:
        return
    try:  # a real probe: os.access says yes to root on a read-only mount
        with tempfile.TemporaryFile(dir=level):
            pass
        if probed is not None:
            probed.add(level)
    except OSError as err:
        raise (write_problem(path, err) or MmtokError(f"{path}: cannot write ({err.strerror}); choose another output path")) from None


def check_output_dir(directory: Path) -> None:
    """Cheap pre-flight for an output folder: not a file, no parent a file, writable."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise MmtokError(f"{directory}: is a file where a folder is needed; choose another output path")
    check_output_file(directory / "x")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` then rename `tmp` onto `path`, so readers never see half a file.

    The temp file keeps `path`'s suffix because some writers (PIL, soundfile) pick the
    format from it. An output path that cannot be written (a folder, a read-only place, a
    full disk) is one MmtokError naming `path`; the temp file is removed whatever happens.
    """
    path = Path(path)
    make_dirs(path.parent)
    if path.is_dir():
        raise MmtokError(f"{path}: is a folder where a file is needed; choose a file name or remove the folder")
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        give_usual_mode(tmp)
        os.replace(tmp, path)
    except MmtokError:
        _remove(tmp)
        raise
    except Exception as err:
        _remove(tmp)
        problem = write_problem(path, err)
        if problem is None:
            raise
        raise problem from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def require_regular_file(path: Path) -> None:
    """Refuse a FIFO, socket or device (reading one can block forever or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MmtokError(f"{path}: no such file; check the path") from None
    except OSError as err:
        raise MmtokError(f"{path}: cannot read ({err.strerror}); check the path") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise MmtokError(f"{path}: not a regular file (a FIFO, socket or device, which could block or never end); "
                         "pass a file saved on disk")


def read_json(path: Path, problem: str, fix: str) -> Any:
    """Parse the JSON file `path`; unreadable or invalid -> MmtokError "`path`: `problem`
    (reason); `fix`"."""
    require_regular_file(Path(path))
    try:
        return parse_json(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
        raise MmtokError(f"{path}: {problem} ({err}); {fix}") from None


MAX_JSON_DEPTH = 64


def sniff_json(path: Path) -> Any:
    """The parsed JSON of `path`, or None when it is not a regular file, unreadable, invalid
    or nested too deep: for peeking at a config to decide which loader applies (the loader
    then reports problems properly)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        return parse_json(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def parse_json(text: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` with nesting bounded to `max_depth` (ValueError beyond it): deeply nested
    input would otherwise exhaust Python's recursion limit (RecursionError) and abort a whole
    run instead of failing one file or line."""
    if text.count("[") + text.count("{") > max_depth and _json_depth(text) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return json.loads(text)


def _json_depth(text: str) -> int:
    """Deepest nesting of [ and { outside JSON strings (one pass, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    text = json.dumps(data, indent=1, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def replace_directory(directory: Path, fill: Callable[[Path], None], merge: bool = True) -> Path:
    """Write a folder atomically: `fill(tmp)` builds it in a temp folder next to `directory`,
    which is then renamed into place. If `directory` exists, the files `fill` wrote are moved
    over it one by one, keeping files it did not write (e.g. a recipe next to a tokenizer), or
    with `merge=False` the old folder is swapped out whole (nothing of it is kept)."""
    directory = directory.resolve()
    if directory.exists() and not directory.is_dir():
        raise MmtokError(f"{directory}: is a file where a folder is needed; choose another output path")
    make_dirs(directory.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as err:
        raise (write_problem(directory, err) or err) from None
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
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        problem = None if isinstance(err, MmtokError) else write_problem(directory, err)
        if problem is None:
            raise
        raise problem from None
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
            require_regular_file(item)
            found.append(item)
        elif item.exists():
            require_regular_file(item)
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
        check_output_file(out)
        return [out]
    paths = []
    for item in inputs:
        root = roots.get(item)
        rel = item.relative_to(root) if root else Path(item.name)
        paths.append(out / rel.with_suffix(suffix))
    if len(set(paths)) != len(paths):
        raise MmtokError(f"{out}: two inputs would write the same output name; encode them into separate folders")
    check_output_dir(out)
    probed: set[Path] = set()  # (one probe per folder, not per file)
    for path in paths:
        check_output_file(path, probed)
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
        self.first_dir = len(_created_dirs)  # folders made before this transaction are not its own

    def __enter__(self) -> Transaction:
        return self

    def add(self, path: Path) -> None:
        self.written.append(path)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            for path in self.written:
                path.unlink(missing_ok=True)
            remove_created_dirs(self.first_dir)
        else:  # its folders hold its output now: nothing to remember
            del _created_dirs[self.first_dir :]


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
