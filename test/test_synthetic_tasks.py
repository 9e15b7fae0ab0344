"""The task generators: GAR prompt conventions and correct reference answers."""
from __future__ import annotations

import pytest

import collections
import re

import numpy as np

from gar_ros.synthetic.tasks import (
    CHOICE_KINDS, LETTERS, MC_SUFFIX, MOTION_QUESTION, first_letter, is_correct, make_choice,
    make_describe, make_free, make_motion, parse_description,
)


def _centre_x(region) -> float:
    return float(np.nonzero(region.mask)[1].mean())


def _centre_y(region) -> float:
    return float(np.nonzero(region.mask)[0].mean())


def test_describe_one_sample_per_object() -> None:
    samples = make_describe(5)
    assert samples and all(s.question is None and len(s.regions) == 1 for s in samples)
    for s in samples:
        parsed = parse_description(s.answer)
        assert s.regions[0].label == f"{parsed['colour']} {parsed['shape']}"
        assert re.fullmatch(r"a (small|large) [a-z]+ [a-z]+", s.answer)


def test_choice_questions_follow_gar_bench_layout_and_are_right() -> None:
    kinds = collections.Counter()
    letters = collections.Counter()
    for seed in range(120):
        s = make_choice(seed)
        kinds[s.kind] += 1
        letters[s.answer] += 1
        lines = s.question.split("\n")
        assert lines[0].startswith("Question: ") and lines[1] == "Options:"
        assert lines[-1] == MC_SUFFIX
        options = lines[2:-1]
        assert 2 <= len(options) <= 4
        assert [o[:3] for o in options] == [f"{L}. " for L in LETTERS[: len(options)]]
        assert s.answer in LETTERS[: len(options)]
        prompts = set(re.findall(r"<Prompt(\d+)>", s.question))
        assert prompts == {str(i) for i in range(len(s.regions))}
        assert 1 <= len(s.regions) <= 4
        chosen = options[LETTERS.index(s.answer)][3:]
        if s.kind in ("colour_options", "shape_options"):
            attr = "colour" if s.kind == "colour_options" else "shape"
            assert parse_description(s.regions[0].label)[attr] == chosen
            continue
        target = s.regions[int(re.fullmatch(r"<Prompt(\d+)>", chosen).group(1))]
        others = [r for r in s.regions if r is not target]
        if s.kind == "leftmost":
            assert all(_centre_x(target) < _centre_x(r) for r in others)
        elif s.kind == "rightmost":
            assert all(_centre_x(target) > _centre_x(r) for r in others)
        elif s.kind == "topmost":
            assert all(_centre_y(target) < _centre_y(r) for r in others)
        elif s.kind == "bottommost":
            assert all(_centre_y(target) > _centre_y(r) for r in others)
        elif s.kind == "largest":
            assert all(target.mask.sum() > r.mask.sum() for r in others)
        elif s.kind == "smallest":
            assert all(target.mask.sum() < r.mask.sum() for r in others)
        elif s.kind == "left_of":
            assert _centre_x(target) < _centre_x(s.regions[0])
            assert all(_centre_x(r) > _centre_x(s.regions[0]) for r in others[1:])
        elif s.kind == "below":
            assert _centre_y(target) > _centre_y(s.regions[0])
        elif s.kind == "same_colour":
            anchor = s.regions[0].label.split()[0]
            assert target.label.split()[0] == anchor
            assert all(r.label.split()[0] != anchor for r in others[1:])
    assert set(kinds) == set(CHOICE_KINDS)
    assert len(letters) == 4


def test_choice_is_reproducible() -> None:
    a, b = make_choice(42), make_choice(42)
    assert a.question == b.question and a.answer == b.answer
    assert np.array_equal(a.image, b.image)


def test_free_and_motion_answers() -> None:
    kinds = collections.Counter()
    multi = collections.Counter()
    for seed in range(90):
        s = make_free(seed)
        kinds[s.kind] += 1
        label = s.regions[0].label
        if s.kind in ("colour", "shape", "size", "what_is"):
            asked = s.meta["asked"]
            assert f"<Prompt{asked}>" in s.question and 1 <= len(s.regions) <= 4
            assert all(f"<Prompt{k}>" not in s.question for k in range(5) if k != asked)
            label = s.regions[asked].label
            multi[len(s.regions) > 1] += 1
        if s.kind == "colour":
            assert s.answer == label.split()[0]
        elif s.kind == "shape":
            assert s.answer == label.split()[1]
        elif s.kind == "size":
            assert s.answer in ("small", "large")
        elif s.kind == "describe_with":
            assert 2 <= len(s.regions) <= 4 and "<Prompt1>" in s.question
            assert parse_description(s.answer)["colour"] == label.split()[0]
        elif s.kind == "is_left_of":
            assert s.answer == ("yes" if _centre_x(s.regions[0]) < _centre_x(s.regions[1]) else "no")
    assert set(kinds) == {"colour", "shape", "size", "what_is", "describe_with", "is_left_of"}
    assert multi[True] > 10 and multi[False] > 10  # single- and multi-region attribute questions
    answers = collections.Counter()
    for seed in range(40):
        m = make_motion(seed, n_frames=4)
        assert m.question == MOTION_QUESTION and len(m.frames) == 4 == len(m.clip_regions)
        xs = [_centre_x(f[0]) for f in m.clip_regions]
        assert (xs[-1] < xs[0]) == (m.answer == "left")
        answers[m.answer] += 1
    assert answers["left"] > 5 and answers["right"] > 5


@pytest.mark.parametrize("speed", [(3.0, 5.0), (8.0, 12.0)])
def test_motion_speed_range(speed) -> None:
    """``speed`` bounds the asked object's horizontal motion per frame (the default is the
    evaluation's 3-5 px; training may draw faster clips)."""
    for seed in range(15):
        m = make_motion(seed, n_frames=4, speed=speed)
        xs = [_centre_x(f[0]) for f in m.clip_regions]
        per_frame = abs(xs[-1] - xs[0]) / 3
        assert speed[0] - 1.0 <= per_frame <= speed[1] + 1.0  # box centres are whole-pixel rounded
    assert make_motion(4).frames[1].image.tobytes() == make_motion(4, speed=(3.0, 5.0)).frames[1].image.tobytes()


def test_scoring_helpers() -> None:
    assert first_letter(" B. <Prompt1>") == "B" and first_letter("no idea") == ""
    assert parse_description("A large pink stars") == {"colour": "pink", "shape": "star", "size": "large"}
    d = make_describe(1)[0]
    assert is_correct(d, d.answer) and not is_correct(d, "a small thing")
    c = make_choice(1)
    assert is_correct(c, c.answer) and not is_correct(c, "Z")
