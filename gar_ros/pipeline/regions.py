"""Region validation against the frame they belong to.

Masks arrive either at the frame's size (H, W) or at the box's size (round(y2-y1), round(x2-x1)),
placed at the box's top-left corner (``msg/Region.msg``). ``resolve_regions`` turns them into
frame-sized bool masks, clips boxes to the image and rejects what cannot be used; each rejection
is reported as one line naming the region so that the caller can log it and count it.
"""
from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from gar_ros.errors import RegionError
from gar_ros.types import Box, Region


def box_from_mask(mask: np.ndarray) -> Box | None:
    """Tight (x1, y1, x2, y2) box of an (H, W) bool mask, x2/y2 exclusive; None when empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))
    if w == 0 or h == 0:
        return None
    return (float(x), float(y), float(x + w), float(y + h))


def clip_box(box: Box, width: int, height: int) -> Box:
    """Clip a box to the image; may return an empty box (x2 <= x1 or y2 <= y1)."""
    x1, y1, x2, y2 = box
    return (
        min(max(x1, 0.0), float(width)),
        min(max(y1, 0.0), float(height)),
        min(max(x2, 0.0), float(width)),
        min(max(y2, 0.0), float(height)),
    )


def _place_box_mask(mask: np.ndarray, box: Box, width: int, height: int) -> tuple[np.ndarray, Box | None]:
    """Place a box-sized mask into a frame-sized one at the box's top-left corner (clipped);
    returns it with its tight box (None when nothing of it lies inside the image)."""
    full = np.zeros((height, width), dtype=bool)
    x0, y0 = int(round(box[0])), int(round(box[1]))
    mh, mw = mask.shape
    fx1, fy1 = max(x0, 0), max(y0, 0)
    fx2, fy2 = min(x0 + mw, width), min(y0 + mh, height)
    if fx2 <= fx1 or fy2 <= fy1:
        return full, None
    part = mask[fy1 - y0 : fy2 - y0, fx1 - x0 : fx2 - x0]
    full[fy1:fy2, fx1:fx2] = part
    tight = box_from_mask(part)
    if tight is None:
        return full, None
    return full, (tight[0] + fx1, tight[1] + fy1, tight[2] + fx1, tight[3] + fy1)


def resolve_region(region: Region, width: int, height: int) -> Region:
    """One region made usable for a (height, width) frame, or :class:`RegionError` saying why not.

    Result: ``mask`` frame-sized bool (or None for a box region), ``box`` clipped to the image.
    """
    if not region.id:
        raise RegionError("region without id")
    if not math.isfinite(float(region.score)):
        raise RegionError(f"region {region.id!r}: score is {region.score}")
    if region.depth is not None and not math.isfinite(float(region.depth)):
        region = replace(region, depth=None)
    box = region.box
    if box is not None:
        if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
            raise RegionError(f"region {region.id!r}: box {box} is not 4 finite numbers")
        box = tuple(float(v) for v in box)  # type: ignore[assignment]
        if box[2] <= box[0] or box[3] <= box[1]:
            box = None if region.mask is not None else box
            if box is not None:
                raise RegionError(f"region {region.id!r}: box {region.box} has no area")
    mask = region.mask
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise RegionError(f"region {region.id!r}: mask has shape {mask.shape}, expected (H, W)")
        mask = mask.astype(bool, copy=False)
        if mask.shape == (height, width):
            tight = box_from_mask(mask)
        elif box is not None and mask.shape == (
            int(round(box[3] - box[1])),
            int(round(box[2] - box[0])),
        ):
            mask, tight = _place_box_mask(mask, box, width, height)
        else:
            expect = f"{height}x{width} (frame)"
            if box is not None:
                expect += f" or {int(round(box[3] - box[1]))}x{int(round(box[2] - box[0]))} (box)"
            raise RegionError(
                f"region {region.id!r}: mask is {mask.shape[0]}x{mask.shape[1]}, expected {expect}"
            )
        if tight is None:
            raise RegionError(f"region {region.id!r}: mask is empty (inside the image)")
        box = tight
    elif box is None:
        raise RegionError(f"region {region.id!r}: neither box nor mask")
    else:
        clipped = clip_box(box, width, height)
        if clipped[2] - clipped[0] < 1.0 or clipped[3] - clipped[1] < 1.0:
            raise RegionError(
                f"region {region.id!r}: box {box} lies outside the {width}x{height} image"
            )
        box = clipped
    return replace(region, box=box, mask=mask, score=float(region.score))


def resolve_regions(
    regions: list[Region], width: int, height: int
) -> tuple[list[Region], list[str]]:
    """Usable regions (input order, first of duplicate ids kept) and one problem line per rejection."""
    usable: list[Region] = []
    problems: list[str] = []
    seen: set[str] = set()
    for region in regions:
        if region.id in seen:
            problems.append(f"duplicate region id {region.id!r}: later one ignored")
            continue
        try:
            resolved = resolve_region(region, width, height)
        except RegionError as err:
            problems.append(str(err))
            continue
        seen.add(region.id)
        usable.append(resolved)
    return usable, problems
