"""The annotated frame of ~/debug_image: region outlines (masks tinted), ids, labels, text."""
from __future__ import annotations

import cv2
import numpy as np

from gar_ros.types import Region

_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230)]


def annotate(image: np.ndarray, regions: list[Region], texts: dict[str, str], max_chars: int = 60) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 RGB with each region's mask/box, id, label and text."""
    out = image.copy()
    scale = max(0.35, min(out.shape[:2]) / 900)
    thick = max(1, int(round(scale * 2)))
    for k, region in enumerate(regions):
        colour = _COLOURS[k % len(_COLOURS)]
        if region.box is None:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in region.box)
        if region.mask is not None and region.mask.shape == out.shape[:2]:
            sub = out[max(y1, 0) : y2, max(x1, 0) : x2]  # masks lie inside their box
            inside = region.mask[max(y1, 0) : y2, max(x1, 0) : x2]
            tint = sub[inside].astype(np.float32) * 0.6 + np.array(colour, np.float32) * 0.4
            sub[inside] = tint.astype(np.uint8)
        cv2.rectangle(out, (x1, y1), (max(x1, x2 - 1), max(y1, y2 - 1)), colour, thick)
        caption = region.id + (f" {region.label}" if region.label else "")
        text = texts.get(region.id, "")
        if text and max_chars > 0:
            caption += ": " + (text if len(text) <= max_chars else text[: max(0, max_chars - 3)] + "...")
        caption = caption.encode("ascii", "replace").decode()
        y = y1 - 4 if y1 > 14 else min(out.shape[0] - 2, y2 + int(14 * scale) + 2)
        cv2.putText(out, caption, (x1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, caption, (x1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return out
