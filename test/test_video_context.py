"""FrameContext with a model: K = 0 equals the image path; frames encoded once and reused."""
from __future__ import annotations

import pytest

from _video_helpers import image, load_tiny, square
from gar_ros.context.frame_context import ContextConfig, FrameContext
from gar_ros.errors import UnknownRegionError

DT = 100_000_000
QUESTION = "Which way did <Prompt0> move: left or right?"


@pytest.fixture(scope="module")
def model():
    return load_tiny()


def _frame(i: int, with_b: bool = True):
    regions = [square("a", 5 + 4 * i, 5)]
    if with_b:
        regions.append(square("b", 60 - 3 * i, 35))
    return i * DT, image(i), regions


def test_k0_context_is_the_single_image_path(model) -> None:
    ctx = FrameContext(ContextConfig(context_frames=0))
    for i in range(3):
        ctx.add_frame(*_frame(i), frame_key=f"k{i}")
    stamp, img, regions = _frame(2)
    got = ctx.describe(model, ["a", "b"], max_new_tokens=6)
    want = model.describe(img, regions, max_new_tokens=6)
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    assert all(g.frame_stamps == [stamp] for g in got)
    ans = ctx.ask(model, ["b", "a"], "Is <Prompt0> left of <Prompt1>?", max_new_tokens=5)
    want_a = model.ask(img, regions[::-1], "Is <Prompt0> left of <Prompt1>?", max_new_tokens=5)
    assert ans.token_ids == want_a.token_ids and ans.frame_stamp == stamp


def test_frames_encoded_once_across_descriptions_and_queries(model) -> None:
    """K = 3 keyframes over the last 3 frames: each new frame costs one encoding per region set."""
    ctx = FrameContext(ContextConfig(context_frames=3, context_window=0.2, history_interval=0.0))
    vision = model.vision
    for i in range(3):
        ctx.add_frame(*_frame(i))
    t0 = vision.tiles
    out = ctx.describe(model, ["a"], max_new_tokens=3)[0]
    assert out.frame_stamps == [0, DT, 2 * DT]
    assert vision.tiles - t0 == 3 and ctx.frames_encoded == 3
    # a query on the same region reuses all three frames
    ans = ctx.ask(model, ["a"], QUESTION, max_new_tokens=3)
    assert vision.tiles - t0 == 3 and ans.frame_stamp == 2 * DT
    # consecutive frames: only the new frame is encoded
    for i in range(3, 6):
        ctx.add_frame(*_frame(i))
        out = ctx.describe(model, ["a"], max_new_tokens=3)[0]
        assert out.frame_stamps == [(i - 2) * DT, (i - 1) * DT, i * DT]
        ctx.ask(model, ["a"], QUESTION, max_new_tokens=2)
        assert vision.tiles - t0 == i + 1
    # another region marks other pixels (GAR's mask embedding enters the tower): new encodings,
    # then reused by its own queries
    ctx.describe(model, ["b"], max_new_tokens=2)
    assert vision.tiles - t0 == 6 + 3
    ctx.ask(model, ["b"], "What is <Prompt0>?", max_new_tokens=2)
    assert vision.tiles - t0 == 6 + 3
    # the cached encodings live in the history (and count towards its byte cap)
    assert all(len(rec.features) == 2 for rec in list(ctx.history)[-3:])
    assert ctx.history.nbytes == sum(r.nbytes for r in ctx.history)


def test_frame_prompt_maps_encode_each_frame_once_for_all_regions(model) -> None:
    ctx = FrameContext(ContextConfig(context_frames=3, context_window=0.2, history_interval=0.0))
    for i in range(3):
        ctx.add_frame(*_frame(i))
    clip_ab = ctx.clip(["a", "b"])
    from gar_ros.model.video import ask_clip, describe_clip

    t0 = model.vision.tiles
    describe_clip(model, ctx.clip(["a"]), "a", max_new_tokens=2, prompt_map="frame")
    describe_clip(model, ctx.clip(["b"]), "b", max_new_tokens=2, prompt_map="frame")
    ask_clip(model, clip_ab, ["a", "b"], "Is <Prompt0> left of <Prompt1>?", max_new_tokens=2, prompt_map="frame")
    assert model.vision.tiles - t0 == 3


def test_region_missing_in_some_frames_and_unknown_ids(model) -> None:
    ctx = FrameContext(ContextConfig(context_frames=4, context_window=1.0, history_interval=0.0))
    for i in range(5):
        ctx.add_frame(*_frame(i, with_b=i != 2))
    out = ctx.describe(model, ["b"], max_new_tokens=2)[0]
    assert 2 * DT not in out.frame_stamps and out.frame_stamps[-1] == 4 * DT
    assert len(out.frame_stamps) == 4
    ans = ctx.ask(model, ["a", "b"], "Is <Prompt0> left of <Prompt1>?", max_new_tokens=2)
    assert ans.frame_stamp == 4 * DT
    with pytest.raises(UnknownRegionError):
        ctx.describe(model, ["zzz"])


def test_context_frames_capped_at_prompt_numbers(model) -> None:
    ctx = FrameContext(ContextConfig(context_frames=9, context_window=5.0, history_interval=0.0))
    for i in range(8):
        ctx.add_frame(*_frame(i))
    out = ctx.describe(model, ["a"], max_new_tokens=2)[0]
    assert len(out.frame_stamps) == model.config.prompt_numbers == 5
    assert out.frame_stamps[-1] == 7 * DT


def test_batched_clip_descriptions_equal_single_ones(model) -> None:
    from gar_ros.model.video import describe_clip

    ctx = FrameContext(ContextConfig(context_frames=3, context_window=1.0, history_interval=0.0))
    for i in range(4):
        ctx.add_frame(*_frame(i, with_b=i != 1))
    batched = ctx.describe(model, ["a", "b"], max_new_tokens=6)
    single = [describe_clip(model, ctx.clip([rid]), rid, max_new_tokens=6) for rid in ("a", "b")]
    assert [b.token_ids for b in batched] == [s.token_ids for s in single]
    assert [b.frame_stamps for b in batched] == [s.frame_stamps for s in single]
    assert batched[0].frame_stamps != batched[1].frame_stamps  # b is missing in frame 1
