"""Grading a replay's outputs against its ground-truth records (see ``builders`` for the format).

- ``multiple_choice``: the answer's first letter equals ``answer`` (GAR-Bench-VQA protocol); an
  answer with a status other than OK, or a missing answer, is wrong. Categories: the record's
  ``type``.
- ``grounding``: the answer's first region id equals the first of ``region_ids``.
- ``description``: for each region id of ``keywords`` described in the frame at ``stamp``: with a
  ``references`` text for it, the first colour and shape words match the reference's (synthetic
  scenes, as ``eval-tiny``); otherwise every keyword occurs as a word of the description. Regions that were not described are
  counted in ``not_described`` and not scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gar_ros.evaluation.replay import OutputRecord, ReplayResult
from gar_ros.evaluation.scoring import ScoreTable, is_correct, keywords_present, region_ids_correct


@dataclass
class Grade:
    """Scores of one run. ``by_kind``: description / multiple_choice / grounding; ``by_type``:
    per category (multiple-choice ``type``, "description", "grounding")."""

    by_kind: ScoreTable = field(default_factory=ScoreTable)
    by_type: ScoreTable = field(default_factory=ScoreTable)
    not_described: int = 0
    unanswered: int = 0
    #: (kind, stamp, id) -> correct, for the per-output tables
    verdicts: dict[tuple[str, int, str], bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"by_kind": self.by_kind.to_dict(), "by_type": self.by_type.to_dict(),
                "not_described": self.not_described, "unanswered": self.unanswered}


def same_colour_and_shape(text: str, reference: str) -> bool:
    """Synthetic scenes: the first colour and shape words of ``text`` equal the reference's
    (``gar_ros.synthetic.tasks.parse_description``, the rule ``eval-tiny`` uses)."""
    from gar_ros.synthetic.tasks import parse_description

    got, ref = parse_description(text), parse_description(reference)
    return got["colour"] is not None and got["colour"] == ref["colour"] and got["shape"] == ref["shape"]


def effective_ground_truth(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without repeats: the first record of one (kind, query_id[, stamp]) wins, so records
    from ``--gt FILE`` (listed first) take precedence over those recorded in the bag."""
    seen: set[tuple[str, str, int]] = set()
    out = []
    for rec in records:
        kind = str(rec.get("kind", "multiple_choice"))
        key = (kind, str(rec.get("query_id", "")), int(rec.get("stamp", 0)) if kind == "description" else 0)
        if key in seen:
            continue
        seen.add(key)
        out.append(rec)
    return out


def grade(result: ReplayResult) -> Grade:
    g = Grade()
    answers: dict[str, OutputRecord] = {}
    for r in result.outputs:
        if r.kind == "answer":
            answers.setdefault(r.id, r)
    descs = {(r.stamp, r.id): r for r in result.outputs if r.kind == "description"}
    for rec in effective_ground_truth(result.ground_truth):
        kind = str(rec.get("kind", "multiple_choice"))
        if kind == "description":
            stamp = int(rec.get("stamp", 0))
            refs = rec.get("references") or {}
            for rid, words in sorted((rec.get("keywords") or {}).items()):
                d = descs.get((stamp, str(rid)))
                if d is None:
                    g.not_described += 1
                    continue
                if str(rid) in refs:
                    ok = same_colour_and_shape(d.text, str(refs[str(rid)]))
                else:
                    ok = keywords_present(d.text, [str(w) for w in words])
                g.by_kind.add("description", ok)
                g.by_type.add("description", ok)
                g.verdicts[("description", stamp, str(rid))] = ok
            continue
        qid = str(rec.get("query_id", ""))
        a = answers.get(qid)
        if a is None:
            g.unanswered += 1
        if kind == "grounding":
            ok = a is not None and a.status == "OK" and region_ids_correct(a.region_ids, rec.get("region_ids", []))
        else:
            kind = "multiple_choice"
            ok = a is not None and a.status == "OK" and is_correct(a.text, str(rec.get("answer", "")))
        g.by_kind.add(kind, ok)
        g.by_type.add(str(rec.get("type") or kind), ok)
        if a is not None:
            g.verdicts[("answer", a.stamp, qid)] = ok
    return g


def predictions(result: ReplayResult) -> list[dict[str, Any]]:
    """Multiple-choice answers in GAR-Bench-VQA prediction format (for ``gar-ros score``)."""
    answers = {r.id: r for r in result.outputs if r.kind == "answer"}
    out = []
    for rec in effective_ground_truth(result.ground_truth):
        if rec.get("kind", "multiple_choice") != "multiple_choice":
            continue
        a = answers.get(str(rec.get("query_id", "")))
        item = {k: rec[k] for k in ("query_id", "index_in_full_benchmark", "type", "answer", "choices") if k in rec}
        item["model_output"] = a.text if a is not None and a.status == "OK" else ""
        item["status"] = a.status if a is not None else "MISSING"
        out.append(item)
    return out
