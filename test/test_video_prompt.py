"""The clip prompt: K image blocks, K replay slots, token counts, template, K = 0 equivalence."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from _video_helpers import H, W, image, load_tiny, square
from gar_ros.errors import InputError, QueryError, TooManyRegionsError, UnknownRegionError
from gar_ros.model.prompts import DESCRIBE_PROMPT_INDEX
from gar_ros.model.video import (
    ask_clip,
    clip_embeddings,
    clip_frames,
    clip_prompt_ids,
    describe_clip,
    encode_clip,
    prepare_clip,
    _parts,
)

QUESTION = "Which way did <Prompt0> move: left or right?"


@pytest.fixture(scope="module")
def model():
    return load_tiny()


def _clip(k: int, ids: tuple[str, ...] = ("a",), hidden: dict[str, set[int]] | None = None):
    hidden = hidden or {}
    regions = []
    for f in range(k):
        regs = {}
        for j, rid in enumerate(ids):
            if f not in hidden.get(rid, set()):
                regs[rid] = square(rid, 5 + 10 * f, 5 + 25 * j)
        regions.append(regs)
    return clip_frames([image(f) for f in range(k)], regions, stamps=[100 * f for f in range(k)])


def _count(ids: list[int], token: int) -> int:
    return sum(1 for t in ids if t == token)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_describe_token_counts(model, k: int) -> None:
    cfg = model.config
    inputs = prepare_clip(cfg, model.processor.builder, _clip(k), ["a"], None)
    ids = inputs.prompt.input_ids
    assert _count(ids, cfg.image_token_id) == k * cfg.tokens_per_tile
    for slot in range(cfg.prompt_numbers):
        expected = cfg.replay_tokens if slot < k else 0
        assert _count(ids, cfg.crop_token_id(slot)) == expected
    # slots follow each other in frame order inside the one region line
    pos = [ids.index(cfg.crop_token_id(s)) for s in range(k)]
    assert pos == sorted(pos) and all(b - a == cfg.replay_tokens for a, b in zip(pos, pos[1:]))
    assert len(inputs.vision) == k
    assert all(v.pixel_values.shape == (1, 3, cfg.tile_size, cfg.tile_size) for v in inputs.vision)
    assert all(v.prompt_map.shape == (1, 1, cfg.tile_size, cfg.tile_size) for v in inputs.vision)


def test_k1_text_is_the_image_template_with_slot_zero(model) -> None:
    """Same text as the single-image describe; only the image block and crop id differ."""
    cfg, builder = model.config, model.processor.builder
    clip = clip_prompt_ids(builder, cfg.tokens_per_tile, 1, [[0]], None).input_ids
    image_ids = builder.describe_ids(cfg.tokens_per_tile)  # a 1-tile "image" for comparison
    swapped = [cfg.crop_token_id(0) if t == cfg.crop_token_id(DESCRIBE_PROMPT_INDEX) else t for t in image_ids]
    assert clip == swapped
    q_clip = clip_prompt_ids(builder, cfg.tokens_per_tile, 1, [[0], [0]], QUESTION).input_ids
    q_image = builder.question_ids(cfg.tokens_per_tile, [0, 1], QUESTION)
    # region 1's block uses slot 0 too (frame 0), so only crop ids differ
    crop1 = cfg.crop_token_id(1)
    assert [cfg.crop_token_id(0) if t == crop1 else t for t in q_image] == q_clip


def test_question_layout_and_missing_region(model) -> None:
    cfg = model.config
    clip = _clip(4, ("a", "b"), hidden={"b": {1, 2}})
    inputs = prepare_clip(cfg, model.processor.builder, clip, ["a", "b"], QUESTION)
    ids = inputs.prompt.input_ids
    assert inputs.prompt.visible == [[0, 1, 2, 3], [0, 3]]
    n = cfg.replay_tokens
    assert _count(ids, cfg.crop_token_id(0)) == 2 * n
    assert _count(ids, cfg.crop_token_id(1)) == n
    assert _count(ids, cfg.crop_token_id(2)) == n
    assert _count(ids, cfg.crop_token_id(3)) == 2 * n
    assert _count(ids, cfg.image_token_id) == 4 * cfg.tokens_per_tile
    # region b's line (after <Prompt1>: ) has blocks of frames 0 and 3 only
    p1 = model.processor.builder.prompt_token_ids[1]
    second = [i for i, t in enumerate(ids) if t == p1][1]
    tail = ids[second:]
    first_crop = next(i for i, t in enumerate(tail) if t in cfg.crop_tokens_ids)
    assert tail[first_crop : first_crop + 2 * n] == [cfg.crop_token_id(0)] * n + [cfg.crop_token_id(3)] * n
    # frames where b is hidden do not mark it in their prompt map
    assert set(inputs.boxes[1]) == {0, 3}


def test_replay_slot_k_holds_frame_k_features(model) -> None:
    """Explicit computation: frame k's tile tokens + the official double-scaled roi_align."""
    cfg = model.config
    clip = _clip(3)
    parts = _parts(model)
    inputs = prepare_clip(cfg, parts.builder, clip, ["a"], None)
    feats = encode_clip(parts, clip, inputs)
    with torch.inference_mode():
        emb = clip_embeddings(cfg, parts.language.embed, inputs, feats)
    ids = torch.tensor(inputs.prompt.input_ids)
    side = cfg.tokens_per_side
    image_rows = emb[ids == cfg.image_token_id]
    assert torch.equal(image_rows, torch.cat(feats, dim=0).to(emb.dtype))
    for k in range(3):
        # frame k alone through the vision engine gives the cached features
        alone = model.vision.encode(inputs.vision[k].pixel_values, inputs.vision[k].prompt_map)[0]
        assert torch.allclose(alone, feats[k], atol=1e-5)
        mask = clip[k].regions["a"].mask
        ys, xs = np.nonzero(mask)
        x1, y1, x2, y2 = xs.min() / W, ys.min() / H, xs.max() / W, ys.max() / H  # inclusive max
        fmap = feats[k].reshape(side, side, -1).permute(2, 0, 1)[None].float()
        stride = cfg.tile_size / side
        roi = torch.tensor([[0, x1 * side, y1 * side, x2 * side, y2 * side]], dtype=torch.float32)
        expected = roi_align(fmap, roi, (side, side), spatial_scale=1 / stride, sampling_ratio=2, aligned=True)
        expected = expected[0].permute(1, 2, 0).reshape(side * side, -1)
        got = emb[ids == cfg.crop_token_id(k)]
        assert torch.allclose(got, expected.to(emb.dtype), atol=1e-5)


def test_k0_reproduces_the_single_image_path(model) -> None:
    clip = _clip(3, ("a", "b"))
    newest = clip[-1]
    want = model.describe(newest.image, [newest.regions["a"]], max_new_tokens=8)[0]
    got = describe_clip(model, clip, "a", max_new_tokens=8, k=0)
    assert got.token_ids == want.token_ids and got.text == want.text
    assert got.frame_stamps == [newest.stamp]
    q = "Is <Prompt0> left of <Prompt1>?"
    want_a = model.ask(newest.image, [newest.regions["a"], newest.regions["b"]], q, max_new_tokens=6)
    got_a = ask_clip(model, clip, ["a", "b"], q, max_new_tokens=6, k=0)
    assert got_a.token_ids == want_a.token_ids and got_a.frame_stamp == newest.stamp


def test_clip_generation_uses_all_frames_and_reports_stamps(model) -> None:
    clip = _clip(4, hidden={"a": {1}})
    out = describe_clip(model, clip, "a", max_new_tokens=6)
    assert out.frame_stamps == [0, 200, 300]  # newest last, the hidden frame not listed
    assert 0 < len(out.token_ids) <= 6
    # the context matters: the same region over fewer frames gives a different first-step output
    parts = _parts(model)
    logits = []
    for frames in (clip, clip[-1:]):
        inputs = prepare_clip(model.config, parts.builder, frames, ["a"], None)
        feats = encode_clip(parts, frames, inputs)
        with torch.inference_mode():
            emb = clip_embeddings(model.config, parts.language.embed, inputs, feats)
            logits.append(parts.language.prefill(emb[None], torch.ones(1, emb.shape[0], dtype=torch.long))[0][0, -1])
    assert not torch.allclose(logits[0], logits[1])


def test_cancel_through_on_text(model) -> None:
    seen: list[str] = []

    def on_text(text: str) -> bool:
        seen.append(text)
        return len(seen) < 2

    ans = ask_clip(model, _clip(3), ["a"], QUESTION, max_new_tokens=10, on_text=on_text)
    assert ans.message == "cancelled" and len(ans.token_ids) <= 2 and len(seen) == 2
    assert ans.frame_stamp == 200


def test_bad_clips_raise(model) -> None:
    cfg, builder = model.config, model.processor.builder
    with pytest.raises(InputError):
        prepare_clip(cfg, builder, _clip(6), ["a"], None)  # more frames than crop slots
    with pytest.raises(UnknownRegionError):
        prepare_clip(cfg, builder, _clip(2), ["zz"], None)
    with pytest.raises(TooManyRegionsError):
        prepare_clip(cfg, builder, _clip(2, tuple("abcdef")), list("abcdef"), QUESTION)
    with pytest.raises(QueryError):
        prepare_clip(cfg, builder, _clip(2), ["a"], "what about <Prompt3>?")
    with pytest.raises(InputError):
        prepare_clip(cfg, builder, _clip(2)[::-1], ["a"], None)  # newest first
    with pytest.raises(InputError):
        prepare_clip(cfg, builder, [], ["a"], None)
    with pytest.raises(InputError):
        prepare_clip(cfg, builder, _clip(2), ["a"], None, prompt_map="everything")


def test_clip_forward_matches_inference_and_has_gradients(model) -> None:
    """The training path (clip_forward) sees the same prompt as inference and trains the vision side."""
    from gar_ros.model.video import clip_forward

    cfg, tm = model.config, model.torch_model
    clip = _clip(3)
    parts = _parts(model)
    inputs = prepare_clip(cfg, parts.builder, clip, ["a"], QUESTION)
    answer = model.processor.tokenizer("left", add_special_tokens=False)["input_ids"] + [sorted(model.eos_ids)[0]]
    needs = {n: p.requires_grad for n, p in tm.named_parameters()}
    try:
        for p in tm.parameters():
            p.requires_grad_(True)
        loss, logits = clip_forward(tm, [inputs, inputs], [answer, answer[-1:]])
        assert torch.isfinite(loss)
        loss.backward()
        grad = tm.mask_patch_embedding.weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0
    finally:
        tm.zero_grad(set_to_none=True)
        for n, p in tm.named_parameters():
            p.requires_grad_(needs[n])
    feats = encode_clip(parts, clip, inputs)
    with torch.inference_mode():
        emb = clip_embeddings(cfg, parts.language.embed, inputs, feats)
        ref = parts.language.prefill(emb[None], torch.ones(1, emb.shape[0], dtype=torch.long))[0][0, -1]
    n = len(inputs.prompt.input_ids)
    assert torch.allclose(logits[0, n - 1].detach().float(), ref.float(), atol=1e-4)


def test_task_clip_inputs_match_the_context_choice(model) -> None:
    """Training inputs of a synthetic motion clip pick the keyframes FrameContext picks."""
    from gar_ros.context.frame_context import ContextConfig, FrameContext
    from gar_ros.model.video import task_clip_inputs
    from gar_ros.synthetic.tasks import make_motion

    sample = make_motion(7, n_frames=6)
    inputs = task_clip_inputs(model.config, model.processor.builder, sample, 3)
    ctx = FrameContext(ContextConfig(context_frames=3, context_window=1.0, history_interval=0.0))
    for k, scene in enumerate(sample.frames):
        ctx.add_frame((scene.stamp or k * 100_000_000), scene.image, scene.regions())
    rid = sample.regions[0].id
    clip = ctx.clip([rid])
    assert [f.stamp for f in clip] == inputs.frame_stamps
    ctx_inputs = prepare_clip(model.config, model.processor.builder, clip, [rid], sample.question)
    assert ctx_inputs.prompt.input_ids == inputs.prompt.input_ids
    assert ctx_inputs.boxes == inputs.boxes
    assert all(torch.equal(a.prompt_map, b.prompt_map) for a, b in zip(ctx_inputs.vision, inputs.vision))


def test_replay_switch_leaves_crop_embeddings(model) -> None:
    cfg = model.config
    clip = _clip(2)
    parts = _parts(model)
    inputs = prepare_clip(cfg, parts.builder, clip, ["a"], None)
    feats = encode_clip(parts, clip, inputs)
    ids = torch.tensor(inputs.prompt.input_ids)
    with torch.inference_mode():
        off = clip_embeddings(cfg, parts.language.embed, inputs, feats, replay=False)
        on = clip_embeddings(cfg, parts.language.embed, inputs, feats)
        crop = parts.language.embed(torch.tensor([[cfg.crop_token_id(1)]]))[0, 0]
    assert torch.equal(off[ids == cfg.crop_token_id(1)][0], crop)
    assert not torch.equal(on[ids == cfg.crop_token_id(1)][0], crop)
    assert torch.equal(off[ids == cfg.image_token_id], on[ids == cfg.image_token_id])
