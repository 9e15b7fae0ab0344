"""Motion samples over clips -> the model core's clip prompt (``gar_ros.model.video``).

A motion sample's K frames (oldest first, newest always included) become a clip prompt with
:func:`gar_ros.model.video.prepare_clip` (each frame one tile, its own prompt map, frame k's
replay in crop slot k), exactly as ``ask_clip`` builds it at inference; the training loss comes
from :func:`gar_ros.training.objective.step_loss`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gar_ros.model.processing import region_mask
from gar_ros.model.video import ClipInputs, prepare_clip
from gar_ros.synthetic.tasks import TaskSample
from gar_ros.training.batches import region_target
from gar_ros.types import Region


@dataclass
class ClipFrameData:
    """The frame fields ``prepare_clip`` reads: ``size`` is (H, W); ``regions`` id -> Region."""

    stamp: int
    image: np.ndarray
    size: tuple[int, int]
    regions: dict[str, Region]
    features: dict = field(default_factory=dict)


@dataclass
class EncodedClip:
    """One clip training sequence: the prompt, the answer ids (end id included), the asked
    region's probe target per crop slot (slot k = k-th given frame, see
    :func:`gar_ros.training.batches.region_target`) and its direction (0 left, 1 right)."""

    inputs: ClipInputs
    answer: list[int]
    frame_targets: dict[int, tuple[int, int, float, float, float]]
    direction: int

    def __len__(self) -> int:
        return len(self.inputs.prompt.input_ids) + len(self.answer)


def pick_frames(n_frames: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` frame indices of ``n_frames``, ascending, always including the newest."""
    k = max(1, min(k, n_frames))
    older = sorted(int(i) for i in rng.choice(n_frames - 1, size=k - 1, replace=False)) if k > 1 else []
    return [*older, n_frames - 1]


def clip_frames(sample: TaskSample, indices: Sequence[int]) -> list[ClipFrameData]:
    """The sample's frames at ``indices`` with the prompted region(s) under their ids."""
    out = []
    for k in indices:
        scene = sample.frames[k]
        regions = {r.id: r for r in sample.clip_regions[k]}
        out.append(ClipFrameData(int(scene.stamp), scene.image, scene.image.shape[:2], regions))
    return out


def encode_motion(model_config, builder, sample: TaskSample, indices: Sequence[int],
                  tokenizer, end_id: int) -> EncodedClip:
    """The :class:`EncodedClip` of one motion sample over the frames ``indices``."""
    frames = clip_frames(sample, indices)
    region_ids = [r.id for r in sample.clip_regions[-1]]
    inputs = prepare_clip(model_config, builder, frames, region_ids, sample.question)
    answer = list(tokenizer(sample.answer, add_special_tokens=False)["input_ids"]) + [end_id]
    targets = {}
    for slot, k in enumerate(indices):
        region = sample.clip_regions[k][0]
        h, w = sample.frames[k].image.shape[:2]
        targets[slot] = region_target(region.label, region_mask(region, w, h))
    return EncodedClip(inputs, answer, targets, 0 if sample.answer == "left" else 1)
