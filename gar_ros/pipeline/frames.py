"""Inputs and outputs of the pipeline: frames, region sets, queries, descriptions, answers.

All stamps are integer nanoseconds (ROS time of the camera frame); ``received`` times are seconds of
the pipeline's clock (``time.monotonic`` unless a clock is injected).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gar_ros.types import Answer, Region, RegionText


@dataclass
class Frame:
    """One camera frame: ``image`` (H, W, 3) uint8 RGB, header ``stamp`` (ns) and ``frame_id``."""

    image: np.ndarray
    stamp: int
    frame_id: str = ""
    received: float = 0.0
    depth: np.ndarray | None = None

    @property
    def key(self) -> str:
        """Key of this frame in the model's feature cache."""
        return f"{self.frame_id}@{self.stamp}"


@dataclass
class RegionSet:
    """The regions of one frame, as received (masks may still be box-sized; see ``regions.py``)."""

    stamp: int
    regions: list[Region]
    frame_id: str = ""
    received: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class JoinedFrame:
    """A frame and its validated regions (masks frame-sized, boxes inside the image)."""

    frame: Frame
    regions: list[Region]
    region_stamp: int
    problems: list[str] = field(default_factory=list)

    def region(self, region_id: str) -> Region | None:
        for region in self.regions:
            if region.id == region_id:
                return region
        return None


@dataclass
class Description:
    """The text generated for one region of a frame."""

    region: Region
    text: RegionText


@dataclass
class DescriptionBatch:
    """Descriptions of the selected regions of one frame (possibly none).

    ``latency``: seconds from frame receipt to the end of inference; ``inference_time``: seconds in
    the model; ``timings``: seconds per stage for this frame.
    """

    stamp: int
    frame_id: str
    descriptions: list[Description]
    image: np.ndarray | None = None
    regions: list[Region] = field(default_factory=list)
    latency: float = 0.0
    inference_time: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class QueryRequest:
    """A question about the regions of a frame.

    ``question`` may contain ``<region:ID>`` references; ``region_ids`` are added after them.
    ``stamp`` 0 = the latest frame with regions. ``max_new_tokens`` 0 = the pipeline's default.
    ``on_text(text_so_far)`` streams partial answers; returning False cancels generation.
    """

    question: str
    region_ids: list[str] = field(default_factory=list)
    stamp: int = 0
    query_id: str = ""
    max_new_tokens: int = 0
    on_text: Callable[[str], bool] | None = None


@dataclass
class QueryResult:
    """The answer to one query, with the frame it was asked about (stamp 0 / "" when none)."""

    query_id: str
    question: str
    answer: Answer
    frame_stamp: int = 0
    frame_id: str = ""
    cancelled: bool = False
    latency: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class QueryTicket:
    """Handle of a submitted query: wait for its result or cancel it."""

    def __init__(self, request: QueryRequest, submitted: float) -> None:
        self.request = request
        self.submitted = submitted
        self._done = threading.Event()
        self._cancel = threading.Event()
        self._result: QueryResult | None = None

    def cancel(self) -> None:
        """Ask to stop: a queued query is skipped, a running one stops generating."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> QueryResult | None:
        """The result, or None when ``timeout`` seconds pass first."""
        if not self._done.wait(timeout):
            return None
        return self._result

    def set_result(self, result: QueryResult) -> None:
        self._result = result
        self._done.set()
