"""RoI replay geometry: tile merging, the official double-scaled box, the corrected box."""
from __future__ import annotations

import pytest
import torch

from gar_ros.errors import RegionError
from gar_ros.model.replay import merge_tiles, replay_features

torch.set_num_threads(1)


def linear_map(h: int, w: int, a: float = 1.0, b: float = 100.0, c: float = 7.0) -> torch.Tensor:
    """(2, h, w): channel 0 = a*x + b*y + c, channel 1 = x (cell centres at integer x, y)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.stack([a * x + b * y + c, x])


def expected_linear(box_cells: tuple[float, float, float, float], out: int) -> torch.Tensor:
    """roi_align (aligned=True) of a linear map = the map at each bin centre (no clamping)."""
    x1, y1, x2, y2 = (v - 0.5 for v in box_cells)
    bw, bh = (x2 - x1) / out, (y2 - y1) / out
    cx = x1 + (torch.arange(out) + 0.5) * bw
    cy = y1 + (torch.arange(out) + 0.5) * bh
    yy, xx = torch.meshgrid(cy, cx, indexing="ij")
    return torch.stack([xx + 100 * yy + 7, xx], dim=-1).reshape(out * out, 2)


def test_merge_tiles_row_major() -> None:
    side, d = 2, 3
    tiles = torch.stack([torch.full((side * side, d), float(k)) for k in range(6)])  # grid 3 wide, 2 high
    merged = merge_tiles(tiles, (3, 2))
    assert merged.shape == (d, 2 * side, 3 * side)
    for r in range(2):
        for c in range(3):
            block = merged[:, r * side : (r + 1) * side, c * side : (c + 1) * side]
            assert torch.all(block == r * 3 + c)
    # token order inside a tile is row-major (h, w)
    t = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1)
    assert merge_tiles(t, (1, 1))[0].tolist() == [[0, 1], [2, 3]]


def test_reference_geometry_is_double_scaled() -> None:
    fmap = linear_map(16, 32)  # 1x2 tiles of 16x16 tokens
    stride = 28.0
    box = (0.9, 0.95, 1.0, 1.0)  # a region at the bottom-right corner of the image
    got = replay_features(fmap, box, 4, "reference", stride)
    cells = (0.9 * 32 / stride, 0.95 * 16 / stride, 1.0 * 32 / stride, 1.0 * 16 / stride)
    torch.testing.assert_close(got, expected_linear(cells, 4), rtol=0, atol=1e-4)
    # ... which samples near the top-left cells, not the region's own cells
    assert got[:, 1].max() < 1.0


def test_corrected_geometry_samples_own_cells() -> None:
    fmap = linear_map(16, 32)
    box = (0.5, 0.25, 0.75, 1.0)
    got = replay_features(fmap, box, 4, "corrected", 28.0)
    torch.testing.assert_close(got, expected_linear((16, 4, 24, 16), 4), rtol=0, atol=1e-4)
    assert 15.5 <= got[:, 1].min() and got[:, 1].max() <= 23.5


def test_replay_keeps_dtype_and_checks_box() -> None:
    fmap = linear_map(8, 8).to(torch.bfloat16)
    out = replay_features(fmap, (0.1, 0.1, 0.5, 0.5), 2, "corrected", 28.0)
    assert out.dtype == torch.bfloat16 and out.shape == (4, 2)
    with pytest.raises(RegionError):
        replay_features(fmap, (0.5, 0.1, 0.2, 0.5), 2, "corrected", 28.0)
    with pytest.raises(RegionError):
        replay_features(fmap, (float("nan"), 0.1, 0.2, 0.5), 2, "corrected", 28.0)
