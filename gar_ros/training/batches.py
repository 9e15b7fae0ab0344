"""Task samples -> tensors for ``GarTorchModel.forward`` (the model core's own preprocessing).

Each sample goes through :class:`gar_ros.model.processor.GarProcessor` exactly as
``GarModel.describe`` / ``GarModel.ask`` prepare it at inference (same tiles, prompt map, replay
boxes and prompt ids); the answer's token ids and the end id are appended and form the labels.
Pixel and prompt-map tiles are kept as uint8 until a batch is built (normalised then, with the
processor's own formula).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gar_ros.model.processing import normalize_uint8
from gar_ros.model.processor import GarProcessor
from gar_ros.model.prompts import DESCRIBE_PROMPT_INDEX
from gar_ros.synthetic.tasks import TaskSample
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES

Box = tuple[float, float, float, float]
IGNORE = -100


@dataclass
class EncodedSample:
    """One training sequence. ``pixels`` (T, 3, S, S) uint8; ``prompt_map`` (T, 1, S, S) uint8
    prompt ids; ``labels`` -100 except the answer and the end token. ``region_targets`` maps
    prompt index -> (colour id, shape id, centre x, centre y, log area fraction) of its region
    (for the auxiliary region loss of training; -1 ids when the label is not a synthetic one)."""

    input_ids: list[int]
    labels: list[int]
    pixels: torch.Tensor
    prompt_map: torch.Tensor
    grid: tuple[int, int]
    boxes: dict[int, Box]
    region_targets: dict[int, tuple[int, int, float, float, float]] = field(default_factory=dict)
    kind: str = ""  # the task sample's kind (e.g. "leftmost", "colour")


def region_target(label: str, mask: np.ndarray) -> tuple[int, int, float, float, float]:
    """(colour id, shape id, cx, cy, log area fraction); cx, cy in [0, 1] of the image."""
    words = label.split()
    colour = COLOUR_NAMES.index(words[0]) if words and words[0] in COLOUR_NAMES else -1
    shape = SHAPES.index(words[-1]) if words and words[-1] in SHAPES else -1
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (colour, shape, float(xs.mean() + 0.5) / w, float(ys.mean() + 0.5) / h,
            float(np.log(len(xs) / (h * w))))


def _to_uint8(normalised: torch.Tensor) -> torch.Tensor:
    return torch.round(normalised * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)


def encode_sample(processor: GarProcessor, sample: TaskSample, end_id: int) -> EncodedSample:
    """Prompt + answer ids and vision inputs of an image sample (describe / choice / free)."""
    image = processor.rgb(sample.image)
    h, w = image.shape[:2]
    frame = processor.tiles(image)
    masks = processor.masks(sample.regions, w, h)
    if sample.question is None:
        indices = [DESCRIBE_PROMPT_INDEX]
        prompt = processor.region_prompt(masks, indices)
        ids = processor.describe_ids(frame)
    else:
        indices = list(range(len(masks)))
        prompt = processor.region_prompt(masks, indices)
        ids = processor.question_ids(frame, indices, sample.question)
    answer = list(processor.tokenizer(sample.answer, add_special_tokens=False)["input_ids"]) + [end_id]
    pmap = processor.prompt_map_tiles(prompt.prompt_map, frame)
    return EncodedSample(
        input_ids=ids + answer,
        labels=[IGNORE] * len(ids) + answer,
        pixels=_to_uint8(frame.pixel_values),
        prompt_map=_to_uint8(pmap),
        grid=frame.grid,
        boxes=dict(prompt.boxes),
        region_targets={k: region_target(r.label, m) for k, r, m in zip(indices, sample.regions, masks)},
        kind=sample.kind,
    )


def collate(samples: Sequence[EncodedSample], pad_id: int) -> dict:
    """Right-padded batch as keyword arguments of ``GarTorchModel.forward``."""
    longest = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), longest), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    for i, s in enumerate(samples):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        labels[i, :n] = torch.tensor(s.labels)
        mask[i, :n] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "pixel_values": [normalize_uint8(s.pixels) for s in samples],
        "prompt_maps": [normalize_uint8(s.prompt_map) for s in samples],
        "grids": [s.grid for s in samples],
        "boxes": [s.boxes for s in samples],
        "region_targets": [s.region_targets for s in samples],
    }


def answer_token_count(samples: Sequence[EncodedSample]) -> int:
    return int(sum(int(np.sum(np.asarray(s.labels) != IGNORE)) for s in samples))
