"""Click types for numeric options: ranges and finiteness are checked where the option is
parsed, so `--batch-size 0`, `--kbps nan` or `--fps 1e9` are one `error:` line naming the
option (see `mmtok.cli.main.run`) instead of a traceback, a silent no-op or a run that never
ends."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.ParamType):
    """A finite float in `[low, high]` (`(low, high]` with `low_open`); NaN and inf refused
    (click.FloatRange lets NaN through: every comparison with it is false)."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False):
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float) and math.isfinite(value) and self._inside(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if not self._inside(number):
            self.fail(f"{value} is not in {self._describe()}", param, ctx)
        return number

    def _inside(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or x <= self.high

    def _describe(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}]"


POSITIVE_FLOAT = FiniteFloat(0, None, low_open=True)
# Same-size items coded together: beyond a few thousand a batch only risks memory.
BATCH_SIZE = click.IntRange(1, 4096)
# Frame rates (mmtok.media.video.MAX_FPS) and sizes (the video reader's frame limit).
FPS = FiniteFloat(0, 1000.0, low_open=True)
SHORT_SIDE = click.IntRange(1, 8192)
