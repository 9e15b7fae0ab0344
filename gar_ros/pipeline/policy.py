"""Describe policy: which regions of a frame get (re-)described.

A track (region id) is described once when first seen and again only after ``redescribe_period``
seconds (0 = never again); at most ``max_regions_per_frame`` per frame, new tracks first, then the
longest-undescribed ones. Time is the frame stamp in seconds (deterministic on bags); tracks not
seen for ``track_expiry`` seconds are forgotten, so memory stays bounded on endless streams.
"""
from __future__ import annotations

from gar_ros.types import Region


class DescribePolicy:
    def __init__(
        self,
        *,
        redescribe_period: float = 10.0,
        max_regions_per_frame: int = 8,
        track_expiry: float = 60.0,
        max_tracks: int = 10_000,
    ) -> None:
        self.redescribe_period = float(redescribe_period)
        self.max_regions_per_frame = int(max_regions_per_frame)
        self.track_expiry = float(track_expiry)
        self.max_tracks = int(max_tracks)
        self._described: dict[str, float] = {}  # id -> time of last description
        self._seen: dict[str, float] = {}  # id -> time last seen
        self._last_now: float | None = None

    def select(self, regions: list[Region], now: float) -> list[Region]:
        """Regions to describe at time ``now`` (seconds), in priority order."""
        if self._last_now is not None and now < self._last_now - 1.0:
            self.reset()  # time went backwards (bag restarted, sim reset)
        self._last_now = now
        for region in regions:
            self._seen[region.id] = now
        self._forget(now)
        new = [r for r in regions if r.id not in self._described]
        due: list[tuple[float, Region]] = []
        if self.redescribe_period > 0:
            for r in regions:
                last = self._described.get(r.id)
                if last is not None and now - last >= self.redescribe_period:
                    due.append((last, r))
        due.sort(key=lambda item: item[0])
        chosen = new + [r for _, r in due]
        return chosen[: max(0, self.max_regions_per_frame)]

    def mark_described(self, region_ids: list[str], now: float) -> None:
        for rid in region_ids:
            self._described[rid] = now

    def _forget(self, now: float) -> None:
        if len(self._seen) <= self.max_tracks and self.track_expiry <= 0:
            return
        stale = [rid for rid, t in self._seen.items() if now - t > self.track_expiry > 0]
        for rid in stale:
            self._seen.pop(rid, None)
            self._described.pop(rid, None)
        if len(self._seen) > self.max_tracks:
            for rid, _ in sorted(self._seen.items(), key=lambda item: item[1])[
                : len(self._seen) - self.max_tracks
            ]:
                self._seen.pop(rid, None)
                self._described.pop(rid, None)

    @property
    def track_count(self) -> int:
        return len(self._seen)

    def reset(self) -> None:
        self._described.clear()
        self._seen.clear()
        self._last_now = None
