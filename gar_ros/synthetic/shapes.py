"""Rasterise the synthetic shapes into boolean masks (OpenCV polygon / circle fill).

Coordinates are pixels, origin top-left, x right, y down. A shape of radius ``r`` fits in the
square ``[cx - r, cx + r) x [cy - r, cy + r)``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from gar_ros.errors import InputError

_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_SCALE = 1 << _SHIFT


def _polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    """Vertices (N, 2) float of a polygonal shape centred on (cx, cy)."""
    if shape == "square":
        s = r * 0.85
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "triangle":
        pts = [(0.0, -r), (r * 0.95, r * 0.75), (-r * 0.95, r * 0.75)]
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.42
            ang = -math.pi / 2 + k * math.pi / 5
            pts.append((rad * math.cos(ang), rad * math.sin(ang)))
    elif shape == "cross":
        a, b = r * 0.95, r * 0.33
        pts = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
               (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
    else:
        raise InputError(f"unknown polygon shape {shape!r}")
    return np.asarray(pts, dtype=np.float64) + np.asarray([cx, cy])


def shape_mask(shape: str, cx: float, cy: float, r: float, width: int, height: int) -> np.ndarray:
    """(height, width) bool mask of one shape ("square", "circle", "triangle", "star", "cross")."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    if shape == "circle":
        centre = (int(round((cx - 0.5) * _SCALE)), int(round((cy - 0.5) * _SCALE)))
        cv2.circle(canvas, centre, int(round(r * 0.92 * _SCALE)), 1, thickness=-1,
                   lineType=cv2.LINE_8, shift=_SHIFT)
    else:
        pts = np.round((_polygon(shape, cx, cy, r) - 0.5) * _SCALE).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.astype(bool)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight box (x1, y1, x2, y2) of a non-empty mask, x2/y2 exclusive."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise InputError("empty mask has no box")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
