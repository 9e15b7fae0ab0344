"""Scoring of multiple-choice answers (the GAR-Bench-VQA protocol) and of grounded outputs.

GAR-Bench-VQA protocol: an item is correct when the first letter of the model's output
(after stripping white space) equals the item's ``answer`` letter, case-insensitive.
Accuracy is reported per question ``type`` and overall as ``[correct/total]=pct`` with the
percentage rounded to one decimal (Python's ``round``), exactly like the published tables.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gar_ros.errors import InputError


def first_letter(text: str) -> str:
    """The option letter of a model output: its first non-space character, upper case ("" if none)."""
    stripped = (text or "").strip()
    return stripped[:1].upper()


def is_correct(model_output: str, answer: str) -> bool:
    """Exact match of the first letter of ``model_output`` against the ``answer`` letter."""
    letter = first_letter(model_output)
    return bool(letter) and letter == (answer or "").strip()[:1].upper()


@dataclass
class CategoryScore:
    """Correct/total counts of one category."""

    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        """Percentage in [0, 100] (0 when empty), not rounded."""
        return 100.0 * self.correct / self.total if self.total else 0.0

    def line(self, name: str, width: int = 16) -> str:
        return f"{name + ':':<{width}} [{self.correct}/{self.total}]={round(self.accuracy, 1)}"


@dataclass
class ScoreTable:
    """Per-category and overall accuracy; ``categories`` keeps first-seen order."""

    categories: dict[str, CategoryScore] = field(default_factory=dict)
    overall: CategoryScore = field(default_factory=CategoryScore)

    def add(self, category: str, correct: bool) -> None:
        score = self.categories.setdefault(category, CategoryScore())
        score.total += 1
        self.overall.total += 1
        if correct:
            score.correct += 1
            self.overall.correct += 1

    def format(self) -> str:
        """The table as text, one ``type: [c/t]=pct`` line per category, then the overall line."""
        width = max([len(k) + 2 for k in self.categories] + [16])
        lines = [score.line(name, width) for name, score in self.categories.items()]
        lines.append(self.overall.line("=> overall", width))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def one(s: CategoryScore) -> dict[str, Any]:
            return {"correct": s.correct, "total": s.total, "accuracy": round(s.accuracy, 1)}

        return {
            "categories": {k: one(v) for k, v in self.categories.items()},
            "overall": one(self.overall),
        }


def load_json_list(path: str | Path, what: str) -> list[dict[str, Any]]:
    """Load a JSON file holding a list of objects (or ``{"items": [...]}``); InputError otherwise."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{what} file not found: {p}") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read {what} file {p}: {err}") from err
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise InputError(f"{what} file {p} must hold a JSON list of objects")
    return data


def score_vqa(
    predictions: Sequence[Mapping[str, Any]],
    ground_truth: Sequence[Mapping[str, Any]] | None = None,
) -> ScoreTable:
    """Score GAR-Bench-VQA predictions.

    ``predictions``: items with ``model_output`` (and, when ``ground_truth`` is None, their own
    ``answer`` and ``type``, as in the official output files). With ``ground_truth`` the two
    lists are matched by position when they have the same length and no ids, else by
    ``index_in_full_benchmark`` / ``id`` / ``query_id``; a ground-truth item without a prediction
    counts as wrong.
    """
    if ground_truth is None:
        table = ScoreTable()
        for i, item in enumerate(predictions):
            if "model_output" not in item or "answer" not in item:
                raise InputError(f"prediction {i} lacks 'model_output' or 'answer'")
            table.add(str(item.get("type", "all")), is_correct(str(item["model_output"]), str(item["answer"])))
        return table
    pairs = _match(predictions, ground_truth)
    table = ScoreTable()
    for gt, pred in pairs:
        if "answer" not in gt:
            raise InputError("ground-truth item lacks 'answer'")
        output = "" if pred is None else str(pred.get("model_output", ""))
        table.add(str(gt.get("type", "all")), is_correct(output, str(gt["answer"])))
    return table


_ID_KEYS = ("index_in_full_benchmark", "query_id", "id")


def _item_key(item: Mapping[str, Any]) -> str | None:
    for key in _ID_KEYS:
        if key in item and item[key] is not None:
            return f"{key}={item[key]}"
    return None


def _match(
    predictions: Sequence[Mapping[str, Any]], ground_truth: Sequence[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    gt_keys = [_item_key(g) for g in ground_truth]
    pred_keys = [_item_key(p) for p in predictions]
    if all(k is not None for k in gt_keys) and any(k is not None for k in pred_keys):
        by_key = {k: p for k, p in zip(pred_keys, predictions) if k is not None}
        return [(g, by_key.get(k)) for g, k in zip(ground_truth, gt_keys)]
    if len(predictions) != len(ground_truth):
        raise InputError(
            f"{len(predictions)} predictions for {len(ground_truth)} ground-truth items and no ids "
            f"({', '.join(_ID_KEYS)}) to match them"
        )
    return list(zip(ground_truth, predictions))


def region_ids_correct(predicted: Iterable[str], expected: Iterable[str]) -> bool:
    """Grounded queries: the predicted target (first id) equals the expected target (first id)."""
    p, e = list(predicted), list(expected)
    return bool(p) and bool(e) and p[0] == e[0]


def keywords_present(text: str, keywords: Iterable[str]) -> bool:
    """Description check: every keyword occurs as a whole word in ``text`` (case-insensitive)."""
    words = set("".join(c if c.isalnum() else " " for c in text.lower()).split())
    return all(k.lower() in words for k in keywords)
