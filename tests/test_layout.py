"""The image raster layout (a one-frame video layout): flatten / unflatten / allowed agree,
with and without the row separator, and malformed spans are refused."""

from __future__ import annotations

import pytest
import torch

from mmtok.errors import MmtokError
from mmtok.layout import RasterLayout


@pytest.mark.parametrize("rows", [False, True])
def test_raster_layout(rows):
    codes = torch.randint(0, 10, (3, 4), generator=torch.Generator().manual_seed(0))
    layout = RasterLayout(10, rows)
    ids = layout.flatten(codes)
    expected = torch.cat([codes, torch.full((3, 1), 10)], dim=1) if rows else codes
    assert torch.equal(ids, expected.reshape(-1))
    assert layout.span_length((3, 4)) == ids.numel() == 3 * (4 + rows)
    assert torch.equal(layout.unflatten(ids, (3, 4)), codes)
    assert [layout.allowed(p, (3, 4)) for p in range(ids.numel())] == [
        (10, 11) if rows and p % 5 == 4 else (0, 10) for p in range(ids.numel())
    ]
    assert layout.vocab_size == 10 + rows and layout.separator_id == (10 if rows else None)
    with pytest.raises(MmtokError, match="image span has"):
        layout.unflatten(ids[:-1], (3, 4))
    with pytest.raises(ValueError):
        layout.flatten(codes[None])


def test_raster_layout_refuses_bad_ids():
    with pytest.raises(MmtokError, match="ids outside"):
        RasterLayout(10).unflatten(torch.full((12,), 10), (3, 4))
    ids = RasterLayout(10, True).flatten(torch.zeros(3, 4, dtype=torch.long))
    ids[4] = 0
    with pytest.raises(MmtokError, match="row separator"):
        RasterLayout(10, True).unflatten(ids, (3, 4))
