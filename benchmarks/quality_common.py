"""What the quality benchmarks (`image_quality.py`, `audio_quality.py`, `video_quality.py`)
share. Each runs `mmtok eval` in-process (`mmtok.cli.main.run`), reads the results.json it
wrote and prints a comparison built from it; nothing here measures anything, every number
comes from `mmtok eval`. Scripts run as `python benchmarks/X.py`, so this module is importable
as `quality_common`.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmtok.cli.evaluate import split_named

RESULTS = "results.json"
COMPARISON = "comparison.md"   # the printed tables, written next to mmtok eval's report


# -- command line ---------------------------------------------------------------------------------
def eval_parser(description: str, modality: str, data_default: Path | None, out_default: Path | None,
                limit_aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The options every quality benchmark passes on to `mmtok eval`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--tokenizer", "-t", action="append", default=[], metavar="PATH",
                   help=f"{modality} tokenizer to measure (repeatable: PATH, hf: spec or NAME=PATH, as `mmtok eval -t`)")
    p.add_argument("--data", action="append", type=Path, default=None, metavar="PATH",
                   help=f"{modality} files or folders (repeatable)" + (f"; default {data_default}" if data_default else ""))
    p.add_argument("--heldout", "--recipe", dest="heldout", type=Path, default=None, metavar="RECIPE",
                   help="recipe.yaml: measure only the files its train.exclude globs held out of training "
                        "(default: the first tokenizer folder's recipe.yaml, when it has one)")
    p.add_argument("--all-files", action="store_true", help="measure every file of --data, held out or not")
    p.add_argument("--limit", *limit_aliases, type=int, default=None, metavar="N",
                   help="measure at most N files, spread over the sorted list (mmtok eval --limit)")
    p.add_argument("--examples", type=int, default=4, metavar="N", help="files shown in the report's pictures (mmtok eval --examples)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch.set_num_threads before the run (default: torch's choice)")
    p.add_argument("--out", type=Path, default=out_default,
                   help="mmtok eval's report folder (replaced whole): report.html, report.md, results.json, figures/, "
                        f"plus this script's {COMPARISON}" + (f"; default {out_default}" if out_default else " (required)"))
    p.add_argument("--from-report", type=Path, default=None, metavar="DIR",
                   help="print the comparison of an existing `mmtok eval` report folder (its results.json) instead of running one")
    return p


def drop_options(p: argparse.ArgumentParser, dropped: dict[str, str]) -> None:
    """Options of the earlier version of the script: accepted by the parser only to say why they are gone."""
    for option in dropped:
        p.add_argument(option, nargs="*", default=None, help=argparse.SUPPRESS)


def check_dropped(p: argparse.ArgumentParser, args: argparse.Namespace, dropped: dict[str, str]) -> None:
    for option, why in dropped.items():
        if getattr(args, option.lstrip("-").replace("-", "_")) is not None:
            p.error(f"{option} is gone: {why}")


def tokenizer_path(spec: str) -> Path | None:
    """The folder of `-t PATH` / `-t NAME=PATH` (None for an hf: spec), as `mmtok eval` reads it."""
    path = split_named(spec)[1]
    return None if path.startswith("hf:") else Path(path)


def heldout_recipe(args: argparse.Namespace) -> Path | None:
    """--heldout, else the first tokenizer's recipe.yaml if it has one; None with --all-files."""
    if args.all_files:
        return None
    if args.heldout:
        return args.heldout
    folder = tokenizer_path(args.tokenizer[0])
    recipe = folder / "recipe.yaml" if folder else None
    return recipe if recipe and recipe.is_file() else None


def eval_argv(args: argparse.Namespace, data: Sequence[Path], extra: Sequence[str] = ()) -> list[str]:
    """`mmtok eval` arguments for these benchmark options."""
    argv = ["eval"]
    for spec in args.tokenizer:
        argv += ["-t", spec]
    for path in data:
        argv += ["--data", str(path)]
    argv += ["--out", str(args.out)]
    recipe = heldout_recipe(args)
    if recipe:
        argv += ["--heldout", str(recipe)]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    return argv + ["--examples", str(args.examples), "--seed", str(args.seed), *extra]


# -- running --------------------------------------------------------------------------------------
def run_eval(argv: list[str], threads: int | None) -> int:
    """`mmtok eval` in this process, as the `mmtok` command runs it; its exit status. sys.argv
    is set to the equivalent command meanwhile, so the report records it."""
    from mmtok.cli.main import run

    if threads:
        import torch

        torch.set_num_threads(threads)
    print(f"running: mmtok {shlex.join(argv)}", flush=True)
    saved, sys.argv = sys.argv, ["mmtok", *argv]
    try:
        status = run(argv)
    finally:
        sys.argv = saved
    return status


def load_results(folder: Path, modality: str) -> dict[str, Any]:
    """`results.json[modality]` of an `mmtok eval` report folder."""
    path = folder / RESULTS
    if not path.is_file():
        sys.exit(f"error: {path}: no such file; is {folder} an `mmtok eval` report folder?")
    results = json.loads(path.read_text())
    if modality not in results:
        sys.exit(f"error: {path}: holds {', '.join(results) or 'no'} results, not {modality}")
    return results[modality]


def evaluate(args: argparse.Namespace, modality: str, data: Sequence[Path], extra: Sequence[str] = ()) -> tuple[dict, Path]:
    """Run `mmtok eval` (or, with --from-report, reuse a report) and return (its results for
    `modality`, the report folder)."""
    if args.from_report:
        return load_results(args.from_report, modality), args.from_report
    if not args.tokenizer:
        sys.exit("error: --tokenizer is required (or --from-report DIR)")
    if args.out is None:
        sys.exit("error: --out is required (or --from-report DIR)")
    recipe = heldout_recipe(args)
    if recipe is None and not args.all_files:
        print("no --heldout recipe (and none in the tokenizer folder): measuring every file of --data")
    status = run_eval(eval_argv(args, data, extra), args.threads)
    if status:
        if recipe is not None:
            print(f"(the files were chosen by {recipe}'s exclude globs; --all-files measures every file of --data)", file=sys.stderr)
        sys.exit(status)
    return load_results(args.out, modality), args.out


def write_comparison(folder: Path, title: str, text: str) -> Path:
    """The printed tables as Markdown next to the report, with the command that made them."""
    from mmtok.files import atomic_write

    path = folder / COMPARISON
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    content = f"# {title}\n\n`{command}`\n\n{text}\n"
    atomic_write(path, lambda tmp: tmp.write_text(content))
    return path


def show(args: argparse.Namespace, folder: Path, title: str, text: str) -> int:
    """Print the comparison `text` and (unless it was read from an existing report) write it
    as comparison.md next to the report; the script's exit status."""
    print()
    print(text)
    if not args.from_report:
        path = write_comparison(folder, title, text)
        print(f"\nwrote {path}; the full report: {folder / 'report.html'}")
    return 0


# -- numbers --------------------------------------------------------------------------------------
def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def num(value: Any, spec: str) -> str:
    """`value` formatted, or n/a (None / NaN: not measured)."""
    return format(value, spec) if finite(value) else "n/a"


def ratio(a: Any, b: Any) -> float | None:
    return a / b if finite(a) and finite(b) and b else None


@dataclass
class Paired:
    """Per-file differences `a - b` of one metric between two methods (files where both have it)."""

    median: float | None
    mean: float | None
    better: int          # files where a is better
    files: int

    def cell(self, spec: str) -> str:
        """'+1.23 (3/4)': median difference, and on how many files a is better."""
        return "n/a" if self.median is None else f"{self.median:{spec}} ({self.better}/{self.files})"


def paired(pairs: Iterable[tuple[Any, Any]], higher_is_better: bool = True) -> Paired:
    diffs = [a - b for a, b in pairs if finite(a) and finite(b)]
    if not diffs:
        return Paired(None, None, 0, 0)
    better = sum(d > 0 if higher_is_better else d < 0 for d in diffs)
    return Paired(statistics.median(diffs), statistics.fmean(diffs), better, len(diffs))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table, the first column left-aligned and the others right."""
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
