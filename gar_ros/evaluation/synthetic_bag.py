"""Synthetic-scene bags with ground truth, built from the tasks of ``gar_ros.synthetic``.

For each seed two frames are written: the describe scene of ``make_describe(seed)`` (all its
objects as regions, description ground truth) and, with ``questions``, the scene of
``make_choice(seed)`` with its multiple-choice question as a Query: the task's ``<PromptK>``
become ``<region:ID>`` references to the scene's object ids (``obj0``, ...), and ``region_ids``
lists them in the task's prompt order. The pipeline numbers referenced regions by first
appearance, so the model sees the task's prompt up to a consistent renumbering of the prompts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
        items.append(Item(scene.image, regions, ground_truth=[gt]))
        if not questions:
            continue
        sample = make_choice(seed)
        cscene = sample.frames[-1]
        qid = f"choice_{seed}"
        ids = [r.id for r in sample.regions]
        record = {"query_id": qid, "kind": "multiple_choice", "answer": sample.answer, "type": sample.kind,
                  "region_ids": ids}
        question = _PROMPT_RE.sub(lambda m: f"<region:{ids[int(m.group(1))]}>", sample.question or "")
        items.append(Item(cscene.image, cscene.regions(), question, qid, ids, [record]))
    return items


def bag_from_synthetic(out: str | Path, *, scenes: int = 20, first_seed: int | None = None,
                       questions: bool = True, **kw: Any) -> BuildSummary:
    """A bag of ``scenes`` seeds starting at ``first_seed`` (default: the held-out seeds)."""
    start = held_out_first_seed() if first_seed is None else int(first_seed)
    return write_items(synthetic_items(list(range(start, start + scenes)), questions=questions), out, **kw)
