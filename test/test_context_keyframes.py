"""Keyframe choice: spread over the window, newest included, only frames showing the track."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gar_ros.context.keyframes import choose_keyframes
from gar_ros.errors import InputError

MS = 1_000_000


@dataclass
class Rec:
    stamp: int
    regions: dict = field(default_factory=dict)


def _records(n: int, step_ms: int = 100, hidden: tuple[int, ...] = ()) -> list[Rec]:
    return [Rec(i * step_ms * MS, {} if i in hidden else {"a": object(), "b": object()}) for i in range(n)]


def test_spread_and_newest() -> None:
    recs = _records(21)  # 0 .. 2.0 s
    got = [r.stamp // MS for r in choose_keyframes(recs, ["a"], 5, 2000 * MS)]
    assert got == [0, 500, 1000, 1500, 2000]


def test_window_limits_the_span() -> None:
    recs = _records(21)
    got = [r.stamp // MS for r in choose_keyframes(recs, ["a"], 3, 1000 * MS)]
    assert got == [1000, 1500, 2000]


def test_only_frames_where_the_track_is_visible() -> None:
    recs = _records(21, hidden=(10, 19, 20))
    got = [r.stamp // MS for r in choose_keyframes(recs, ["a"], 3, 2000 * MS)]
    assert got[-1] == 1800  # newest frame showing the track
    assert 1000 not in got and len(got) == 3
    assert got == sorted(got)
    # any of several tracks counts (multi-region questions)
    recs[20].regions = {"b": object()}
    assert choose_keyframes(recs, ["a", "b"], 2, 2000 * MS)[-1].stamp == 2000 * MS


def test_fewer_frames_than_k_and_k_zero() -> None:
    recs = _records(3)
    assert [r.stamp for r in choose_keyframes(recs, ["a"], 5, 10**12)] == [0, 100 * MS, 200 * MS]
    assert [r.stamp for r in choose_keyframes(recs, ["a"], 0, 10**12)] == [200 * MS]
    assert choose_keyframes(recs, ["zzz"], 3, 10**12) == []


def test_irregular_stamps_pick_nearest_distinct() -> None:
    stamps_ms = [0, 10, 20, 30, 900, 1000]
    recs = [Rec(s * MS, {"a": 1}) for s in stamps_ms]
    got = [r.stamp // MS for r in choose_keyframes(recs, ["a"], 3, 10**12)]
    assert got == [0, 900, 1000]  # target 500 -> nearest unused is 900 (not a duplicate of 1000)
    got4 = [r.stamp // MS for r in choose_keyframes(recs, ["a"], 4, 10**12)]
    assert len(set(got4)) == 4 and got4[-1] == 1000 and got4[0] == 0


def test_until_and_bad_parameters() -> None:
    recs = _records(11)
    assert choose_keyframes(recs, ["a"], 2, 10**12, until=500 * MS)[-1].stamp == 500 * MS
    with pytest.raises(InputError):
        choose_keyframes(recs, ["a"], -1, 10)
    with pytest.raises(InputError):
        choose_keyframes(recs, ["a"], 1, -10)
