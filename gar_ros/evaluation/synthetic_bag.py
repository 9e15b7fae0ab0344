"""Synthetic-scene bags with ground truth, built from the tasks of ``gar_ros.synthetic``.

For each seed two frames are written: the describe scene of ``make_describe(seed)`` (all its
objects as regions, description ground truth, with ``questions`` also a grounded query "What is
the leftmost object?" (or right/top/bottom) whose target region id is the ground truth) and, with ``questions``, the scene of
``make_choice(seed)`` with its multiple-choice question as a Query: the task's ``<PromptK>``
become ``<region:ID>`` references to the scene's object ids (``obj0``, ...), and ``region_ids``
lists them in the task's prompt order. The pipeline numbers referenced regions by first
appearance, so the model sees the task's prompt up to a consistent renumbering of the prompts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gar_ros.evaluation.builders import _PROMPT_RE, BuildSummary, Item, write_items

#: First held-out seed when the training area does not name one.
DEFAULT_FIRST_SEED = 1_000_000


def held_out_first_seed() -> int:
    """``eval-tiny``'s first held-out seed (``gar_ros.training.recipe.EVAL_SEED_BASE``)."""
    try:
        from gar_ros.training.recipe import EVAL_SEED_BASE

        return int(EVAL_SEED_BASE)
    except (ImportError, AttributeError, TypeError, ValueError):
        return DEFAULT_FIRST_SEED


def synthetic_items(seeds: list[int], *, questions: bool = True) -> list[Item]:
    from gar_ros.synthetic.tasks import make_choice, make_describe

    items: list[Item] = []
    for seed in seeds:
        samples = make_describe(seed)
        scene = samples[0].frames[-1]
        regions = scene.regions()
        gt: dict[str, Any] = {
            "query_id": f"describe_{seed}", "kind": "description", "type": "description",
            "keywords": {o.id: [o.colour, o.shape] for o in scene.objects},
            "references": {o.id: o.description for o in scene.objects},
        }
        item = Item(scene.image, regions, ground_truth=[gt])
        items.append(item)
        if not questions:
            continue
        grounded = grounding_question(scene, seed)
        if grounded is not None:
            text, target, kind = grounded
            item.query, item.query_id = text, f"ground_{seed}"
            item.ground_truth.append({"query_id": item.query_id, "kind": "grounding", "type": f"grounding:{kind}",
                                      "region_ids": [target]})
        sample = make_choice(seed)
        cscene = sample.frames[-1]
        qid = f"choice_{seed}"
        ids = [r.id for r in sample.regions]
        record = {"query_id": qid, "kind": "multiple_choice", "answer": sample.answer, "type": sample.kind,
                  "region_ids": ids}
        question = _PROMPT_RE.sub(lambda m: f"<region:{ids[int(m.group(1))]}>", sample.question or "")
        items.append(Item(cscene.image, cscene.regions(), question, qid, ids, [record]))
    return items


_EXTREMES = {"leftmost": (0, -1), "rightmost": (0, 1), "topmost": (1, -1), "bottommost": (1, 1)}


def grounding_question(scene: Any, seed: int) -> tuple[str, str, str] | None:
    """"What is the leftmost object?" (or rightmost/topmost/bottommost, by seed) and the id of
    the object it refers to (mask centroids); None when the two extremes are closer than the
    tasks' position margin."""
    from gar_ros.synthetic.tasks import POSITION_MARGIN

    kind = sorted(_EXTREMES)[seed % len(_EXTREMES)]
    axis, sign = _EXTREMES[kind]
    vals = []
    for o in scene.objects:
        ys, xs = np.nonzero(o.mask)
        vals.append((sign * float((xs if axis == 0 else ys).mean()), o.id))
    vals.sort(reverse=True)
    if len(vals) < 2 or vals[0][0] - vals[1][0] < POSITION_MARGIN * min(scene.image.shape[:2]):
        return None
    return f"What is the {kind} object?", vals[0][1], kind


def bag_from_synthetic(out: str | Path, *, scenes: int = 20, first_seed: int | None = None,
                       questions: bool = True, **kw: Any) -> BuildSummary:
    """A bag of ``scenes`` seeds starting at ``first_seed`` (default: the held-out seeds)."""
    start = held_out_first_seed() if first_seed is None else int(first_seed)
    return write_items(synthetic_items(list(range(start, start + scenes)), questions=questions), out, **kw)
