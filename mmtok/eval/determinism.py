"""How reproducible a tokenizer's codes are: run after run, and alone vs inside a batch.

Convolution backends may pick different kernels (and so different float rounding) for
different batch sizes; a feature that sits on a quantizer's decision boundary can then flip
to the neighbouring code. `code_agreement` measures how often that happens:

    stats = code_agreement(lambda x: tok.encode(x), items)   # items [N,...], same shape
    stats["repeat"]          # fraction of positions identical when the batch is encoded twice
    stats["alone_vs_batch"]  # fraction identical between each item encoded alone and in the batch
"""

from __future__ import annotations

from collections.abc import Callable

import torch

BATCH = 32


@torch.no_grad()
def code_agreement(
    encode: Callable[[torch.Tensor], torch.Tensor], items: torch.Tensor, batch: int = BATCH, alone: int | None = None,
) -> dict[str, float | int]:
    """Encode a batch of `batch` inputs (the `N` items of `items [N,...]` repeated in turn)
    twice, and each of the first `alone` items (default all N, at most `batch`) on its own.

    `encode: [B,...] -> codes [B,...]`. Returns `repeat` and `alone_vs_batch` (fractions of
    code positions that agree, 0..1), `positions` compared alone vs batch, `batch`, `items`.
    """
    if items.shape[0] < 1:
        raise ValueError("code_agreement needs at least one item")
    n = min(items.shape[0], batch)
    alone = n if alone is None else min(alone, n)
    index = torch.arange(batch) % items.shape[0]
    stacked = items[index]
    first, second = encode(stacked), encode(stacked)
    repeat = (first == second).double().mean().item()
    same = total = 0
    for i in range(alone):
        codes = encode(stacked[i : i + 1])[0]
        same += int((codes == first[i]).sum())
        total += codes.numel()
    return {"repeat": repeat, "alone_vs_batch": same / total, "positions": total, "batch": batch, "items": alone}
