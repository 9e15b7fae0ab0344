"""Properties of the synthetic scene, clip and task generators (no model needed)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from gar_ros.errors import InputError
from gar_ros.synthetic.scenes import generate_clip, generate_scene
from gar_ros.synthetic.shapes import mask_box, shape_mask
from gar_ros.synthetic.tasks import (
    CHOICE_KINDS, LETTERS, MOTION_QUESTION, first_letter, is_correct, make_choice,
    make_describe, make_free, make_motion, parse_description,
)
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, COLOURS, EXTRA_SHAPES, SHAPES


def test_scene_is_a_pure_function_of_the_seed() -> None:
    a, b, c = generate_scene(7), generate_scene(7), generate_scene(8)
    assert np.array_equal(a.image, b.image)
    assert [o.label for o in a.objects] == [o.label for o in b.objects]
    assert not np.array_equal(a.image, c.image)


def test_scene_invariants_over_many_seeds() -> None:
    counts = collections.Counter()
    colours, shapes, sizes, backgrounds = set(), set(), set(), set()
    for seed in range(150):
        scene = generate_scene(seed, (96, 80))
        h, w = scene.image.shape[:2]
        assert scene.image.dtype == np.uint8 and scene.image.shape == (80, 96, 3)
        assert 2 <= len(scene.objects) <= 6
        counts[len(scene.objects)] += 1
        labels = [o.label for o in scene.objects]
        assert len(set(labels)) == len(labels)
        assert len({o.colour for o in scene.objects}) == len(scene.objects)  # distinct colours
        union = np.zeros((h, w), bool)
        for o in scene.objects:
            assert o.mask.shape == (h, w) and o.mask.dtype == bool
            assert o.area > 20
            assert not (union & o.mask).any()  # no overlap
            union |= o.mask
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert o.box == mask_box(o.mask)
            assert o.label == f"{o.colour} {o.shape}"
            # the object's pixels carry its colour (within jitter + noise)
            mean = scene.image[o.mask].astype(float).mean(axis=0)
            assert np.abs(mean - np.asarray(COLOURS[o.colour])).max() < 45
            colours.add(o.colour), shapes.add(o.shape), sizes.add(o.size)
        backgrounds.add(scene.background["kind"])
    assert set(counts) == {2, 3, 4, 5, 6}
    assert len(colours) >= 6 and len(shapes) >= 4 and sizes == {"small", "large"}
    assert backgrounds == {"plain", "gradient", "stripes", "checker"}


def test_shapes_differ_and_fit_their_radius() -> None:
    masks = {s: shape_mask(s, 32, 32, 20, 64, 64) for s in (*SHAPES, *EXTRA_SHAPES)}
    for s, m in masks.items():
        x1, y1, x2, y2 = mask_box(m)
        assert x1 >= 11 and y1 >= 11 and x2 <= 53 and y2 <= 53, s
    areas = {s: int(m.sum()) for s, m in masks.items()}
    assert areas["circle"] > areas["star"] and areas["square"] > areas["triangle"]
    for a in masks:
        for b in masks:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.85, (a, b)
    with pytest.raises(InputError):
        shape_mask("hexagon", 10, 10, 5, 20, 20)


def test_duplicate_colour_scene() -> None:
    scene = generate_scene(3, n_objects=4, duplicate_colour=True)
    assert scene.objects[0].colour == scene.objects[1].colour
    assert scene.objects[0].shape != scene.objects[1].shape


def test_clip_moves_objects_consistently() -> None:
    clip = generate_clip(11, n_frames=5)
    assert len(clip) == 5
    ids = [o.id for o in clip[0].objects]
    for frame in clip:
        assert [o.id for o in frame.objects] == ids
    assert [f.stamp for f in clip] == sorted({f.stamp for f in clip})
    for i in range(len(ids)):
        xs = [f.objects[i].centre[0] for f in clip]
        steps = np.diff(xs)
        assert np.all(np.abs(steps) >= 3.0 - 1e-6) and np.all(np.abs(steps) <= 5.0 + 1e-6)
        assert np.all(np.sign(steps) == np.sign(steps[0]))
        assert len({f.objects[i].label for f in clip}) == 1
    for frame in clip:  # objects stay apart in every frame
        union = np.zeros(frame.image.shape[:2], bool)
        for o in frame.objects:
            assert not (union & o.mask).any()
            union |= o.mask


def test_bad_arguments_raise_input_errors() -> None:
    with pytest.raises(InputError):
        generate_scene(0, (16, 16))
    with pytest.raises(InputError):
        generate_scene(0, n_objects=len(COLOUR_NAMES) + 1)
    with pytest.raises(InputError):
        generate_clip(0, n_frames=0)
