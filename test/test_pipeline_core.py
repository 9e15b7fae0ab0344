"""Pipeline core without a model: region resolution, store joins, describe policy, references."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gar_ros.errors import QueryError, RegionError, TooManyRegionsError, UnknownRegionError
from gar_ros.pipeline import DescribePolicy, Frame, FrameStore, RegionSet, map_references
from gar_ros.pipeline.references import neutralise
from gar_ros.pipeline.regions import resolve_region, resolve_regions
from gar_ros.types import Region

from _pipeline_helpers import make_image

W, H = 64, 48


# ----------------------------------------------------------------------------- regions
def test_frame_sized_mask_sets_tight_box():
    mask = np.zeros((H, W), bool)
    mask[10:20, 5:15] = True
    r = resolve_region(Region("a", mask=mask), W, H)
    assert r.box == (5.0, 10.0, 15.0, 20.0)
    assert r.mask.shape == (H, W) and r.mask.sum() == 100


def test_box_sized_mask_is_placed_at_box():
    small = np.ones((4, 6), np.uint8)
    small[0, 0] = 0
    r = resolve_region(Region("a", box=(10, 20, 16, 24), mask=small), W, H)
    assert r.mask.shape == (H, W)
    assert r.mask[20:24, 10:16].sum() == 23 and r.mask.sum() == 23
    assert not r.mask[20, 10]


def test_box_sized_mask_partly_outside_is_clipped():
    r = resolve_region(Region("a", box=(60, 44, 70, 52), mask=np.ones((8, 10), bool)), W, H)
    assert r.mask.sum() == 4 * 4
    assert r.box == (60.0, 44.0, 64.0, 48.0)


@pytest.mark.parametrize(
    "region, needle",
    [
        (Region("a", mask=np.ones((10, 10), bool)), "mask is 10x10"),
        (Region("a", mask=np.zeros((H, W), bool)), "empty"),
        (Region("a", box=(100, 100, 200, 200)), "outside"),
        (Region("a", box=(-50, -50, -1, -1)), "outside"),
        (Region("a", box=(5, 5, 5, 9)), "no area"),
        (Region("a", box=(0, 0, math.nan, 4)), "finite"),
        (Region("a", box=(0, 0, 4, 4), score=math.nan), "score"),
        (Region("a", box=(0, 0, 4, 4), score=math.inf), "score"),
        (Region("a"), "neither"),
        (Region("", box=(0, 0, 4, 4)), "without id"),
        (Region("a", mask=np.ones((2, H, W), bool)), "shape"),
    ],
)
def test_bad_regions_are_rejected_with_reason(region, needle):
    with pytest.raises(RegionError, match=needle):
        resolve_region(region, W, H)


def test_box_partly_outside_is_clipped():
    r = resolve_region(Region("a", box=(-10, 40, 20, 100)), W, H)
    assert r.box == (0.0, 40.0, 20.0, 48.0)


def test_duplicate_ids_keep_first_and_report():
    regions = [Region("a", box=(0, 0, 4, 4)), Region("a", box=(8, 8, 12, 12)), Region("b", box=(1, 1, 3, 3))]
    usable, problems = resolve_regions(regions, W, H)
    assert [r.id for r in usable] == ["a", "b"]
    assert usable[0].box == (0.0, 0.0, 4.0, 4.0)
    assert len(problems) == 1 and "duplicate" in problems[0]


def test_nan_depth_becomes_unknown():
    r = resolve_region(Region("a", box=(0, 0, 4, 4), depth=math.nan), W, H)
    assert r.depth is None


# ----------------------------------------------------------------------------- store
def _frame(stamp: int) -> Frame:
    return Frame(make_image(W, H), stamp, "cam")


def _rs(stamp: int, *ids: str) -> RegionSet:
    return RegionSet(stamp, [Region(i, box=(0, 0, 8, 8)) for i in ids], "cam")


def test_join_frame_then_regions_exact_stamp():
    store = FrameStore()
    assert store.add_frame(_frame(100)).joined is None
    ev = store.add_regions(_rs(100, "a"))
    assert ev.joined is not None and ev.joined.frame.stamp == 100
    assert [r.id for r in ev.joined.regions] == ["a"]
    assert store.latest_joined() is ev.joined


def test_join_regions_then_frame():
    store = FrameStore()
    assert store.add_regions(_rs(100, "a")).joined is None
    assert store.pending_count == 1
    ev = store.add_frame(_frame(100))
    assert ev.joined is not None and store.pending_count == 0


def test_no_join_outside_tolerance_and_nearest_inside():
    store = FrameStore(tolerance_ns=10)
    store.add_frame(_frame(100))
    store.add_frame(_frame(125))
    assert store.add_regions(_rs(140, "a")).joined is None  # 15 ns from 125
    ev = store.add_regions(_rs(118, "b"))
    assert ev.joined is not None and ev.joined.frame.stamp == 125
    exact = FrameStore(tolerance_ns=0)
    exact.add_frame(_frame(100))
    assert exact.add_regions(_rs(101, "a")).joined is None


def test_regions_for_frame_never_received_are_counted():
    store = FrameStore(pending_window_ns=1000)
    store.add_regions(_rs(50, "a"))
    ev = store.add_frame(_frame(5000))  # newer frames: stamp 50 will never come
    assert ev.unmatched_regions and ev.unmatched_regions[0].stamp == 50
    ev = store.add_regions(_rs(10, "b"))  # older than the newest frame by more than the window
    assert ev.unmatched_regions and ev.unmatched_regions[0].stamp == 10


def test_regions_wait_times_out():
    store = FrameStore(pending_timeout=1.0)
    rs = _rs(50, "a")
    rs.received = 10.0
    store.add_regions(rs, now=10.0)
    assert store.expire(10.5) == []
    assert [r.stamp for r in store.expire(11.5)] == [50]


def test_frame_buffer_bounded_and_unjoined_frames_counted():
    store = FrameStore(frame_capacity=3)
    dropped = sum(store.add_frame(_frame(s)).frames_without_regions for s in range(10))
    assert store.frame_count == 3 and dropped == 7


def test_joined_at_stamp_and_history():
    store = FrameStore(history=2)
    for s in (1, 2, 3):
        store.add_frame(_frame(s))
        store.add_regions(_rs(s, f"r{s}"))
    assert store.joined_at(0).frame.stamp == 3
    assert store.joined_at(2).frame.stamp == 2
    assert store.joined_at(1) is None  # fell out of the history


def test_join_rejects_bad_regions_with_problems():
    store = FrameStore()
    store.add_frame(_frame(1))
    rs = RegionSet(1, [Region("a", mask=np.ones((5, 5), bool)), Region("b", box=(0, 0, 4, 4))])
    ev = store.add_regions(rs)
    assert [r.id for r in ev.joined.regions] == ["b"]
    assert ev.joined.problems and "mask is 5x5" in ev.joined.problems[0]


# ----------------------------------------------------------------------------- policy
def _regions(*ids: str) -> list[Region]:
    return [Region(i, box=(0, 0, 4, 4)) for i in ids]


def test_policy_new_tracks_once_then_after_period():
    p = DescribePolicy(redescribe_period=5.0, max_regions_per_frame=8)
    assert [r.id for r in p.select(_regions("a", "b"), 0.0)] == ["a", "b"]
    p.mark_described(["a", "b"], 0.0)
    for t in (0.1, 1.0, 2.0):
        assert p.select(_regions("a", "b"), t) == []  # not on every frame
    assert [r.id for r in p.select(_regions("a", "b", "c"), 2.0)] == ["c"]
    p.mark_described(["c"], 2.0)
    assert p.select(_regions("a", "b", "c"), 4.9) == []
    assert [r.id for r in p.select(_regions("a", "b", "c"), 5.5)] == ["a", "b"]


def test_policy_period_zero_never_redescribes():
    p = DescribePolicy(redescribe_period=0.0)
    p.select(_regions("a"), 0.0)
    p.mark_described(["a"], 0.0)
    assert p.select(_regions("a"), 1e6) == []


def test_policy_cap_prefers_new_then_oldest():
    p = DescribePolicy(redescribe_period=1.0, max_regions_per_frame=2)
    p.select(_regions("a", "b"), 0.0)
    p.mark_described(["a"], 0.0)
    p.mark_described(["b"], 0.5)
    chosen = p.select(_regions("b", "a", "n1", "n2", "n3"), 3.0)
    assert [r.id for r in chosen] == ["n1", "n2"]
    p.mark_described(["n1", "n2"], 3.0)
    assert [r.id for r in p.select(_regions("b", "a", "n1", "n2", "n3"), 3.1)] == ["n3", "a"]


def test_policy_unselected_region_stays_due():
    p = DescribePolicy(max_regions_per_frame=1)
    assert [r.id for r in p.select(_regions("a", "b"), 0.0)] == ["a"]
    p.mark_described(["a"], 0.0)
    assert [r.id for r in p.select(_regions("a", "b"), 0.1)] == ["b"]


def test_policy_forgets_expired_tracks_and_time_reset():
    p = DescribePolicy(track_expiry=10.0)
    p.select(_regions("a"), 0.0)
    p.mark_described(["a"], 0.0)
    p.select(_regions("b"), 20.0)
    assert p.track_count == 1
    assert [r.id for r in p.select(_regions("a"), 21.0)] == ["a"]  # forgotten, so new again
    p.mark_described(["a"], 21.0)
    assert [r.id for r in p.select(_regions("a"), 0.0)] == ["a"]  # time went back: reset


# ----------------------------------------------------------------------------- references
def test_references_map_in_order_of_appearance_then_region_ids():
    m = map_references(
        "is <region:7> left of <region:cup_3>? compare with <region:7>",
        ["x", "cup_3"],
        {"7", "cup_3", "x"},
        max_prompts=5,
    )
    assert m.region_ids == ["7", "cup_3", "x"]
    assert m.question == "is <Prompt0> left of <Prompt1>? compare with <Prompt0>"
    assert m.referenced == 2


def test_unknown_ids_named():
    with pytest.raises(UnknownRegionError) as info:
        map_references("what is <region:a> and <region:zz>?", ["q"], {"a"}, max_prompts=5)
    assert info.value.ids == ["zz", "q"]


def test_more_than_five_regions_invalid():
    ids = [str(i) for i in range(6)]
    with pytest.raises(TooManyRegionsError):
        map_references("compare", ids, set(ids), max_prompts=5)


def test_long_and_empty_questions_invalid():
    with pytest.raises(QueryError, match="10000 characters"):
        map_references("x" * 10_000, ["a"], {"a"}, max_prompts=5, max_chars=2000)
    with pytest.raises(QueryError, match="empty"):
        map_references("  \x00 ", ["a"], {"a"}, max_prompts=5)


def test_special_tokens_neutralised():
    q = "<|begin_of_text|> <|eot_id|><image> what is <Prompt0> and <Prompt3> <region:a>"
    m = map_references(q, [], {"a"}, max_prompts=5)
    assert "<|" not in m.question and "<image>" not in m.question
    assert "<Prompt3>" not in m.question  # only one region: slot 3 does not exist
    assert m.question.count("<Prompt0>") == 2
    assert neutralise("<|eot_id|>") == "< |eot_id|>"
