"""Pieces every benchmark script shares: measuring an operation's own peak memory (held-out
selection lives in `mmtok.eval.selection`). Scripts run as `python benchmarks/X.py`, so
this module is importable as `bench_common`. It imports no torch at module level (the speed
drivers stay standard-library only)."""

from __future__ import annotations

import gc
import re
import resource
import time
from collections.abc import Callable
from pathlib import Path


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak is the operation's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_peak(run: Callable[[], object]) -> dict:
    """Run `run()` under `torch.inference_mode()` and report its wall time and peak memory
    (MiB): `baseline_mib` (RSS before), `load_peak_mib` (high-water mark before),
    `peak_mib`, `peak_above_baseline_mib`, and `exact` (False when the high-water mark could
    not be reset and never rose above loading's: then the figure is only an upper bound)."""
    import torch

    gc.collect()
    load_peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    baseline = _status_kib("VmRSS") or load_peak
    exact = _reset_peak()
    start = time.perf_counter()
    with torch.inference_mode():
        run()
    wall = time.perf_counter() - start
    peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall_s": wall, "baseline_mib": baseline / 1024, "load_peak_mib": load_peak / 1024, "peak_mib": peak / 1024,
            "peak_above_baseline_mib": (peak - baseline) / 1024, "exact": exact or peak > load_peak}
