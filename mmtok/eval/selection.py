"""Which files an evaluation runs on: a recipe's held-out files, a spread over sources."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmtok.errors import MmtokError
from mmtok.files import expand_inputs
from mmtok.train.recipe import load_recipe


def heldout_files(files: Iterable[Path], recipe: Path, modality: str) -> list[Path]:
    """The `files` whose name matches an `exclude` glob of the recipe (the rule training used
    to leave them out); MmtokError if the recipe has no globs or none match."""
    exclude = load_recipe(recipe, modality).train.exclude
    if not exclude:
        raise MmtokError(f"{recipe}: the recipe has no `exclude` globs, so there is no held-out set to evaluate")
    files = list(files)
    kept = [f for f in files if any(fnmatch.fnmatch(f.name, g) for g in exclude)]
    if not kept:
        raise MmtokError(f"{recipe}: none of the {len(files)} files matches the recipe's exclude globs {list(exclude)}; "
                         "check --data and --heldout")
    return kept


def heldout_in(folder: Path, recipe: Path, modality: str, suffixes: set[str]) -> list[Path]:
    """`heldout_files` of the media files under `folder`, sorted."""
    return heldout_files(expand_inputs([folder], suffixes, modality), recipe, modality)


def spread(items: list, n: int | None) -> list:
    """`n` items evenly spaced through the sorted list (all sources, not just the first)."""
    if n is None or n >= len(items):
        return items
    return [items[round(i * (len(items) - 1) / max(n - 1, 1))] for i in range(n)]


def evaluation_files(data: Iterable[Path], media: Any, heldout: Path | None, limit: int | None) -> tuple[list[Path], tuple[str, ...]]:
    """(files to evaluate, files trained baselines learn from by default) for `mmtok eval`:
    the `media` (a `Modality`) files under `data`, at most `limit`, spread over the sorted list.

    With `heldout` (a recipe) the evaluated files are those its `exclude` globs held out,
    and trained baselines learn from what the media type says (image k-means: the rest, the
    recipe's training files, never the files they are scored on); without it, () (the
    evaluator then fits on the evaluated files and says that this favours the baseline)."""
    files = sorted(expand_inputs(data, set(media.suffixes), media.name))
    if heldout is None:
        return spread(files, limit), ()
    held = heldout_files(files, heldout, media.name)
    return spread(held, limit), media.baseline_training_files(files, held)
