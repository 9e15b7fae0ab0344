"""Generated relational questions over synthetic scenes, with ground truth computed here from the
objects' mask centroids (independently of gar_ros.query's geometry), and scoring of answers."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from gar_ros.synthetic import Scene, generate_scene
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES

#: Relations: (phrases, unit direction (dx, dy) in image coordinates).
RELATIONS: dict[str, tuple[tuple[str, ...], tuple[int, int]]] = {
    "left": (("left of", "to the left of", "on the left of"), (-1, 0)),
    "right": (("right of", "to the right of", "on the right side of"), (1, 0)),
    "above": (("above", "over"), (0, -1)),
    "below": (("below", "lower than"), (0, 1)),
}
#: Question templates: (template, what must be named right: "object" | "colour" | "shape").
TEMPLATES: tuple[tuple[str, str], ...] = (
    ("What is the object {rel} {anchor}?", "object"),
    ("what's the thing {rel} {anchor}", "object"),
    ("Which object is {rel} {anchor}?", "object"),
    ("Describe the object {rel} {anchor}.", "object"),
    ("What is {rel} {anchor}?", "object"),
    ("What colour is the object {rel} {anchor}?", "colour"),
    ("What shape is the thing {rel} {anchor}?", "shape"),
)

_COLOUR = re.compile(r"\b(" + "|".join(COLOUR_NAMES) + r")\b")
_SHAPE = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b")


@dataclass
class RelQuestion:
    scene_index: int
    question: str
    target: str  # region id
    anchor: str  # region id
    colour: str  # the target's colour and shape
    shape: str
    check: str  # "object" | "colour" | "shape"
    labelled: bool


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def unique_target(scene: Scene, anchor_index: int, direction: tuple[int, int]) -> int | None:
    """The only object in the relation's direction from the anchor, when there is exactly one.

    Generous cone (within 75 degrees of the direction) must hold one object, and that object must
    also lie in a strict cone (within 35 degrees, at least 10 % of the image side away).
    """
    short = min(scene.image.shape[:2])
    ax, ay = centroid(scene.objects[anchor_index].mask)
    generous, strict = [], []
    for i, o in enumerate(scene.objects):
        if i == anchor_index:
            continue
        x, y = centroid(o.mask)
        along = (x - ax) * direction[0] + (y - ay) * direction[1]
        across = abs((x - ax) * direction[1]) + abs((y - ay) * direction[0])
        if along > 0 and across < along * math.tan(math.radians(75)):
            generous.append(i)
            if along > 0.1 * short and across < along * math.tan(math.radians(35)):
                strict.append(i)
    if len(generous) == 1 and strict == generous:
        return generous[0]
    return None


def anchor_phrase(scene: Scene, index: int, rng: np.random.Generator) -> str:
    """"the red square", or "the red one" / "the square" when that alone is unique in the scene."""
    o = scene.objects[index]
    options = [f"the {o.colour} {o.shape}"]
    if sum(p.colour == o.colour for p in scene.objects) == 1:
        options.append(f"the {o.colour} one")
    if sum(p.shape == o.shape for p in scene.objects) == 1:
        options.append(f"the {o.shape}")
    return options[int(rng.integers(len(options)))]


def generate_questions(n: int, seed: int = 7_000_000, per_scene: int = 3, unlabelled_every: int = 4
                       ) -> tuple[list[Scene], list[RelQuestion]]:
    """``n`` questions over fresh scenes (held-out seeds); every ``unlabelled_every``-th scene
    publishes its regions without labels (grounding then relies on the model's captions).
    Region ids are unique per scene (``s{k}o{i}``), as track ids are."""
    rng = np.random.default_rng(seed)
    scenes: list[Scene] = []
    questions: list[RelQuestion] = []
    scene_seed = seed
    while len(questions) < n:
        scene_seed += 1
        scene = generate_scene(scene_seed)
        k = len(scenes)
        labelled = unlabelled_every <= 0 or k % unlabelled_every != unlabelled_every - 1
        found: list[RelQuestion] = []
        for a in rng.permutation(len(scene.objects)):
            for rel in rng.permutation(list(RELATIONS)):
                phrases, direction = RELATIONS[str(rel)]
                t = unique_target(scene, int(a), direction)
                if t is None:
                    continue
                template, check = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
                phrase = phrases[int(rng.integers(len(phrases)))]
                question = template.format(rel=phrase, anchor=anchor_phrase(scene, int(a), rng))
                obj = scene.objects[t]
                found.append(RelQuestion(k, question, f"s{k}o{t}", f"s{k}o{int(a)}", obj.colour,
                                         obj.shape, check, labelled))
                break
            if len(found) >= per_scene:
                break
        if not found:
            continue
        scenes.append(scene)
        questions.extend(found[: n - len(questions)])
    return scenes, questions


def scene_regions(scene: Scene, k: int, labelled: bool):
    regions = scene.regions()
    for i, r in enumerate(regions):
        r.id = f"s{k}o{i}"
        if not labelled:
            r.label = ""
    return regions


def generated_part(text: str) -> str:
    """The model-generated part of an answer ("The object left of the red square is a small blue
    circle." -> "a small blue circle."), so that anchor words in the text do not count."""
    for sep in (" is ", ": "):
        if sep in text:
            return text.rsplit(sep, 1)[1]
    return text


def named_right(q: RelQuestion, text: str) -> bool:
    part = generated_part(text).lower()
    colour = _COLOUR.search(part)
    shape = _SHAPE.search(part)
    got_colour = colour.group(1) if colour else None
    got_shape = shape.group(1) if shape else None
    if q.check == "colour":
        return got_colour == q.colour
    if q.check == "shape":
        return got_shape == q.shape
    return got_colour == q.colour and got_shape == q.shape
