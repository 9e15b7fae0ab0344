"""Track association on synthetic moving objects, with and without detector ids."""
from __future__ import annotations

import numpy as np
import pytest

from gar_ros.context.tracks import CropMask, RegionTracker, TrackerConfig, pairwise_iou, region_box
from gar_ros.errors import InputError, RegionError
from gar_ros.types import Region

H, W = 120, 200
DT = 100_000_000  # 10 Hz
S = 1_000_000_000


def _obj(rid: str, cx: float, cy: float, r: int = 10, use_mask: bool = True) -> Region:
    x1, y1 = int(round(cx - r)), int(round(cy - r))
    box = (float(x1), float(y1), float(x1 + 2 * r), float(y1 + 2 * r))
    if not use_mask:
        return Region(rid, box=box)
    mask = np.zeros((H, W), dtype=bool)
    mask[max(y1, 0) : y1 + 2 * r, max(x1, 0) : x1 + 2 * r] = True
    return Region(rid, mask=mask)


def _run(tracker: RegionTracker, frames: list[list[Region]]) -> list[list[str]]:
    return [tracker.update(i * DT, regions) for i, regions in enumerate(frames)]


def _moving(ids: tuple[str, str], n: int = 20, **kw) -> list[list[Region]]:
    """Object A moves right along y=40, B moves left along y=80."""
    return [
        [_obj(ids[0], 30 + 6 * i, 40, **kw), _obj(ids[1], 170 - 6 * i, 80, **kw)] for i in range(n)
    ]


def test_stable_detector_ids_are_the_track_ids() -> None:
    out = _run(RegionTracker(), _moving(("7", "9")))
    assert all(ids == ["7", "9"] for ids in out)


@pytest.mark.parametrize("use_mask", [True, False])
def test_without_ids_tracks_stay_stable(use_mask: bool) -> None:
    out = _run(RegionTracker(), _moving(("", ""), use_mask=use_mask))
    a, b = out[0]
    assert a != b
    assert all(ids == [a, b] for ids in out)


def test_without_ids_order_changes_do_not_matter() -> None:
    frames = _moving(("", ""))
    frames = [f if i % 2 == 0 else f[::-1] for i, f in enumerate(frames)]
    out = _run(RegionTracker(), frames)
    a, b = out[0]
    for i, ids in enumerate(out):
        assert ids == ([a, b] if i % 2 == 0 else [b, a])


def test_crossing_objects_without_ids_keep_their_tracks() -> None:
    # A goes right, B goes left on nearly the same row; they overlap around frame 10
    frames = [[_obj("", 40 + 8 * i, 60), _obj("", 160 - 8 * i, 64)] for i in range(16)]
    out = _run(RegionTracker(), frames)
    a, b = out[0]
    assert out[-1] == [a, b]
    assert out[5] == [a, b] and out[10] == [a, b]


def test_swapped_ids_are_overruled_in_auto_mode_and_kept_in_always_mode() -> None:
    frames = _moving(("1", "2"))
    for i in range(10, 20):  # the detector swaps the ids from frame 10 on
        frames[i] = [_obj("2", 30 + 6 * i, 40), _obj("1", 170 - 6 * i, 80)]
    auto = _run(RegionTracker(TrackerConfig(use_ids="auto")), frames)
    assert all(ids == ["1", "2"] for ids in auto)  # tracks follow the objects
    always = _run(RegionTracker(TrackerConfig(use_ids="always")), frames)
    assert always[9] == ["1", "2"] and always[10] == ["2", "1"]  # tracks follow the ids


def test_fast_motion_with_ids_keeps_the_id() -> None:
    # jumps of 60 px (no overlap between frames) with stable ids: ids are trusted
    frames = [[_obj("5", 20 + 60 * (i % 3), 50)] for i in range(6)]
    out = _run(RegionTracker(), frames)
    assert all(ids == ["5"] for ids in out)


def test_disappearing_and_returning_within_expiry_without_ids() -> None:
    frames = _moving(("", ""), n=20)
    for i in range(8, 13):  # A hidden for 0.5 s, keeps moving
        frames[i] = frames[i][1:]
    out = _run(RegionTracker(TrackerConfig(expiry_ns=2 * S)), frames)
    a, b = out[0]
    assert out[10] == [b]
    assert out[13] == [a, b] and out[19] == [a, b]


def test_returning_after_expiry_starts_a_new_track() -> None:
    frames = _moving(("", ""), n=20)
    for i in range(5, 15):  # hidden for 1 s > expiry 0.5 s
        frames[i] = frames[i][1:]
    tracker = RegionTracker(TrackerConfig(expiry_ns=S // 2))
    out = _run(tracker, frames)
    a, b = out[0]
    assert out[15][1] == b
    assert out[15][0] not in (a, b)
    assert a not in tracker.tracks


def test_returning_with_same_id_or_new_id() -> None:
    frames = _moving(("1", "2"), n=16)
    for i in range(5, 9):
        frames[i] = frames[i][1:]
    for i in range(9, 16):  # A comes back under a new detector id "3"
        frames[i] = [_obj("3", 30 + 6 * i, 40), frames[i][1]]
    tracker = RegionTracker()
    out = _run(tracker, frames)
    assert out[9] == ["1", "2"] and out[15] == ["1", "2"]
    assert tracker.track_for_alias("3") == "1"
    assert tracker.track_for_alias("1") is None


def test_mixed_ids_and_missing_ids() -> None:
    frames = [[_obj("car", 30 + 6 * i, 40), _obj("", 170 - 6 * i, 80)] for i in range(10)]
    out = _run(RegionTracker(), frames)
    assert out[0][0] == "car" and out[0][1] != "car"
    assert all(ids == out[0] for ids in out)


def test_never_mode_ignores_ids() -> None:
    frames = _moving(("1", "2"))
    out = _run(RegionTracker(TrackerConfig(use_ids="never")), frames)
    assert out[0][0] not in ("1", "2") and all(ids == out[0] for ids in out)


def test_mask_iou_used_when_masks_exist() -> None:
    a = np.zeros((H, W), dtype=bool)
    a[10:30, 10:14] = True  # a thin vertical bar ...
    a[26:30, 10:30] = True  # ... with a foot: an L shape
    b = np.zeros((H, W), dtype=bool)
    b[10:24, 16:30] = True  # a block inside the same box, disjoint from the L
    ra, rb = Region("a", mask=a), Region("b", mask=b)
    boxes = [region_box(ra)], [region_box(rb)]
    assert pairwise_iou(boxes[0], [None], boxes[1], [None])[0, 0] > 0.3
    assert pairwise_iou(boxes[0], [a], boxes[1], [b])[0, 0] == 0.0
    assert pairwise_iou(boxes[0], [a], boxes[0], [a])[0, 0] == pytest.approx(1.0)


def test_bad_input_raises() -> None:
    with pytest.raises(RegionError):
        RegionTracker().update(0, [_obj("x", 50, 50), _obj("x", 100, 50)])
    with pytest.raises(RegionError):
        RegionTracker().update(0, [Region("e", mask=np.zeros((H, W), dtype=bool))])
    with pytest.raises(RegionError):
        RegionTracker().update(0, [Region("n", box=(1.0, float("nan"), 5.0, 5.0))])
    with pytest.raises(RegionError):
        RegionTracker().update(0, [Region("n", box=(1.0, 2.0, 5.0))])  # type: ignore[arg-type]
    with pytest.raises(InputError):
        TrackerConfig(use_ids="sometimes")
    with pytest.raises(InputError):
        TrackerConfig(iou_threshold=0.0)


def test_crop_mask_iou_equals_full_frame_iou() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = np.zeros((H, W), dtype=bool)
        b = np.zeros((H, W), dtype=bool)
        for m in (a, b):  # a block with random holes, somewhere
            y, x = rng.integers(0, H - 20), rng.integers(0, W - 30)
            h, w = rng.integers(2, 20), rng.integers(2, 30)
            m[y : y + h, x : x + w] = rng.random((h, w)) < 0.7
            m[y, x] = True
        want = np.count_nonzero(a & b) / np.count_nonzero(a | b)
        assert CropMask.from_mask(a).iou(CropMask.from_mask(b)) == pytest.approx(want)
        dx, dy = int(rng.integers(-5, 6)), int(rng.integers(-5, 6))
        shifted = np.zeros_like(a)
        shifted[max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = a[
            max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)
        ]
        if shifted.sum() == a.sum():  # not clipped at the border
            want = np.count_nonzero(shifted & b) / np.count_nonzero(shifted | b)
            assert CropMask.from_mask(a).shifted(dx, dy).iou(CropMask.from_mask(b)) == pytest.approx(want)
