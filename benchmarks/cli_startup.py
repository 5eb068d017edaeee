"""How long the `mmtok` command takes to answer `--help` and an argument error, on this tree
and on an earlier commit, side by side in one run (medians of `--repeats` fresh processes).

    python benchmarks/cli_startup.py --before f1e5b52

The earlier commit is checked out into a temporary git worktree and put first on PYTHONPATH,
so both run with the same interpreter and packages; only mmtok's own import graph differs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"mmtok --help": ["--help"], "mmtok encode (missing arguments)": ["encode"]}


def wall_seconds(tree: Path, argv: list[str], repeats: int) -> float:
    """Median wall time of `python -m mmtok.cli.main ARGV` run in `tree` (`-m` puts the working
    folder first on the path, before the editable install)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mmtok.cli.main", *argv], cwd=tree, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git commit to compare with (e.g. the one before a change)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
        try:
            print(f"| command | {args.before} (s) | this tree (s) | ratio |\n| --- | ---: | ---: | ---: |")
            for label, argv in COMMANDS.items():
                old, new = wall_seconds(before, argv, args.repeats), wall_seconds(ROOT, argv, args.repeats)
                print(f"| `{label}` | {old:.2f} | {new:.2f} | {old / new:.1f}x |")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
