"""Held-out evaluation of a tiny GAR checkpoint through the public ``GarModel`` API.

Scenes use seeds ``EVAL_SEED_BASE + i`` (never trained on, see :mod:`gar_ros.training.recipe`).
Per scene: every object is described (``GarModel.describe``; correct = colour and shape words
both right), one multiple-choice question (``GarModel.ask``; correct = first letter) and one
free question. The ablation reruns description and multiple choice with the region pathway cut:
the mask patch embedding zeroed AND the RoI replay disabled (crop tokens keep their plain token
embeddings), so the model sees the image but not which region is asked about. Optionally, motion
clips ask "Which way did <Prompt0> move: left or right?" with 3 frames (clip prompt of
``gar_ros.model.video``) and with the newest frame alone.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gar_ros.synthetic.tasks import (
    TaskSample, is_correct, make_choice, make_describe, make_free, make_motion,
)
from gar_ros.training.recipe import EVAL_SEED_BASE


@dataclass
class TaskScore:
    correct: int = 0
    total: int = 0
    chance: float = 0.0  # expected accuracy of a uniform guess (summed, divide by total)

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    @property
    def chance_pct(self) -> float:
        return 100.0 * self.chance / self.total if self.total else 0.0

    def add(self, ok: bool, chance: float) -> None:
        self.correct += int(ok)
        self.total += 1
        self.chance += chance


@dataclass
class EvalReport:
    scores: dict[str, TaskScore] = field(default_factory=lambda: defaultdict(TaskScore))
    per_kind: dict[str, TaskScore] = field(default_factory=lambda: defaultdict(TaskScore))
    scenes: int = 0
    seconds: float = 0.0
    examples: list[tuple[str, str, str]] = field(default_factory=list)

    def accuracy(self, task: str) -> float:
        return self.scores[task].accuracy

    def as_dict(self) -> dict:
        return {
            "scenes": self.scenes,
            "seconds": round(self.seconds, 1),
            "tasks": {k: {"accuracy": round(v.accuracy, 2), "correct": v.correct, "total": v.total,
                          "chance": round(v.chance_pct, 2)} for k, v in self.scores.items()},
            "per_kind": {k: round(v.accuracy, 2) for k, v in self.per_kind.items()},
        }

    def lines(self) -> list[str]:
        names = {
            "description": "description (colour+shape)",
            "choice": "multiple choice",
            "free": "free questions",
            "motion": "motion (clip)",
            "motion_single": "motion (single frame)",
            "ablation_description": "ablation description (no mask embedding, no replay)",
            "ablation_choice": "ablation multiple choice (no mask embedding, no replay)",
        }
        out = []
        for key, label in names.items():
            s = self.scores.get(key)
            if s is None or s.total == 0:
                continue
            out.append(f"{label}: {s.accuracy:.1f}% ({s.correct}/{s.total}; chance {s.chance_pct:.1f}%)")
        return out


def _choice_chance(sample: TaskSample) -> float:
    return 1.0 / (sample.question.count("\n") - 2)


@contextlib.contextmanager
def region_pathway_disabled(model: Any) -> Iterator[None]:
    """Zero the mask patch embedding and skip RoI replay inside the block (restored after)."""
    weight = model.torch_model.mask_patch_embedding.weight
    saved = weight.detach().clone()
    replay = model.replay_enabled
    with torch.no_grad():
        weight.zero_()
    model.replay_enabled = False
    model.clear_cache()
    try:
        yield
    finally:
        model.replay_enabled = replay
        with torch.no_grad():
            weight.copy_(saved)
        model.clear_cache()


def _run_describe(model: Any, scenes: list[list[TaskSample]], report: EvalReport, key: str,
                  keep_examples: bool) -> None:
    for samples in scenes:
        image = samples[0].image
        texts = model.describe(image, [s.regions[0] for s in samples], max_new_tokens=8)
        for s, t in zip(samples, texts):
            report.scores[key].add(is_correct(s, t.text), 1.0 / len(samples))
            if keep_examples and len(report.examples) < 6:
                report.examples.append(("describe", s.answer, t.text))


def _run_questions(model: Any, samples: list[TaskSample], report: EvalReport, key: str,
                   kinds: bool) -> None:
    for s in samples:
        ans = model.ask(s.image, s.regions, s.question, max_new_tokens=8)
        chance = _choice_chance(s) if s.task == "choice" else 0.0
        ok = is_correct(s, ans.text)
        report.scores[key].add(ok, chance)
        if kinds:
            report.per_kind[f"{s.task}:{s.kind}"].add(ok, chance)


def _run_motion(model: Any, seed_base: int, n: int, context_frames: int, report: EvalReport) -> None:
    """"Which way did <Prompt0> move" over 4-frame clips: ``context_frames`` frames spread over
    the clip (newest included) through the clip prompt, and the newest frame alone."""
    from gar_ros.model.video import ask_clip
    from gar_ros.training.clips import clip_frames

    for i in range(n):
        sample = make_motion(seed_base + i, n_frames=4)
        idx = sorted({int(round(v)) for v in np.linspace(0, len(sample.frames) - 1, context_frames)})
        frames = clip_frames(sample, idx)
        rid = sample.clip_regions[-1][0].id
        ans = ask_clip(model, frames, [rid], sample.question, max_new_tokens=4)
        report.scores["motion"].add(is_correct(sample, ans.text), 0.5)
        single = model.ask(sample.image, sample.regions, sample.question, max_new_tokens=4)
        report.scores["motion_single"].add(is_correct(sample, single.text), 0.5)


def evaluate(model: Any, n_scenes: int = 500, *, seed_base: int = EVAL_SEED_BASE,
             ablation: bool = True, free: bool = True, motion_clips: int = 0,
             context_frames: int = 3) -> EvalReport:
    """Evaluate a loaded ``GarModel`` on ``n_scenes`` held-out scenes (see module docstring);
    ``motion_clips`` > 0 adds the motion question over that many held-out clips."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report = EvalReport(scenes=n_scenes)
    start = time.perf_counter()
    size = (96, 96)
    describe = [make_describe(seed_base + i, size) for i in range(n_scenes)]
    choices = [make_choice(seed_base + i, size=size) for i in range(n_scenes)]
    _run_describe(model, describe, report, "description", True)
    _run_questions(model, choices, report, "choice", True)
    if free:
        frees = [make_free(seed_base + i, size) for i in range(n_scenes)]
        _run_questions(model, frees, report, "free", True)
    if ablation:
        with region_pathway_disabled(model):
            _run_describe(model, describe, report, "ablation_description", False)
            _run_questions(model, choices, report, "ablation_choice", False)
    if motion_clips:
        _run_motion(model, seed_base, motion_clips, context_frames, report)
    report.seconds = time.perf_counter() - start
    return report


def evaluate_dir(model_dir: str, n_scenes: int = 500, **kwargs: Any) -> EvalReport:
    from gar_ros.model import GarModel

    model = GarModel.from_pretrained(model_dir)
    return evaluate(model, n_scenes, **kwargs)


def format_report(report: EvalReport, model_name: str = "") -> str:
    head = f"eval-tiny {model_name} on {report.scenes} held-out scenes ({report.seconds:.0f}s)"
    lines = [head.replace("  ", " "), *report.lines()]
    if report.per_kind:
        kinds = ", ".join(f"{k.split(':')[1]} {v.accuracy:.0f}%" for k, v in sorted(report.per_kind.items()))
        lines.append(f"per kind: {kinds}")
    return "\n".join(lines)


__all__ = ["EvalReport", "TaskScore", "evaluate", "evaluate_dir", "format_report",
           "region_pathway_disabled"]
