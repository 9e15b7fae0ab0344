"""Bounded history of recent frames: images, tracked regions and their encoded vision features.

A :class:`FrameHistory` keeps the last frames of one camera stream, oldest first. Each
:class:`FrameRecord` holds the frame (``image`` (H, W, 3) uint8 RGB, optional once encoded), the
frame's regions keyed by *track id* (see :mod:`gar_ros.context.tracks`) and a small dict of encoded
features (``torch.Tensor`` or ``numpy.ndarray``, e.g. the (256, D) projected tokens of the frame as
one 448 tile with its visual-prompt map) keyed by whatever the encoder needs to tell encodings apart.

Caps (all enforced on every insertion, eviction is always oldest first, the newest frame is never
evicted):

- ``max_frames``: number of frames kept;
- ``max_age_ns``: frames older than ``newest.stamp - max_age_ns`` are dropped;
- ``max_bytes``: the sum of :attr:`FrameRecord.nbytes` (image + masks + features);
- ``min_interval_ns``: frames closer in time than this to the previous kept frame are thinned out,
  so that a 30 Hz stream does not fill the history with near-duplicates. The newest
  ``keep_recent`` frames are never thinned (the pipeline describes and answers about frames that
  just arrived); a frame is thinned when it leaves that recent zone.

Memory therefore stays flat on an endless stream: at most ``max_frames`` records and
``max_bytes`` bytes (plus the newest frame, should it alone exceed ``max_bytes``).
Stamps are int nanoseconds; a frame with a stamp already present replaces that record; a frame
older than the newest one is inserted in order (and may be evicted at once by the age cap).
"""
from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gar_ros.errors import InputError
from gar_ros.types import Region

NS_PER_S = 1_000_000_000


def _nbytes(value: Any) -> int:
    """Bytes held by an array, tensor or (nested) tuple/list/dict of them."""
    if value is None:
        return 0
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    numel = getattr(value, "numel", None)
    element_size = getattr(value, "element_size", None)
    if callable(numel) and callable(element_size):  # torch.Tensor without importing torch
        return int(numel() * element_size())
    return 0


@dataclass
class FrameRecord:
    """One frame of the history.

    ``stamp`` int ns; ``key`` the frame key used by the model's feature caches; ``image`` (H, W, 3)
    uint8 RGB or None when dropped; ``size`` (H, W); ``regions`` track id -> :class:`Region`
    (masks at the frame's size); ``features`` encoding key -> tensor/array.
    """

    stamp: int
    key: str
    image: np.ndarray | None
    size: tuple[int, int]
    regions: dict[str, Region] = field(default_factory=dict)
    features: dict[Hashable, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        total = _nbytes(self.image) + _nbytes(self.features)
        for region in self.regions.values():
            total += _nbytes(region.mask)
        return total

    def has(self, track_id: str) -> bool:
        return track_id in self.regions


class FrameHistory:
    """Oldest-first bounded store of :class:`FrameRecord` (see module docstring for the caps)."""

    def __init__(
        self,
        max_frames: int = 30,
        max_age_ns: int = 10 * NS_PER_S,
        max_bytes: int = 256 * 1024 * 1024,
        min_interval_ns: int = 0,
        keep_images: bool = True,
        keep_recent: int = 8,
    ) -> None:
        if max_frames < 1:
            raise InputError(f"max_frames must be >= 1, got {max_frames}")
        if max_age_ns < 0 or max_bytes < 0 or min_interval_ns < 0:
            raise InputError("max_age_ns, max_bytes and min_interval_ns must be >= 0")
        self.max_frames = int(max_frames)
        self.max_age_ns = int(max_age_ns)
        self.max_bytes = int(max_bytes)
        self.min_interval_ns = int(min_interval_ns)
        self.keep_images = bool(keep_images)
        self.keep_recent = max(1, int(keep_recent))
        self._records: list[FrameRecord] = []
        self._stamps: list[int] = []
        self._nbytes = 0
        #: number of records evicted so far (all causes)
        self.evicted = 0

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[FrameRecord]:
        return iter(list(self._records))

    @property
    def nbytes(self) -> int:
        """Bytes currently held (images, masks, features)."""
        return self._nbytes

    @property
    def newest(self) -> FrameRecord | None:
        return self._records[-1] if self._records else None

    @property
    def stamps(self) -> list[int]:
        return list(self._stamps)

    def get(self, stamp: int) -> FrameRecord | None:
        i = bisect.bisect_left(self._stamps, stamp)
        if i < len(self._stamps) and self._stamps[i] == stamp:
            return self._records[i]
        return None

    def frames_with(self, track_id: str) -> list[FrameRecord]:
        """Records in which ``track_id`` is visible, oldest first."""
        return [r for r in self._records if track_id in r.regions]

    # -- insertion ------------------------------------------------------------------------------
    def add(
        self,
        stamp: int,
        image: np.ndarray | None,
        regions: Mapping[str, Region],
        frame_key: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> FrameRecord:
        """Insert a frame (``regions`` keyed by track id) and apply the caps; returns its record."""
        stamp = int(stamp)
        if image is not None:
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
                raise InputError("image must be an (H, W, 3) uint8 array")
            size = (int(image.shape[0]), int(image.shape[1]))
        if size is None:
            raise InputError("a frame needs an image or an explicit size")
        record = FrameRecord(
            stamp=stamp,
            key=frame_key if frame_key is not None else f"frame@{stamp}",
            image=image,
            size=size,
            regions=dict(regions),
        )
        i = bisect.bisect_left(self._stamps, stamp)
        if i < len(self._stamps) and self._stamps[i] == stamp:
            self._nbytes -= self._records[i].nbytes
            self._records[i] = record
        else:
            self._records.insert(i, record)
            self._stamps.insert(i, stamp)
            self._nbytes += record.nbytes
            self._thin()
            self._enforce()
            return record
        self._nbytes += record.nbytes
        self._enforce()
        return record

    def put_features(self, stamp: int, key: Hashable, value: Any) -> None:
        """Attach encoded features to the frame at ``stamp`` (bytes count towards ``max_bytes``).

        With ``keep_images=False`` the raw image of a frame with features is released as soon as
        the frame is no longer the newest. Unknown stamps (already evicted) are ignored.
        """
        record = self.get(stamp)
        if record is None:
            return
        self._nbytes -= record.nbytes
        record.features[key] = value
        self._nbytes += record.nbytes
        self._enforce()

    def get_features(self, stamp: int, key: Hashable) -> Any | None:
        record = self.get(stamp)
        return None if record is None else record.features.get(key)

    def clear(self) -> None:
        self._records.clear()
        self._stamps.clear()
        self._nbytes = 0

    # -- caps -----------------------------------------------------------------------------------
    def _thin(self) -> None:
        """Drop the frame that just left the recent zone if it is too close to its older neighbour."""
        j = len(self._records) - self.keep_recent - 1
        if self.min_interval_ns <= 0 or j < 1:
            return
        if self._stamps[j] - self._stamps[j - 1] < self.min_interval_ns:
            self._pop(j)

    def _pop(self, index: int) -> None:
        record = self._records.pop(index)
        self._stamps.pop(index)
        self._nbytes -= record.nbytes
        self.evicted += 1

    def _release_images(self) -> None:
        if self.keep_images:
            return
        for record in self._records[:-1]:
            if record.image is not None and record.features:
                self._nbytes -= int(record.image.nbytes)
                record.image = None

    def _enforce(self) -> None:
        self._release_images()
        while len(self._records) > self.max_frames:
            self._pop(0)
        newest = self._stamps[-1]
        while len(self._records) > 1 and newest - self._stamps[0] > self.max_age_ns:
            self._pop(0)
        while len(self._records) > 1 and self._nbytes > self.max_bytes:
            self._pop(0)
