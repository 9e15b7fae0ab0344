"""RoI-aligned feature replay: region features cut from the merged tile feature map.

The projected tokens of the tiles (thumbnail excluded) are merged into one map of
(tiles_h * side, tiles_w * side) cells, row-major like the tiles. A prompt's normalised box
``(x1, y1, x2, y2)`` in [0, 1] is replayed with ``torchvision.ops.roi_align`` (output
``out x out``, ``sampling_ratio=2``, ``aligned=True``), giving ``out**2`` tokens in row-major
order that replace that prompt's crop tokens.

Geometries
- ``reference`` (official, the released weights were trained with it): the box is converted to
  feature-cell coordinates (``x1 * map_w``...) AND ``spatial_scale = 1 / stride`` is passed
  (stride = pixels per cell, 28 for GAR), so the box is scaled twice: roi_align samples
  ``[x1*map_w/stride - 0.5, x2*map_w/stride - 0.5]`` cells, a small area near the top-left of
  the map, whatever the region.
- ``corrected``: the box in feature-cell coordinates with ``spatial_scale = 1``, so the replay
  samples the region's own cells.
"""
from __future__ import annotations

import torch
from torchvision.ops import roi_align

from gar_ros.errors import RegionError


def merge_tiles(tile_features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(tiles_h*tiles_w, side*side, D) row-major tiles -> (D, tiles_h*side, tiles_w*side)."""
    tiles_w, tiles_h = grid
    n, tokens, dim = tile_features.shape
    side = int(round(tokens**0.5))
    if side * side != tokens or n != tiles_w * tiles_h:
        raise ValueError(f"cannot merge {n} tiles of {tokens} tokens into a {tiles_w}x{tiles_h} grid")
    x = tile_features.reshape(tiles_h, tiles_w, side, side, dim)
    x = x.permute(4, 0, 2, 1, 3)  # D, th, side_y, tw, side_x
    return x.reshape(dim, tiles_h * side, tiles_w * side)


def roi_box(
    box: tuple[float, float, float, float], map_hw: tuple[int, int], geometry: str, stride: float
) -> tuple[list[float], float]:
    """The (x1, y1, x2, y2) roi passed to roi_align and its ``spatial_scale``."""
    h, w = map_hw
    x1, y1, x2, y2 = box
    if geometry == "reference":
        # Same float arithmetic as the official code: pixels of a virtual canvas, then cells.
        orig_h, orig_w = h * stride, w * stride
        scale = w / orig_w
        roi = [x1 * orig_w * scale, y1 * orig_h * scale, x2 * orig_w * scale, y2 * orig_h * scale]
        return roi, scale
    if geometry == "corrected":
        return [x1 * w, y1 * h, x2 * w, y2 * h], 1.0
    raise ValueError(f"unknown replay geometry {geometry!r}")


def replay_features(
    feature_map: torch.Tensor,
    box: tuple[float, float, float, float],
    output_size: int,
    geometry: str,
    stride: float,
) -> torch.Tensor:
    """(D, H, W) map + normalised box -> (output_size**2, D) replayed tokens (map's dtype).

    roi_align runs in float32 like the official code.
    """
    if not all(0.0 <= v <= 1.0 for v in box) or box[2] < box[0] or box[3] < box[1]:
        raise RegionError(f"replay box {box} is not a normalised (x1, y1, x2, y2) box")
    roi, scale = roi_box(box, (int(feature_map.shape[1]), int(feature_map.shape[2])), geometry, stride)
    rois = torch.tensor([[0.0, *roi]], dtype=torch.float32, device=feature_map.device)
    out = roi_align(
        feature_map[None].float(),
        rois,
        output_size=(output_size, output_size),
        spatial_scale=scale,
        sampling_ratio=2,
        aligned=True,
    )
    return out[0].permute(1, 2, 0).reshape(output_size * output_size, -1).to(feature_map.dtype)
