"""Grounding on constructed scenes: every relation, orderings, ties, overlaps, touching boxes,
label matching and the caption fallback (the captioner is an input of the grounder here)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from gar_ros.query.config import QueryConfig
from gar_ros.query.geometry import Geometry, region_shape
from gar_ros.query.grounding import CaptionCache, Grounder, caption_subject
from gar_ros.query.parse import parse_question
from gar_ros.query.vocabulary import Relation
from gar_ros.types import AnswerStatus, Region

W, H = 200, 150


def box(rid: str, x1: float, y1: float, x2: float, y2: float, label: str = "", depth: float | None = None
        ) -> Region:
    return Region(id=rid, box=(x1, y1, x2, y2), label=label, depth=depth)


def mask_region(rid: str, pixels: np.ndarray, label: str = "") -> Region:
    return Region(id=rid, mask=pixels, label=label)


def rect_mask(x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y1:y2, x1:x2] = True
    return m


def disc_mask(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def ground(regions: Sequence[Region], question: str, **kw) -> tuple[AnswerStatus, list[str], list[str]]:
    """(status, ids, anchors) of the question's target."""
    parsed = parse_question(question)
    g = Grounder(regions, kw.pop("config", None), image_size=(W, H), **kw)
    res = g.resolve(parsed.target, plural=parsed.kind.value in ("count", "exists"))
    return res.status, res.ids, res.anchors


OK, NF, AMB = AnswerStatus.OK, AnswerStatus.NOT_FOUND, AnswerStatus.AMBIGUOUS

# A row of objects: far-left bottle, cup, centre plate, fork, far-right knife; a lamp above the
# plate and a mat below it.
ROW = [
    box("1", 5, 60, 25, 90, "bottle"),
    box("2", 40, 65, 60, 85, "cup"),
    box("3", 90, 60, 120, 90, "plate"),
    box("4", 140, 65, 155, 85, "fork"),
    box("5", 175, 60, 195, 90, "knife"),
    box("6", 95, 10, 115, 30, "lamp"),
    box("7", 90, 120, 120, 140, "mat"),
]

SCENE_CASES = [
    # question, want status, want ids, want anchors
    ("what is the object left of the plate", OK, ["2"], ["3"]),
    ("what is the object right of the plate", OK, ["4"], ["3"]),
    ("what is above the plate", OK, ["6"], ["3"]),
    ("what is below the plate", OK, ["7"], ["3"]),
    ("what is the object closest to the cup", OK, ["1"], ["2"]),
    ("what is the object farthest from the bottle", OK, ["5"], ["1"]),
    ("what is left of the bottle", NF, [], ["1"]),
    ("what is the leftmost object", OK, ["1"], []),
    ("what is the rightmost object", OK, ["5"], []),
    ("what is the topmost object", OK, ["6"], []),
    ("what is the bottommost object", OK, ["7"], []),
    ("what is the second object from the left", OK, ["2"], []),
    ("what is the second object from the right", OK, ["4"], []),
    ("what is the third object from the left", OK, ["3"], []),  # plate, lamp, mat share cx: tie?
    ("what is the object between the cup and the fork", OK, ["3"], ["2", "4"]),
    ("what is between the bottle and the knife", AMB, ["3", "2", "4"], ["1", "5"]),
    ("what is the largest object", OK, ["3"], []),
    ("what is the smallest object", OK, ["4"], []),
    ("what is the object in the middle", OK, ["3"], []),
    ("how many objects are left of the plate", OK, ["1", "2"], ["3"]),
    ("what is the cup", OK, ["2"], []),
    ("what is the mug", OK, ["2"], []),
    ("what is the dog", NF, [], []),
    ("what is the object left of the dog", NF, [], []),
    ("what is the object right of the cup left of the plate", OK, ["3"], ["2", "3"]),
]


@pytest.mark.parametrize("question,status,ids,anchors", SCENE_CASES, ids=[c[0] for c in SCENE_CASES])
def test_row_scene(question: str, status: AnswerStatus, ids: list[str], anchors: list[str]) -> None:
    got_status, got_ids, got_anchors = ground(ROW, question)
    if question == "what is the third object from the left":
        # plate (3), lamp (6) and mat (7) share a centre column: the third from the left is a tie.
        assert got_status is AMB and set(got_ids) == {"3", "6", "7"}
        return
    assert got_status is status, (got_status, got_ids)
    if status is AMB:
        assert set(got_ids) == set(ids)
    else:
        assert got_ids == ids
    if status is not NF:
        assert got_anchors[: len(anchors)] == anchors


def test_left_of_excludes_steep_diagonals_and_prefers_nearest() -> None:
    regions = [
        box("a", 100, 100, 120, 120, "cup"),
        box("near", 70, 100, 90, 120),  # directly left, close
        box("far", 10, 100, 30, 120),  # directly left, far
        box("up", 90, 10, 100, 20),  # up and slightly left: not "left of"
    ]
    assert ground(regions, "what is left of the cup")[:2] == (OK, ["near"])
    status, ids, _ = ground(regions, "how many objects are left of the cup")
    assert status is OK and set(ids) == {"near", "far"}


def test_direction_tie_is_ambiguous_with_both_candidates() -> None:
    regions = [
        box("a", 100, 60, 120, 80, "cup"),
        box("upper", 60, 40, 80, 60),
        box("lower", 60, 80, 80, 100),  # mirror image of "upper" about the cup's centre line
    ]
    parsed = parse_question("what is the object left of the cup")
    res = Grounder(regions).resolve(parsed.target)
    assert res.status is AMB and res.tie and set(res.ids) == {"upper", "lower"}
    assert res.anchors == ["a"]
    assert "upper" in res.message and "which one" in res.message


def test_overlapping_boxes_still_left_of() -> None:
    regions = [box("a", 50, 50, 100, 100, "box"), box("b", 20, 55, 60, 95)]  # overlaps a by 10 px
    assert ground(regions, "what is left of the box")[:2] == (OK, ["b"])
    assert ground(regions, "what is right of the box")[0] is NF


def test_touching_boxes_have_zero_gap_and_are_next_to() -> None:
    regions = [box("a", 50, 50, 100, 100, "box"), box("b", 100, 60, 130, 90, "cup"),
               box("c", 160, 60, 190, 90, "can")]
    geo = Geometry({r.id: region_shape(r) for r in regions}, QueryConfig())
    assert geo.gap("a", "b") == 0.0
    assert geo.gap("a", "c") == pytest.approx(60.0)
    assert ground(regions, "what is next to the box")[:2] == (OK, ["b"])
    assert ground(regions, "what is the object closest to the box")[:2] == (OK, ["b"])


def test_touching_masks_gap_zero_and_separated_masks_gap() -> None:
    a = rect_mask(20, 20, 40, 40)
    b = rect_mask(40, 25, 60, 35)  # shares the edge x = 40
    c = disc_mask(100.0, 30.0, 10.0)
    shapes = {r.id: region_shape(r) for r in (mask_region("a", a), mask_region("b", b), mask_region("c", c))}
    geo = Geometry(shapes, QueryConfig())
    assert geo.gap("a", "b") == 0.0
    assert geo.gap("b", "c") == pytest.approx(100 - 10 - 60, abs=1.5)


def test_on_touching_and_on_surface_from_above() -> None:
    regions = [
        box("table", 20, 80, 180, 140, "table"),
        box("cup", 60, 55, 80, 80, "cup"),  # bottom edge on the table's top edge
        box("bird", 140, 5, 160, 20, "bird"),  # above, far from the table
    ]
    assert ground(regions, "what is on the table")[:2] == (OK, ["cup"])
    assert ground(regions, "what is under the cup")[:2] == (OK, ["table"])
    status, ids, _ = ground(regions, "how many objects are on the table")
    assert ids == ["cup"]
    # seen from above: a plate inside the table's outline is on it
    top = [box("table", 20, 20, 180, 140, "table"), box("plate", 60, 90, 90, 120, "plate")]
    assert ground(top, "what is on the table")[:2] == (OK, ["plate"])


def test_under_needs_horizontal_overlap() -> None:
    regions = [box("lamp", 80, 10, 120, 40, "lamp"), box("rug", 70, 100, 130, 130),
               box("side", 150, 100, 190, 130)]
    assert ground(regions, "what is under the lamp")[:2] == (OK, ["rug"])


def test_near_threshold_and_next_to_excludes_stacked() -> None:
    regions = [box("a", 90, 60, 110, 80, "cup"), box("close", 115, 60, 135, 80),
               box("far", 180, 60, 198, 80), box("stack", 90, 82, 110, 100)]
    status, ids, _ = ground(regions, "how many objects are near the cup")
    assert set(ids) == {"close", "stack"}
    assert ground(regions, "what is next to the cup")[:2] == (OK, ["close"])


def test_near_margin_is_configurable() -> None:
    regions = [box("a", 90, 60, 110, 80, "cup"), box("b", 150, 60, 170, 80)]
    assert ground(regions, "what is near the cup")[0] is NF
    cfg = QueryConfig(near_factor=2.0)
    assert ground(regions, "what is near the cup", config=cfg)[:2] == (OK, ["b"])


def test_between_with_plural_anchor() -> None:
    regions = [box("c1", 10, 60, 30, 80, "cup"), box("c2", 150, 60, 170, 80, "cup"),
               box("x", 80, 62, 100, 78, "ball"), box("y", 80, 5, 100, 20, "bird")]
    status, ids, anchors = ground(regions, "what is between the cups")
    assert (status, ids) == (OK, ["x"]) and set(anchors) == {"c1", "c2"}


def test_in_front_and_behind_with_depth() -> None:
    regions = [box("chair", 50, 50, 90, 110, "chair", depth=2.0),
               box("ball", 60, 60, 80, 80, "ball", depth=1.0),
               box("box", 95, 50, 120, 80, "box", depth=3.5)]
    assert ground(regions, "what is in front of the chair")[:2] == (OK, ["ball"])
    assert ground(regions, "what is behind the chair")[:2] == (OK, ["box"])
    assert ground(regions, "what is the object closest to the camera")[:2] == (OK, ["ball"])
    assert ground(regions, "what is the object farthest from the camera")[:2] == (OK, ["box"])


def test_in_front_from_depth_image() -> None:
    depth = np.full((H, W), 4.0, np.float32)
    depth[60:80, 60:80] = 1.5
    regions = [box("chair", 50, 50, 90, 110, "chair"), box("ball", 60, 60, 80, 80, "ball")]
    depth[50:110, 50:90][depth[50:110, 50:90] == 4.0] = 2.5
    assert ground(regions, "what is in front of the chair", depth_image=depth)[:2] == (OK, ["ball"])


def test_in_front_from_occlusion_without_depth() -> None:
    back = rect_mask(40, 40, 100, 100)
    front = rect_mask(80, 60, 130, 110)
    back &= ~front  # the front object hides part of the back one
    regions = [mask_region("back", back, "box"), mask_region("front", front, "cup")]
    assert ground(regions, "what is in front of the box")[:2] == (OK, ["front"])
    assert ground(regions, "what is behind the cup")[:2] == (OK, ["back"])


def test_in_front_from_lower_edge_without_depth_or_masks() -> None:
    regions = [box("table", 50, 40, 150, 90, "table"), box("chair", 70, 70, 110, 130, "chair")]
    assert ground(regions, "what is in front of the table")[:2] == (OK, ["chair"])
    assert ground(regions, "what is behind the chair")[:2] == (OK, ["table"])


def test_inside() -> None:
    regions = [box("bowl", 40, 40, 120, 100, "bowl"), box("apple", 60, 60, 80, 80, "apple"),
               box("pear", 130, 60, 150, 80, "pear")]
    assert ground(regions, "what is in the bowl")[:2] == (OK, ["apple"])


def test_area_tie_is_ambiguous_and_masks_give_areas() -> None:
    regions = [box("a", 10, 10, 40, 40), box("b", 100, 10, 130, 40), box("c", 60, 100, 70, 110)]
    status, ids, _ = ground(regions, "what is the largest object")
    assert status is AMB and set(ids) == {"a", "b"}
    # the same boxes with masks: a disc in "a" has a smaller area than the full square "b"
    masked = [mask_region("a", disc_mask(25, 25, 15)), mask_region("b", rect_mask(100, 10, 130, 40))]
    assert ground(masked, "what is the largest object")[:2] == (OK, ["b"])


def test_ordinal_out_of_range_is_not_found() -> None:
    regions = [box("a", 10, 10, 40, 40, "cup"), box("b", 100, 10, 130, 40, "cup")]
    status, _, _ = ground(regions, "what is the third cup from the left")
    assert status is NF
    assert ground(regions, "what is the last cup from the left")[:2] == (OK, ["b"])


@pytest.mark.parametrize("label,question", [
    ("Cup", "what is the cup"), ("CUPS", "what is the cup"), ("mug", "what is the cup"),
    ("coffee mug", "what is the cup"), ("cup", "what is the mug"), ("Couch", "what is the sofa"),
    ("television", "what is the tv"), ("person", "what is the man"), ("knives", "what is the knife"),
    ("grey box", "what is the gray box"), ("red square", "what is the red square"),
])
def test_label_matching_case_plural_synonyms(label: str, question: str) -> None:
    regions = [box("x", 10, 10, 40, 40, label), box("y", 100, 10, 130, 40, "zebra")]
    assert ground(regions, question)[:2] == (OK, ["x"])


def test_ambiguous_class_lists_candidates() -> None:
    regions = [box("3", 10, 10, 40, 40, "cup"), box("7", 100, 10, 130, 40, "cup"),
               box("9", 60, 80, 90, 110, "plate")]
    parsed = parse_question("what is the cup")
    res = Grounder(regions).resolve(parsed.target)
    assert res.status is AMB and not res.tie
    assert res.ids == ["3", "7"]
    assert res.message == "there are 2 cups: regions 3 and 7; which one?"


def test_not_found_message() -> None:
    parsed = parse_question("what is the cup")
    res = Grounder([box("1", 0, 0, 10, 10, "plate")]).resolve(parsed.target)
    assert res.status is NF and res.message == "no cup is visible"


def test_ambiguous_anchor_resolved_by_the_relation() -> None:
    # two cups; only the right one has something to its right
    regions = [box("c1", 10, 60, 30, 80, "cup"), box("c2", 100, 60, 120, 80, "cup"),
               box("p", 150, 60, 170, 80, "plate"), box("q", 60, 5, 80, 20, "bird")]
    assert ground(regions, "what is the plate right of the cup")[:3] == (OK, ["p"], ["c2"])


def test_ambiguous_anchor_is_reported() -> None:
    regions = [box("c1", 10, 60, 30, 80, "cup"), box("c2", 100, 60, 120, 80, "cup"),
               box("a", 40, 60, 60, 80), box("b", 130, 60, 150, 80)]
    status, ids, _ = ground(regions, "what is the object right of the cup")
    assert status is AMB and set(ids) == {"c1", "c2"}


def test_explicit_ids_and_pronouns() -> None:
    regions = ROW
    assert ground(regions, "what is the object left of <region:3>")[:3] == (OK, ["2"], ["3"])
    status, ids, _ = ground(regions, "what is <region:42>")
    assert status is NF
    parsed = parse_question("what is left of it")
    res = Grounder(regions, region_ids=["4"]).resolve(parsed.target)
    assert (res.status, res.ids, res.anchors) == (OK, ["3"], ["4"])
    res = Grounder(regions).resolve(parsed.target)
    assert res.status is AnswerStatus.INVALID and "region_ids" in res.message


# ----------------------------------------------------------------------------- caption fallback


class CountingCaptioner:
    """Captions from a fixed table; records which regions it was asked about."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts
        self.calls: list[list[str]] = []

    def __call__(self, regions: Sequence[Region]) -> dict[str, str]:
        self.calls.append([r.id for r in regions])
        return {r.id: self.texts[r.id] for r in regions if r.id in self.texts}


UNLABELLED = [box("1", 10, 60, 30, 80), box("2", 60, 60, 80, 80), box("3", 120, 60, 140, 80)]
CAPTIONS = {"1": "a small red square", "2": "A large blue circle on a grey table.",
            "3": "a small green star"}


def test_missing_labels_use_captions_and_cache_them_per_track() -> None:
    captioner = CountingCaptioner(CAPTIONS)
    cache = CaptionCache()
    assert ground(UNLABELLED, "what is the object left of the blue circle", captioner=captioner,
                  caption_cache=cache)[:3] == (OK, ["1"], ["2"])
    assert captioner.calls == [["1", "2", "3"]]
    assert cache["2"] == CAPTIONS["2"]
    # a new frame of the same tracks: cached captions, no new captioning
    assert ground(UNLABELLED, "what is right of the blue circle", captioner=captioner,
                  caption_cache=cache)[:3] == (OK, ["3"], ["2"])
    assert len(captioner.calls) == 1
    # "table" appears in a caption, but after the subject: it does not make region 2 a table
    assert ground(UNLABELLED, "what is the table", captioner=captioner, caption_cache=cache)[0] is NF


def test_no_label_match_falls_back_to_captions() -> None:
    regions = [box("1", 10, 60, 30, 80, "object"), box("2", 60, 60, 80, 80, "object")]
    captioner = CountingCaptioner({"1": "a thermos", "2": "a ceramic mug"})
    assert ground(regions, "what is the cup", captioner=captioner)[:2] == (OK, ["2"])
    assert captioner.calls == [["1", "2"]]


def test_labels_that_match_need_no_captions() -> None:
    regions = [box("1", 10, 60, 30, 80, "cup"), box("2", 60, 60, 80, 80, "plate")]
    captioner = CountingCaptioner({})
    assert ground(regions, "what is left of the plate", captioner=captioner)[:2] == (OK, ["1"])
    assert captioner.calls == []


def test_colour_modifier_checked_against_caption_when_label_lacks_it() -> None:
    regions = [box("1", 10, 60, 30, 80, "cup"), box("2", 60, 60, 80, 80, "cup"),
               box("3", 100, 60, 120, 80, "plate")]
    captioner = CountingCaptioner({"1": "a white cup", "2": "a red cup with a handle"})
    assert ground(regions, "what is the red cup", captioner=captioner)[:2] == (OK, ["2"])
    assert captioner.calls == [["1", "2"]]  # only the undecided regions were captioned


def test_caption_subject() -> None:
    assert caption_subject("A red mug on a wooden desk.") == "A red mug"
    assert caption_subject("a small red square") == "a small red square"
    assert caption_subject("The image shows a dog, sitting") == "The image shows a dog"


def test_relation_scores_follow_config_margins() -> None:
    regions = [box("a", 100, 60, 120, 80), box("b", 95, 100, 115, 120)]  # 5 px left, 40 px down
    shapes = {r.id: region_shape(r) for r in regions}
    assert Geometry(shapes, QueryConfig()).relation(Relation.LEFT_OF, "b", ("a",)) is None
    loose = QueryConfig(direction_margin=0.0, max_angle_deg=89.0)
    assert Geometry(shapes, loose).relation(Relation.LEFT_OF, "b", ("a",)) is not None


def test_depth_image_in_millimetres_and_invalid_pixels() -> None:
    depth = np.zeros((H, W), np.uint16)  # 0 = no reading
    depth[60:80, 60:70] = 1500
    shape = region_shape(box("r", 60, 60, 80, 80), depth_image=depth)
    assert shape.depth == pytest.approx(1.5)
    assert region_shape(box("r", 100, 100, 120, 120), depth_image=depth).depth is None
    # a region's own depth wins over the image
    assert region_shape(box("r", 60, 60, 80, 80, depth=0.7), depth_image=depth).depth == 0.7


def test_unusable_regions_raise_region_error() -> None:
    from gar_ros.errors import RegionError

    with pytest.raises(RegionError):
        region_shape(Region("x"))
    with pytest.raises(RegionError):
        region_shape(Region("x", box=(10, 10, 5, 20)))
    with pytest.raises(RegionError):
        region_shape(Region("x", box=(0, 0, float("nan"), 5)))
