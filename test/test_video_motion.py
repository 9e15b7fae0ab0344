"""A question that needs the past, on the embedded tiny model trained on clips.

"Which way did <Prompt0> move: left or right?" over synthetic clips (gar_ros.synthetic), asked
through the FrameContext (tracks + keyframes + clip prompt) with context_frames = 3 and with 0.
Needs >= 80 % with context and near chance without; prints both accuracies. Skipped (with the
reason) while the embedded model is absent or was not trained on clips.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = REPO / "gar_ros" / "data" / "tiny_gar"
SAMPLES = 40
CONTEXT_FRAMES = 3
CLIP_FRAMES = 8  # 0.7 s of a synthetic clip (0.1 s apart); keyframes spread over it


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
    from gar_ros.context.frame_context import ContextConfig, FrameContext
    from gar_ros.synthetic.tasks import is_correct, make_motion
    from gar_ros.training.recipe import EVAL_SEED_BASE

    correct = 0
    for i in range(SAMPLES):
        sample = make_motion(EVAL_SEED_BASE + i, n_frames=CLIP_FRAMES)
        ctx = FrameContext(ContextConfig(context_frames=context_frames, context_window=1.0, history_interval=0.0))
        for k, scene in enumerate(sample.frames):
            ctx.add_frame(scene.stamp or k * 100_000_000, scene.image, scene.regions())
        answer = ctx.ask(model, [sample.regions[0].id], sample.question, max_new_tokens=4)
        correct += int(is_correct(sample, answer.text))
    return correct / SAMPLES


def test_motion_direction_needs_context() -> None:
    reason = _clip_training_status()
    if reason is not None:
        pytest.skip(reason)
    from gar_ros.model.api import GarModel

    torch.set_num_threads(1)
    model = GarModel.from_pretrained(EMBEDDED)
    with_context = _accuracy(model, CONTEXT_FRAMES)
    without = _accuracy(model, 0)
    print(f"\nmotion direction accuracy over {SAMPLES} held-out clips: "
          f"context_frames={CONTEXT_FRAMES}: {with_context:.1%}, context_frames=0: {without:.1%}")
    assert with_context >= 0.8
    assert without <= 0.7  # near chance (0.5): a single frame cannot show the direction
