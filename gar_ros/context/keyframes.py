"""Keyframe choice: K frames of a track spread over a time window, newest always included.

``choose_keyframes(records, track_ids, k, window_ns)`` looks at the records (oldest first) in which
at least one of ``track_ids`` is visible, restricted to ``[t_end - window_ns, t_end]`` where
``t_end`` is the newest such record's stamp (or ``until`` when given). If at most ``k`` qualify, all
are used; otherwise the newest is taken and the other ``k - 1`` are the records nearest to evenly
spaced target times between the oldest qualifying record and the newest (distinct records, nearest
first, ties to the older one). The result is sorted oldest first, newest last. ``k = 0`` returns
only the newest qualifying record (the single-image path uses that frame).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gar_ros.errors import InputError


class HasStampAndRegions(Protocol):
    stamp: int
    regions: dict


def choose_keyframes(
    records: Sequence[HasStampAndRegions],
    track_ids: Sequence[str],
    k: int,
    window_ns: int,
    until: int | None = None,
) -> list:
    """Pick up to ``max(k, 1)`` records (oldest first) showing any of ``track_ids``; see module doc."""
    if k < 0:
        raise InputError(f"context_frames must be >= 0, got {k}")
    if window_ns < 0:
        raise InputError(f"window must be >= 0, got {window_ns}")
    wanted = set(track_ids)
    visible = [
        r
        for r in records
        if (until is None or r.stamp <= until) and any(t in r.regions for t in wanted)
    ]
    if not visible:
        return []
    visible.sort(key=lambda r: r.stamp)
    t_end = visible[-1].stamp
    visible = [r for r in visible if r.stamp >= t_end - window_ns]
    n = max(k, 1)
    if len(visible) <= n:
        return visible
    chosen = {len(visible) - 1}
    t0 = visible[0].stamp
    stamps = [r.stamp for r in visible]
    for i in range(n - 1):
        target = t0 + (t_end - t0) * i / (n - 1)
        free = [j for j in range(len(visible)) if j not in chosen]
        chosen.add(min(free, key=lambda j: (abs(stamps[j] - target), stamps[j])))
    return [visible[j] for j in sorted(chosen)]
