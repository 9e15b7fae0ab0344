"""A question that needs the past, on the embedded tiny model trained on clips.

"Which way did <Prompt0> move: left or right?" over synthetic clips (gar_ros.synthetic), asked
through the FrameContext (tracks + keyframes + clip prompt) with context_frames = 3 and with 0.
Every clip is asked forwards and time-reversed (answer flipped), so the set is balanced and
chance is 50 %. Needs >= 80 % with context and near chance without; prints both accuracies. Skipped (with the
reason) while the embedded model is absent or was not trained on clips.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = REPO / "gar_ros" / "data" / "tiny_gar"
SAMPLES = 20  # clips; each is asked forwards and backwards
CONTEXT_FRAMES = 3
CLIP_FRAMES = 5  # 0.4 s of a synthetic clip (0.1 s apart), as trained (3-5 frames); keyframes spread


def _clip_training_status() -> str | None:
    """None when the embedded model exists and its training mixture has motion clips."""
    if not (EMBEDDED / "config.json").is_file():
        return f"embedded tiny model not found at {EMBEDDED}"
    card = EMBEDDED / "training.json"
    if not card.is_file():
        return "embedded tiny model has no training.json"
    mixture = json.loads(card.read_text()).get("recipe", json.loads(card.read_text())).get("mixture", {})
    if float(mixture.get("motion", 0.0)) <= 0.0:
        return "embedded tiny model was not trained on clips (no 'motion' in its training mixture)"
    return None


def _accuracy(model, context_frames: int) -> float:
    """Fraction right over SAMPLES clips, each asked forwards and time-reversed (answer flipped),
    so the set is exactly half "left", half "right" and a constant answer scores 50 %."""
    import dataclasses

    from gar_ros.context.frame_context import ContextConfig, FrameContext
    from gar_ros.synthetic.tasks import is_correct, make_motion
    from gar_ros.training.recipe import EVAL_SEED_BASE

    flip = {"left": "right", "right": "left"}
    correct = 0
    for i in range(SAMPLES):
        sample = make_motion(EVAL_SEED_BASE + i, n_frames=CLIP_FRAMES)
        backwards = dataclasses.replace(sample, answer=flip[sample.answer])
        for case, scenes in ((sample, sample.frames), (backwards, sample.frames[::-1])):
            ctx = FrameContext(
                ContextConfig(context_frames=context_frames, context_window=1.0, history_interval=0.0)
            )
            for k, scene in enumerate(scenes):
                ctx.add_frame(k * 100_000_000, scene.image, scene.regions())
            answer = ctx.ask(model, [sample.regions[0].id], sample.question, max_new_tokens=4)
            correct += int(is_correct(case, answer.text))
    return correct / (2 * SAMPLES)


def test_motion_direction_needs_context() -> None:
    """``GAR_ROS_MOTION_MODEL=<dir>`` evaluates another checkpoint instead of the embedded one."""
    override = os.environ.get("GAR_ROS_MOTION_MODEL")
    reason = None if override else _clip_training_status()
    if reason is not None:
        pytest.skip(reason)
    from gar_ros.model.api import GarModel

    torch.set_num_threads(1)
    model = GarModel.from_pretrained(override or EMBEDDED)
    with_context = _accuracy(model, CONTEXT_FRAMES)
    without = _accuracy(model, 0)
    print(f"\nmotion direction accuracy over {2 * SAMPLES} held-out clips (half reversed): "
          f"context_frames={CONTEXT_FRAMES}: {with_context:.1%}, context_frames=0: {without:.1%}")
    assert with_context >= 0.8
    assert without <= 0.65  # near chance (0.5): a single frame cannot show the direction
