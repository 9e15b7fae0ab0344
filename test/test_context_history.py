"""Frame history caps (count, age, bytes, thinning) under long synthetic streams."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from gar_ros.context.history import NS_PER_S, FrameHistory
from gar_ros.errors import InputError
from gar_ros.types import Region

MS = 1_000_000


def _frame(i: int, h: int = 24, w: int = 32) -> tuple[np.ndarray, dict[str, Region]]:
    image = np.full((h, w, 3), i % 256, dtype=np.uint8)
    mask = np.zeros((h, w), dtype=bool)
    mask[2:10, (i % 20) : (i % 20) + 5] = True
    return image, {"a": Region("a", mask=mask)}


def test_count_cap_and_oldest_first_eviction() -> None:
    hist = FrameHistory(max_frames=5, max_age_ns=10**18, max_bytes=1 << 40)
    for i in range(12):
        hist.add(i * 33 * MS, *_frame(i))
    assert len(hist) == 5
    assert hist.stamps == [i * 33 * MS for i in range(7, 12)]
    assert hist.evicted == 7
    assert hist.newest is not None and hist.newest.stamp == 11 * 33 * MS


def test_age_cap_keeps_newest_window() -> None:
    hist = FrameHistory(max_frames=1000, max_age_ns=1 * NS_PER_S, max_bytes=1 << 40)
    for i in range(100):
        hist.add(i * 100 * MS, *_frame(i))
    stamps = hist.stamps
    assert stamps[-1] == 99 * 100 * MS
    assert stamps[-1] - stamps[0] <= NS_PER_S
    assert len(stamps) == 11  # 9.0 s .. 9.9 s


def test_bytes_cap_counts_images_masks_and_features() -> None:
    image, regions = _frame(0)
    per_frame = image.nbytes + regions["a"].mask.nbytes
    hist = FrameHistory(max_frames=100, max_age_ns=10**18, max_bytes=4 * per_frame)
    for i in range(10):
        hist.add(i, *_frame(i))
    assert len(hist) == 4
    assert hist.nbytes == 4 * per_frame
    # features count too: one extra frame's worth pushes the oldest out
    hist.put_features(9, "tile", np.zeros(per_frame, dtype=np.uint8))
    assert hist.nbytes == 4 * per_frame
    assert hist.stamps == [7, 8, 9]
    assert hist.get(9).features["tile"].nbytes == per_frame


def test_newest_frame_is_never_evicted() -> None:
    hist = FrameHistory(max_frames=3, max_age_ns=0, max_bytes=1)
    for i in range(5):
        hist.add(i * NS_PER_S, *_frame(i))
        assert len(hist) == 1 and hist.newest.stamp == i * NS_PER_S


def test_min_interval_thins_older_frames_and_keeps_recent_ones() -> None:
    hist = FrameHistory(
        max_frames=100, max_age_ns=10**18, max_bytes=1 << 40, min_interval_ns=100 * MS, keep_recent=4
    )
    stamps_in = [round(i * 1e9 / 30) for i in range(61)]  # 30 Hz for 2 s
    for i, stamp in enumerate(stamps_in):
        hist.add(stamp, *_frame(i))
        assert hist.stamps[-4:] == stamps_in[max(0, i - 3) : i + 1]  # the 4 newest always kept
    stamps = hist.stamps
    gaps = np.diff(stamps[:-4])
    assert (gaps >= 100 * MS).all()
    assert 19 <= len(stamps) - 4 <= 21


def test_same_stamp_replaces_and_out_of_order_inserts_sorted() -> None:
    hist = FrameHistory(max_frames=10)
    hist.add(2 * MS, *_frame(2))
    hist.add(1 * MS, *_frame(1))
    hist.add(2 * MS, *_frame(7))
    assert hist.stamps == [1 * MS, 2 * MS]
    assert int(hist.get(2 * MS).image[0, 0, 0]) == 7
    assert hist.nbytes == sum(r.nbytes for r in hist)


def test_drop_images_after_encoding() -> None:
    hist = FrameHistory(max_frames=4, keep_images=False)
    rec = hist.add(5, *_frame(5))
    assert rec.image is not None
    hist.put_features(5, ("tile", "a"), np.zeros((256, 8), dtype=np.float32))
    assert rec.image is not None  # the newest frame keeps its image
    nxt = hist.add(6, *_frame(6))
    assert rec.image is None and rec.size == (24, 32)
    assert nxt.image is not None
    assert hist.nbytes == sum(r.nbytes for r in hist)
    assert rec.nbytes == 256 * 8 * 4 + rec.regions["a"].mask.nbytes


def test_bad_parameters_raise() -> None:
    with pytest.raises(InputError):
        FrameHistory(max_frames=0)
    with pytest.raises(InputError):
        FrameHistory(max_age_ns=-1)
    with pytest.raises(InputError):
        FrameHistory().add(0, np.zeros((4, 4), dtype=np.uint8), {})


def test_memory_flat_on_endless_stream() -> None:
    """8k frames with features: record count, byte count and traced memory stop growing."""
    image, regions = _frame(0, 48, 64)
    per_frame = image.nbytes + regions["a"].mask.nbytes + 256 * 4 * 4
    hist = FrameHistory(max_frames=16, max_age_ns=2 * NS_PER_S, max_bytes=10 * per_frame)
    tracemalloc.start()
    peaks = []
    try:
        for i in range(8_000):
            stamp = i * 33 * MS
            hist.add(stamp, *_frame(i, 48, 64))
            hist.put_features(stamp, "tile", np.zeros((256, 4), dtype=np.float32))
            assert len(hist) <= 16 and hist.nbytes <= 10 * per_frame
            if i % 1000 == 999:
                peaks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert len(hist) == 10
    # steady state after the first window: no growth beyond noise (one frame's worth)
    assert max(peaks[1:]) - min(peaks[1:]) < 2 * per_frame, peaks
