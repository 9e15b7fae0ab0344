"""Plain data types shared by the model, the pipeline, the node and the evaluator (no ROS).

Conventions
- Images are ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, RGB channel order.
- Masks are ``numpy.ndarray`` of shape (H, W) of the image's size, dtype bool (True = inside).
- Boxes are ``(x1, y1, x2, y2)`` floats in pixels, origin at the image's top-left corner,
  x to the right, y down; x2/y2 are exclusive (a box covering pixel column 0 only is (0, _, 1, _)).
- Timestamps are integer nanoseconds (ROS time), 0 = unknown / latest.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]


class AnswerStatus(enum.IntEnum):
    """Outcome of a query; values equal the constants of ``gar_ros/Answer``."""

    OK = 0
    NOT_FOUND = 1
    AMBIGUOUS = 2
    INVALID = 3
    BUSY = 4
    ERROR = 5


@dataclass
class Region:
    """One region of one frame.

    ``mask`` (H, W) bool of the frame's size, or None to use ``box`` as a filled rectangle.
    ``box`` (x1, y1, x2, y2) pixels; derived from the mask when None.
    ``depth`` metres from the camera when known (None otherwise).
    """

    id: str
    box: Box | None = None
    mask: np.ndarray | None = None
    label: str = ""
    score: float = 1.0
    depth: float | None = None


@dataclass
class RegionText:
    """Generated text for one region.

    ``frame_stamps`` lists the frames used as context in nanoseconds, oldest first, newest last.
    """

    region_id: str
    text: str
    token_ids: list[int] = field(default_factory=list)
    frame_stamps: list[int] = field(default_factory=list)


@dataclass
class Answer:
    """Answer to a question over regions.

    ``region_ids`` lists the regions the answer refers to: the target first, then anchors
    (or the candidates when AMBIGUOUS).
    """

    status: AnswerStatus
    text: str = ""
    region_ids: list[str] = field(default_factory=list)
    message: str = ""
    token_ids: list[int] = field(default_factory=list)
    frame_stamp: int = 0
