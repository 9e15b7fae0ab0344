"""Task samples over synthetic scenes, in GAR's prompt conventions.

Every sample names its regions in prompt order (region i is ``<Prompt{i}>``), a question (None
for the describe task, which uses the model's own single-region describe prompt) and the
reference answer text the model is trained to produce. Multiple-choice questions follow
GAR-Bench-VQA: ``"Question: ...\\nOptions:\\nA. <Prompt1>\\nB. ...\\nAnswer with the correct
option's letter directly."`` with a single letter as answer.

Tasks (``TaskSample.task``):
- ``describe``: one region -> "a small red square" (size, colour, shape).
- ``choice``: multiple choice over 2-4 prompted regions (leftmost, rightmost, topmost,
  bottommost, largest, smallest, left/right of, above/below, same colour as) or over colour /
  shape names for one region; answer a letter.
- ``free``: short questions about prompted regions ("What colour is <Prompt0>?" -> "red",
  "What shape ..." -> "star", "What size ..." -> "small", "What is <Prompt0>?" -> "a small red
  star", "Describe <Prompt0> in detail, including the relationship with <Prompt1>." -> the
  target's description, "Is <Prompt0> left of <Prompt1>?" -> "yes"/"no").
- ``motion``: over a clip, "Which way did <Prompt0> move: left or right?" -> "left"/"right".
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gar_ros.errors import InputError
from gar_ros.synthetic.scenes import (
    DEFAULT_SIZE, Scene, SceneObject, generate_clip, generate_scene,
)
from gar_ros.synthetic.vocabulary import COLOUR_NAMES, SHAPES, SIZE_NAMES
from gar_ros.types import Region

LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
MC_SUFFIX = "Answer with the correct option's letter directly."
MOTION_QUESTION = "Which way did <Prompt0> move: left or right?"

#: Scenes of a choice / free / motion sample with seed s use scene seeds s*SUB_SEEDS + t
#: (t < SUB_SEEDS), so disjoint seed ranges give disjoint scenes (held-out sets stay held out).
SUB_SEEDS = 64

#: Options list the candidate prompts in prompt order (A = first candidate), like the
#: multiple-choice questions of gar_ros.query; True shuffles them (GAR-Bench-VQA style).
SHUFFLE_OPTIONS = False

#: Minimum separation (fraction of the image's shorter side) between centroids for a
#: positional relation to count as unambiguous.
POSITION_MARGIN = 0.08
#: Minimum area ratio for larger / smaller.
AREA_RATIO = 1.35

#: Paraphrases of "what is this region" answered with the full description.
WHAT_IS_TEMPLATES: tuple[str, ...] = (
    "What is <Prompt0>?",
    "What is the object <Prompt0>?",
    "Describe <Prompt0>.",
    "Describe <Prompt0> briefly.",
    "Which object is <Prompt0>?",
    "Name the object <Prompt0>.",
    "What object is shown in <Prompt0>?",
)
COLOUR_TEMPLATES: tuple[str, ...] = (
    "What colour is <Prompt0>?",
    "What color is <Prompt0>?",
    "What is the colour of <Prompt0>?",
    "What is the color of <Prompt0>?",
)
SHAPE_TEMPLATES: tuple[str, ...] = (
    "What shape is <Prompt0>?",
    "What is the shape of <Prompt0>?",
)
SIZE_TEMPLATES: tuple[str, ...] = (
    "What size is <Prompt0>?",
    "Is <Prompt0> small or large?",
)
#: Describe a target (<Prompt0>) in the context of other prompted regions (<Prompt1>..).
DESCRIBE_WITH_TEMPLATE = "Describe <Prompt0> in detail, including the relationship with {anchors}."


@dataclass
class TaskSample:
    """One training or evaluation item.

    ``frames``: one scene (images) or several (clips, oldest first); ``regions[i]`` is
    ``<Prompt{i}>`` and comes from the newest frame; ``clip_regions[k][i]`` is region i in
    frame k (clips only). ``question`` None = describe with the model's own prompt.
    """

    task: str
    kind: str
    frames: list[Scene]
    regions: list[Region]
    question: str | None
    answer: str
    clip_regions: list[list[Region]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        return self.frames[-1].image


def _prompt(i: int) -> str:
    return f"<Prompt{i}>"


def _list_prompts(n: int) -> str:
    names = [_prompt(i) for i in range(n)]
    return names[0] if n == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def mc_question(question: str, options: Sequence[str]) -> str:
    """GAR-Bench-VQA layout: question, lettered options, instruction line."""
    lines = [f"Question: {question}", "Options:"]
    lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    lines.append(MC_SUFFIX)
    return "\n".join(lines)


def _centre(o: SceneObject) -> tuple[float, float]:
    ys, xs = np.nonzero(o.mask)
    return float(xs.mean()), float(ys.mean())


# ----------------------------------------------------------------------------- choice tasks

_EXTREMES: dict[str, tuple[str, Callable[[SceneObject], float], int]] = {
    # kind: (phrase, key, sign) ; the answer maximises sign * key
    "leftmost": ("the leftmost", lambda o: _centre(o)[0], -1),
    "rightmost": ("the rightmost", lambda o: _centre(o)[0], 1),
    "topmost": ("the topmost", lambda o: _centre(o)[1], -1),
    "bottommost": ("the bottommost", lambda o: _centre(o)[1], 1),
}
_RELATIONS: dict[str, tuple[str, int, int]] = {
    # kind: (phrase, axis, sign): candidate c satisfies sign*(c - anchor) along axis > margin
    "left_of": ("left of", 0, -1),
    "right_of": ("right of", 0, 1),
    "above": ("above", 1, -1),
    "below": ("below", 1, 1),
}
CHOICE_KINDS: tuple[str, ...] = (
    *_EXTREMES, "largest", "smallest", *_RELATIONS, "same_colour", "colour_options",
    "shape_options",
)


def _choose_objects(rng: np.random.Generator, scene: Scene, k: int) -> list[SceneObject]:
    idx = rng.choice(len(scene.objects), size=k, replace=False)
    return [scene.objects[int(i)] for i in idx]


def _letter_options(rng: np.random.Generator, n: int, first: int = 0) -> list[int]:
    """Prompt indices first..first+n-1 shown as options A, B, ...: in prompt order (as
    ``gar_ros.query`` asks), or shuffled when :data:`SHUFFLE_OPTIONS` is set."""
    order = [first + i for i in range(n)]
    if SHUFFLE_OPTIONS:
        order = [order[int(i)] for i in rng.permutation(n)]
    return order


def _choice_over_prompts(rng: np.random.Generator, scene: Scene, objs: list[SceneObject],
                         question: str, answer_idx: int, kind: str,
                         options_of: list[int] | None = None) -> TaskSample:
    order = options_of if options_of is not None else _letter_options(rng, len(objs))
    options = [_prompt(i) for i in order]
    letter = LETTERS[order.index(answer_idx)]
    return TaskSample("choice", kind, [scene], [o.region() for o in objs],
                      mc_question(question, options), letter,
                      meta={"objects": [o.id for o in objs], "options": order})


def _extreme(rng: np.random.Generator, scene: Scene, kind: str) -> TaskSample | None:
    short = min(scene.image.shape[:2])
    k = int(rng.integers(2, min(4, len(scene.objects)) + 1))
    objs = _choose_objects(rng, scene, k)
    if kind in _EXTREMES:
        phrase, key, sign = _EXTREMES[kind]
        vals = [sign * key(o) for o in objs]
        margin = POSITION_MARGIN * short
        ok = lambda best, second: best - second >= margin  # noqa: E731
    else:
        phrase = "the largest" if kind == "largest" else "the smallest"
        sign = 1 if kind == "largest" else -1
        vals = [sign * np.log(o.area) for o in objs]
        ok = lambda best, second: best - second >= np.log(AREA_RATIO)  # noqa: E731
    ranked = sorted(vals, reverse=True)
    if not ok(ranked[0], ranked[1]):
        return None
    answer_idx = int(np.argmax(vals))
    q = f"Which one among {_list_prompts(k)} is {phrase}?"
    return _choice_over_prompts(rng, scene, objs, q, answer_idx, kind)


def _relation(rng: np.random.Generator, scene: Scene, kind: str) -> TaskSample | None:
    """Anchor <Prompt0>; 2-3 candidates <Prompt1..>; exactly one satisfies the relation.

    Anchors are tried in a random order; None when no object of the scene can be one."""
    phrase, axis, sign = _RELATIONS[kind]
    short = min(scene.image.shape[:2])
    margin = POSITION_MARGIN * short
    centres = {o.id: _centre(o)[axis] for o in scene.objects}
    for a_idx in rng.permutation(len(scene.objects)):
        anchor = scene.objects[int(a_idx)]
        a = centres[anchor.id]
        yes = [o for o in scene.objects if o is not anchor and sign * (centres[o.id] - a) > margin]
        no = [o for o in scene.objects if o is not anchor and sign * (centres[o.id] - a) < -margin]
        if yes and no:
            break
    else:
        return None
    target = yes[int(rng.integers(len(yes)))]
    n_wrong = int(rng.integers(1, min(2, len(no)) + 1))
    wrong = [no[int(i)] for i in rng.choice(len(no), size=n_wrong, replace=False)]
    cands = [target, *wrong]
    perm = rng.permutation(len(cands))
    cands = [cands[int(i)] for i in perm]
    objs = [anchor, *cands]
    answer_idx = 1 + cands.index(target)
    q = f"Which object is {phrase} <Prompt0>?"
    order = _letter_options(rng, len(cands), 1)
    return _choice_over_prompts(rng, scene, objs, q, answer_idx, kind, options_of=order)


def _same_colour(rng: np.random.Generator, scene: Scene) -> TaskSample | None:
    """Needs a scene whose objects 0 and 1 share a colour and no other object has it."""
    o0, o1 = scene.objects[0], scene.objects[1]
    others = [o for o in scene.objects[2:] if o.colour != o0.colour]
    if o0.colour != o1.colour or not others:
        return None
    n_wrong = int(rng.integers(1, min(2, len(others)) + 1))
    wrong = [others[int(i)] for i in rng.choice(len(others), size=n_wrong, replace=False)]
    cands = [o1, *wrong]
    cands = [cands[int(i)] for i in rng.permutation(len(cands))]
    objs = [o0, *cands]
    answer_idx = 1 + cands.index(o1)
    q = "Which object has the same colour as <Prompt0>?"
    order = _letter_options(rng, len(cands), 1)
    return _choice_over_prompts(rng, scene, objs, q, answer_idx, "same_colour", options_of=order)


def _attribute_options(rng: np.random.Generator, scene: Scene, kind: str) -> TaskSample:
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    names = COLOUR_NAMES if kind == "colour_options" else SHAPES
    truth = obj.colour if kind == "colour_options" else obj.shape
    n = int(rng.integers(2, 5))
    wrong = [str(w) for w in rng.choice([x for x in names if x != truth], size=n - 1, replace=False)]
    opts = [truth, *wrong]
    opts = [opts[int(i)] for i in rng.permutation(n)]
    word = "colour" if kind == "colour_options" else "shape"
    q = f"What is the {word} of <Prompt0>?"
    return TaskSample("choice", kind, [scene], [obj.region()],
                      mc_question(q, [f"{o}" for o in opts]), LETTERS[opts.index(truth)],
                      meta={"objects": [obj.id], "options": opts})


def make_choice(seed: int, kind: str | None = None, size: tuple[int, int] = DEFAULT_SIZE,
                max_tries: int = 50) -> TaskSample:
    """A multiple-choice sample; ``kind`` None draws one of :data:`CHOICE_KINDS` from the seed."""
    rng = np.random.default_rng([seed, 1])
    kind = kind or str(rng.choice(CHOICE_KINDS))
    if kind not in CHOICE_KINDS:
        raise InputError(f"unknown choice kind {kind!r}")
    for t in range(min(max_tries, SUB_SEEDS)):
        sub = seed * SUB_SEEDS + t
        if kind == "same_colour":
            scene = generate_scene(sub, size, int(rng.integers(3, 7)), distinct_colours=True,
                                   duplicate_colour=True)
            sample = _same_colour(rng, scene)
        else:
            scene = generate_scene(sub, size, None if kind.endswith("options") else
                                   int(rng.integers(2, 7)))
            if kind in _EXTREMES or kind in ("largest", "smallest"):
                sample = _extreme(rng, scene, kind)
            elif kind in _RELATIONS:
                sample = _relation(rng, scene, kind)
            else:
                sample = _attribute_options(rng, scene, kind)
        if sample is not None:
            sample.meta["seed"] = seed
            return sample
    raise InputError(f"no {kind} sample found for seed {seed}")


# ----------------------------------------------------------------------------- other tasks

def make_describe(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> list[TaskSample]:
    """One describe sample per object of the scene of ``seed`` (question None)."""
    scene = generate_scene(seed, size)
    return [TaskSample("describe", "describe", [scene], [o.region()], None, o.description,
                       meta={"objects": [o.id], "seed": seed}) for o in scene.objects]


FREE_KINDS: tuple[str, ...] = ("colour", "shape", "size", "what_is", "describe_with", "is_left_of")


def make_free(seed: int, size: tuple[int, int] = DEFAULT_SIZE) -> TaskSample:
    """A short free question about one or two prompted regions.

    The attribute questions (colour, shape, size, what is) prompt one region half of the time
    and 2-4 regions otherwise, asking about a random one of them (``<PromptK>``), so that the
    answer depends on which crop block the question names."""
    rng = np.random.default_rng([seed, 2])
    scene = generate_scene(seed * SUB_SEEDS, size)
    kind = str(rng.choice(FREE_KINDS))
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    if kind in ("colour", "shape", "size", "what_is"):
        templates, answer = {
            "colour": (COLOUR_TEMPLATES, obj.colour), "shape": (SHAPE_TEMPLATES, obj.shape),
            "size": (SIZE_TEMPLATES, obj.size), "what_is": (WHAT_IS_TEMPLATES, obj.description),
        }[kind]
        question = str(rng.choice(templates))
        others = [o for o in scene.objects if o is not obj]
        n_more = int(rng.integers(1, min(3, len(others)) + 1)) if others and rng.random() < 0.5 else 0
        objs = [obj, *[others[int(i)] for i in rng.choice(len(others), size=n_more, replace=False)]]
        objs = [objs[int(i)] for i in rng.permutation(len(objs))]
        question = question.replace("<Prompt0>", _prompt(objs.index(obj)))
        return TaskSample("free", kind, [scene], [o.region() for o in objs], question, answer,
                          meta={"seed": seed, "asked": objs.index(obj)})
    other = [o for o in scene.objects if o is not obj]
    if kind == "describe_with":
        k = int(rng.integers(1, min(3, len(other)) + 1))
        anchors = [other[int(i)] for i in rng.choice(len(other), size=k, replace=False)]
        names = " and ".join(f"<Prompt{j + 1}>" for j in range(k))
        return TaskSample("free", kind, [scene], [obj.region(), *[a.region() for a in anchors]],
                          DESCRIBE_WITH_TEMPLATE.format(anchors=names), obj.description,
                          meta={"seed": seed})
    o2 = other[int(rng.integers(len(other)))]
    dx = _centre(obj)[0] - _centre(o2)[0]
    return TaskSample("free", kind, [scene], [obj.region(), o2.region()],
                      "Is <Prompt0> left of <Prompt1>?", "yes" if dx < 0 else "no",
                      meta={"seed": seed})


def make_motion(seed: int, n_frames: int = 4, size: tuple[int, int] = DEFAULT_SIZE,
                speed: tuple[float, float] = (3.0, 5.0)) -> TaskSample:
    """Clip of ``n_frames`` frames; which way did one object move (its horizontal velocity).

    ``speed``: (min, max) horizontal speed in pixels per frame (the evaluation clips use the default)."""
    rng = np.random.default_rng([seed, 3])
    clip = generate_clip(seed * SUB_SEEDS, n_frames, size, min_speed=speed[0], max_speed=speed[1])
    i = int(rng.integers(len(clip[-1].objects)))
    first, last = clip[0].objects[i], clip[-1].objects[i]
    answer = "left" if last.centre[0] < first.centre[0] else "right"
    return TaskSample("motion", "motion", clip, [last.region()], MOTION_QUESTION, answer,
                      clip_regions=[[f.objects[i].region()] for f in clip],
                      meta={"seed": seed, "object": last.id})


# ----------------------------------------------------------------------------- scoring

_COLOUR_RE = re.compile(r"\b(" + "|".join(COLOUR_NAMES) + r")\b")
_SHAPE_RE = re.compile(r"\b(" + "|".join(SHAPES) + r")s?\b")
_SIZE_RE = re.compile(r"\b(" + "|".join(SIZE_NAMES) + r")\b")


def parse_description(text: str) -> dict[str, str | None]:
    """First colour, shape and size words of a generated text (None when absent)."""
    low = text.lower()
    out: dict[str, str | None] = {}
    for name, rx in (("colour", _COLOUR_RE), ("shape", _SHAPE_RE), ("size", _SIZE_RE)):
        m = rx.search(low)
        out[name] = m.group(1) if m else None
    return out


def first_letter(text: str) -> str:
    """The option letter a multiple-choice answer starts with ("" when none), GAR-Bench rule."""
    s = text.strip()
    return s[0].upper() if s and s[0].upper() in LETTERS else ""


def is_correct(sample: TaskSample, output: str) -> bool:
    """Task-specific check: describe needs colour and shape right; choice the letter; free
    and motion the answer words (what_is: colour and shape)."""
    if sample.task == "choice":
        return first_letter(output) == sample.answer
    if sample.task == "describe" or sample.kind in ("what_is", "describe_with"):
        got, ref = parse_description(output), parse_description(sample.answer)
        return got["colour"] == ref["colour"] and got["shape"] == ref["shape"]
    words = re.findall(r"[a-z]+", output.lower())
    return bool(words) and words[0] == sample.answer.lower()
