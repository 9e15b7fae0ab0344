"""Frame/region store: joins frames and region sets by header stamp, within a tolerance.

Frames wait in a bounded buffer for their regions and region sets wait (bounded) for their frame;
whichever arrives second completes the join. A region set whose frame does not arrive within
``pending_window_ns`` of newer frames (or ``pending_timeout`` seconds) is counted as unmatched.
The last ``history`` joined frames stay available for queries (latest, or the one at a stamp).
Not thread-safe: the pipeline serialises access with its lock.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from gar_ros.pipeline.frames import Frame, JoinedFrame, RegionSet
from gar_ros.pipeline.regions import resolve_regions


@dataclass
class StoreEvents:
    """What one ``add_*`` call caused."""

    joined: JoinedFrame | None = None
    unmatched_regions: list[RegionSet] | None = None
    frames_without_regions: int = 0


class FrameStore:
    """Bounded frame and region buffers joined by stamp (nanoseconds)."""

    def __init__(
        self,
        *,
        tolerance_ns: int = 0,
        frame_capacity: int = 15,
        pending_capacity: int = 15,
        history: int = 5,
        pending_window_ns: int = 1_000_000_000,
        pending_timeout: float = 2.0,
    ) -> None:
        self.tolerance_ns = int(tolerance_ns)
        self.frame_capacity = max(1, int(frame_capacity))
        self.pending_capacity = max(1, int(pending_capacity))
        self.pending_window_ns = int(pending_window_ns)
        self.pending_timeout = float(pending_timeout)
        self._frames: OrderedDict[int, tuple[Frame, bool]] = OrderedDict()  # stamp -> (frame, joined)
        self._pending: OrderedDict[int, RegionSet] = OrderedDict()
        self._joined: deque[JoinedFrame] = deque(maxlen=max(1, int(history)))

    # ----------------------------------------------------------------- lookup
    def _nearest(self, keys: list[int], stamp: int) -> int | None:
        best, best_d = None, None
        for key in keys:
            d = abs(key - stamp)
            if d <= self.tolerance_ns and (best_d is None or d < best_d):
                best, best_d = key, d
        return best

    def latest_joined(self) -> JoinedFrame | None:
        return self._joined[-1] if self._joined else None

    def joined_at(self, stamp: int) -> JoinedFrame | None:
        """The joined frame at ``stamp`` (within tolerance, nearest), the latest when stamp is 0."""
        if stamp == 0:
            return self.latest_joined()
        best, best_d = None, None
        for joined in self._joined:
            d = abs(joined.frame.stamp - stamp)
            if d <= self.tolerance_ns and (best_d is None or d < best_d):
                best, best_d = joined, d
        return best

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # ----------------------------------------------------------------- input
    def _join(self, frame: Frame, regions: RegionSet) -> JoinedFrame:
        height, width = frame.image.shape[:2]
        usable, problems = resolve_regions(regions.regions, width, height)
        joined = JoinedFrame(
            frame=frame,
            regions=usable,
            region_stamp=regions.stamp,
            problems=list(regions.problems) + problems,
        )
        self._joined.append(joined)
        return joined

    def _expire_pending(self, newest_stamp: int | None, now: float | None) -> list[RegionSet]:
        expired = []
        for stamp in list(self._pending):
            rs = self._pending[stamp]
            too_old = newest_stamp is not None and newest_stamp - stamp > self.pending_window_ns
            timed_out = now is not None and rs.received and now - rs.received > self.pending_timeout
            if too_old or timed_out:
                expired.append(self._pending.pop(stamp))
        return expired

    def add_frame(self, frame: Frame, now: float | None = None) -> StoreEvents:
        events = StoreEvents()
        if frame.stamp in self._frames:
            self._frames.pop(frame.stamp)
        key = self._nearest(list(self._pending), frame.stamp)
        if key is not None:
            regions = self._pending.pop(key)
            events.joined = self._join(frame, regions)
            self._frames[frame.stamp] = (frame, True)
        else:
            self._frames[frame.stamp] = (frame, False)
        while len(self._frames) > self.frame_capacity:
            _, (_, was_joined) = self._frames.popitem(last=False)
            if not was_joined:
                events.frames_without_regions += 1
        expired = self._expire_pending(frame.stamp, now)
        if expired:
            events.unmatched_regions = expired
        return events

    def add_regions(self, regions: RegionSet, now: float | None = None) -> StoreEvents:
        events = StoreEvents()
        key = self._nearest(list(self._frames), regions.stamp)
        if key is not None:
            frame, _ = self._frames[key]
            self._frames[key] = (frame, True)
            events.joined = self._join(frame, regions)
        else:
            expired: list[RegionSet] = []
            newest = next(reversed(self._frames)) if self._frames else None
            if newest is not None and newest - regions.stamp > self.pending_window_ns:
                expired.append(regions)  # its frame is long gone or never came
            else:
                self._pending[regions.stamp] = regions
                while len(self._pending) > self.pending_capacity:
                    expired.append(self._pending.popitem(last=False)[1])
            expired += self._expire_pending(None, now)
            if expired:
                events.unmatched_regions = expired
        return events

    def expire(self, now: float) -> list[RegionSet]:
        """Region sets that waited longer than ``pending_timeout`` seconds for their frame."""
        return self._expire_pending(None, now)

    def clear(self) -> None:
        self._frames.clear()
        self._pending.clear()
        self._joined.clear()
