"""Writing a replay's results: output bag, JSON, CSV, predictions and a Markdown report with plots.

Files in the output directory:
- ``outputs.json``: run summary, scores, counters, stage times, every output and every error;
  ``digest`` is a SHA-256 over the outputs without timings (equal digests = identical outputs).
- ``outputs.csv``: one row per output (kind, stamp, frame_id, id, status, text, region_ids,
  correct, latency_ms, inference_ms).
- ``predictions.json``: multiple-choice answers in GAR-Bench-VQA format (``gar-ros score``).
- ``outputs_bag/`` (sqlite3, or MCAP with ``storage="mcap"``): ``/gar_node/descriptions``
  (gar_ros/RegionDescriptionArray) and ``/gar_node/answers`` (gar_ros/Answer), header and log time
  = the source frame's stamp (an answer that found no frame: header stamp 0, the query's log time); with ``copy_inputs`` also the source image and regions topics.
- ``report.md`` with ``latency.png`` (latency distribution), ``stages.png`` (time per stage) and
  ``accuracy.png`` (accuracy per category).
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from gar_ros.errors import BagError
from gar_ros.evaluation import convert
from gar_ros.evaluation import typestore as ts
from gar_ros.evaluation.bagio import BagReader, BagWriter
from gar_ros.evaluation.grading import Grade, grade, predictions
from gar_ros.evaluation.replay import ReplayResult
from gar_ros.types import Answer, AnswerStatus, RegionText

DESCRIPTIONS_TOPIC = "/gar_node/descriptions"
ANSWERS_TOPIC = "/gar_node/answers"


def outputs_digest(result: ReplayResult) -> str:
    h = hashlib.sha256()
    for r in result.outputs:
        h.update(json.dumps(r.key(), ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def stage_summary(result: ReplayResult) -> dict[str, dict[str, float]]:
    out = {}
    for name, values in sorted(result.stage_times.items()):
        a = np.asarray(values, float)
        out[name] = {"count": int(a.size), "mean_ms": float(a.mean() * 1e3), "p50_ms": float(np.percentile(a, 50) * 1e3),
                     "p95_ms": float(np.percentile(a, 95) * 1e3), "max_ms": float(a.max() * 1e3),
                     "total_s": float(a.sum())}
    return out


def summary(result: ReplayResult, g: Grade) -> dict[str, Any]:
    n_desc = sum(1 for r in result.outputs if r.kind == "description")
    n_ans = sum(1 for r in result.outputs if r.kind == "answer")
    c = result.counters
    return {
        "bag": result.bag, "model": result.model, "backend": result.backend,
        "mode": "realtime" if result.options.get("realtime") else "deterministic",
        "messages_read": result.messages_read, "frames": result.frames,
        "frames_described": c.get("frames_described", 0), "frames_dropped": c.get("frames_dropped", 0),
        "frames_stale": c.get("frames_stale", 0), "descriptions": n_desc, "answers": n_ans,
        "errors": len(result.errors), "wall_time_s": round(result.wall_time, 3),
        "bag_duration_s": round(result.bag_duration, 3),
        "frames_per_s": round(result.frames / result.wall_time, 3) if result.wall_time > 0 else 0.0,
        "accuracy": g.by_kind.overall.accuracy if g.by_kind.overall.total else None,
    }


def write_json(result: ReplayResult, g: Grade, out: Path) -> dict[str, Any]:
    doc = {
        "summary": summary(result, g),
        "topics": {"image": result.topics.image, "regions": result.topics.regions,
                   "queries": result.topics.queries, "ground_truth": result.topics.ground_truth,
                   "notes": result.topics.notes},
        "options": result.options,
        "scores": g.to_dict(),
        "counters": result.counters,
        "stages": stage_summary(result),
        "digest": outputs_digest(result),
        "outputs": [dict(r.__dict__, correct=_verdict(g, r)) for r in result.outputs],
        "errors": [e.__dict__ for e in result.errors],
        "pipeline_problems": result.pipeline_problems,
        "batches": result.batches,
    }
    (out / "outputs.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    (out / "predictions.json").write_text(json.dumps(predictions(result), indent=1, ensure_ascii=False),
                                          encoding="utf-8")
    return doc


def _verdict(g: Grade, r: Any) -> bool | None:
    return g.verdicts.get((r.kind, r.stamp, r.id))


def write_csv(result: ReplayResult, g: Grade, out: Path) -> None:
    with (out / "outputs.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "stamp", "frame_id", "id", "status", "text", "region_ids", "correct",
                    "latency_ms", "inference_ms", "question", "message"])
        for r in result.outputs:
            v = _verdict(g, r)
            w.writerow([r.kind, r.stamp, r.frame_id, r.id, r.status, r.text, " ".join(r.region_ids),
                        "" if v is None else int(v), f"{r.latency * 1e3:.3f}", f"{r.inference * 1e3:.3f}",
                        r.question, r.message])


def write_output_bag(result: ReplayResult, path: Path, *, storage: str | None = None,
                     copy_inputs: bool = True) -> Path:
    """Descriptions and answers (and optionally the inputs) as a rosbag2 bag at ``path``."""
    store = ts.gar_typestore()
    by_stamp: dict[int, list[Any]] = {}
    for r in result.outputs:
        if r.kind == "description":
            by_stamp.setdefault(r.stamp, []).append(r)
    events: list[tuple[int, int, str, str, Any]] = []  # (time, order, topic, type, msg)
    for b in result.batches:
        recs = by_stamp.get(b["stamp"], [])
        texts = [RegionText(r.id, r.text, frame_stamps=[r.stamp]) for r in recs]
        from gar_ros.types import Region

        regions = {r.id: Region(id=r.id, box=tuple(r.box) if r.box else None, label=r.label) for r in recs}
        msg = convert.descriptions_to_msg(store, texts, regions, b["stamp"], b["frame_id"], model=result.model,
                                          backend=result.backend, latency=b["latency"], inference_time=b["inference"])
        events.append((b["stamp"], 2, DESCRIPTIONS_TOPIC, ts.DESCRIPTIONS, msg))
    for r in result.outputs:
        if r.kind != "answer":
            continue
        status = AnswerStatus.__members__.get(r.status, AnswerStatus.ERROR)
        ans = Answer(status, r.text, list(r.region_ids), r.message)
        msg = convert.answer_to_msg(store, ans, r.id, r.question, r.stamp, r.frame_id)
        events.append((r.log_time or r.stamp, 3, ANSWERS_TOPIC, ts.ANSWER, msg))
    with BagWriter(path, storage=storage, store=store, overwrite=True) as out:
        if copy_inputs:
            _copy_inputs(result, out)
        for t, _, topic, typ, msg in sorted(events, key=lambda e: (e[0], e[1])):
            out.write(topic, typ, msg, t)
    return path


def _copy_inputs(result: ReplayResult, out: BagWriter) -> None:
    topics = [t for t in (result.topics.image, result.topics.regions) if t]
    if not topics:
        return
    try:
        with BagReader(result.bag) as bag:
            for bm in bag.messages(topics):
                if bm.msg is None:
                    continue
                out.write(bm.topic, bm.msgtype, bm.msg, bm.timestamp)
    except BagError:
        pass  # the run already reported why the bag is unreadable


# ------------------------------------------------------------------------------------ plots


def _plots(result: ReplayResult, g: Grade, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    lat = {k: np.asarray(v) * 1e3 for k, v in result.stage_times.items() if k in ("frame_latency", "query_latency") and v}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if lat:
        for name, v in lat.items():
            ax.hist(v, bins=min(30, max(5, v.size)), alpha=0.6, label=name.replace("_", " "))
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no outputs", ha="center", va="center")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("count")
    ax.set_title("Latency distribution")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=80)
    plt.close(fig)
    files.append("latency.png")

    stages = stage_summary(result)
    names = [n for n in stages if not n.endswith("latency")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if names:
        means = [stages[n]["mean_ms"] for n in names]
        p95 = [stages[n]["p95_ms"] for n in names]
        x = np.arange(len(names))
        ax.bar(x - 0.2, means, 0.4, label="mean")
        ax.bar(x + 0.2, p95, 0.4, label="p95")
        ax.set_xticks(x, [n.replace("_", "\n") for n in names])
        ax.legend()
    ax.set_ylabel("ms per call")
    ax.set_title("Time per stage")
    fig.tight_layout()
    fig.savefig(out / "stages.png", dpi=80)
    plt.close(fig)
    files.append("stages.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    cats = list(g.by_type.categories.items())
    if cats:
        ax.bar(range(len(cats)), [s.accuracy for _, s in cats])
        ax.set_xticks(range(len(cats)), [f"{k}\n{s.correct}/{s.total}" for k, s in cats], fontsize=7)
        ax.set_ylim(0, 100)
    else:
        ax.text(0.5, 0.5, "no ground truth", ha="center", va="center")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy per category")
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=80)
    plt.close(fig)
    files.append("accuracy.png")
    return files


def _md_escape(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def write_markdown(result: ReplayResult, g: Grade, doc: dict[str, Any], out: Path, plots: list[str]) -> None:
    s = doc["summary"]
    lines = [f"# bag-eval report: {Path(result.bag).name}", ""]
    lines += ["| | |", "|---|---|"]
    for k in ("bag", "model", "backend", "mode", "messages_read", "frames", "frames_described", "frames_dropped",
              "frames_stale", "descriptions", "answers", "errors", "wall_time_s", "bag_duration_s", "frames_per_s"):
        lines.append(f"| {k} | {_md_escape(str(s[k]))} |")
    lines.append(f"| digest | `{doc['digest'][:16]}` |")
    t = doc["topics"]
    lines += ["", "## Topics", "", f"image `{t['image']}`, regions `{t['regions']}`, queries `{t['queries']}`, "
              f"ground truth `{t['ground_truth']}`"]
    lines += [f"- {_md_escape(n, 300)}" for n in t["notes"]]
    lines += ["", "## Accuracy", ""]
    if g.by_type.overall.total:
        lines += ["| category | correct | total | accuracy % |", "|---|---|---|---|"]
        for name, sc in list(g.by_type.categories.items()) + [("**overall**", g.by_type.overall)]:
            lines.append(f"| {name} | {sc.correct} | {sc.total} | {round(sc.accuracy, 1)} |")
        lines += ["", "By task: " + ", ".join(f"{k} {round(v.accuracy, 1)} % ({v.correct}/{v.total})"
                                             for k, v in g.by_kind.categories.items())]
        if g.not_described:
            lines.append(f"\n{g.not_described} ground-truth regions were not described (not scored).")
        lines += ["", "![accuracy per category](accuracy.png)"]
    else:
        lines.append("No ground truth in the bag (pass --gt FILE to score).")
    lines += ["", "## Latency and stages", "", "| stage | calls | mean ms | p50 ms | p95 ms | max ms |",
              "|---|---|---|---|---|---|"]
    for name, st in doc["stages"].items():
        lines.append(f"| {name} | {st['count']} | {st['mean_ms']:.1f} | {st['p50_ms']:.1f} | {st['p95_ms']:.1f} | "
                     f"{st['max_ms']:.1f} |")
    lines += ["", "![latency distribution](latency.png)", "", "![time per stage](stages.png)"]
    lines += ["", "## Message errors", ""]
    if result.errors:
        lines += ["| topic | # | log time | kind | error |", "|---|---|---|---|---|"]
        for e in result.errors[:500]:
            lines.append(f"| {e.topic} | {e.index} | {e.log_time} | {e.kind} | {_md_escape(e.message, 300)} |")
        if len(result.errors) > 500:
            lines.append(f"\n… {len(result.errors) - 500} more in outputs.json")
    else:
        lines.append("None.")
    if result.pipeline_problems:
        lines += ["", "Pipeline problems (latest): ", ""] + [f"- {_md_escape(p, 300)}" for p in result.pipeline_problems]
    if result.counters:
        lines += ["", "Counters: " + ", ".join(f"{k}={v}" for k, v in sorted(result.counters.items()))]
    lines += ["", "## Outputs", "", "| stamp | kind | id | status | text | correct | latency ms |", "|---|---|---|---|---|---|---|"]
    for r in result.outputs[:300]:
        v = _verdict(g, r)
        lines.append(f"| {r.stamp} | {r.kind} | {_md_escape(r.id, 40)} | {r.status} | {_md_escape(r.text)} | "
                     f"{'' if v is None else ('yes' if v else 'no')} | {r.latency * 1e3:.1f} |")
    if len(result.outputs) > 300:
        lines.append(f"\n… {len(result.outputs) - 300} more in outputs.csv")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_all(result: ReplayResult, out_dir: str | Path, *, storage: str | None = None,
              copy_inputs: bool = True, plots: bool = True) -> dict[str, Any]:
    """Every file of the module docstring into ``out_dir``; returns the JSON document."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = grade(result)
    doc = write_json(result, g, out)
    write_csv(result, g, out)
    write_output_bag(result, out / "outputs_bag", storage=storage, copy_inputs=copy_inputs)
    files = _plots(result, g, out) if plots else []
    write_markdown(result, g, doc, out, files)
    doc["grade"] = g
    return doc
