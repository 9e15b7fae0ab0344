"""bag-eval through the real pipeline with a tiny random GAR checkpoint (model core's make_tiny)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from _eval_helpers import (
    T0,
    STEP,
    write_broken_bag,
    write_broken_compressed_bag,
    write_clean_bag,
    write_message_compressed_bag,
)
from gar_ros.cli import main
from gar_ros.ros.regions import stamp_to_ns
from gar_ros.evaluation.bagio import BagReader
from gar_ros.evaluation.replay import ReplayOptions, Replayer
from gar_ros.evaluation.report import ANSWERS_TOPIC, DESCRIPTIONS_TOPIC, outputs_digest, write_all

TOKENS = 4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    from gar_ros.model.tiny import make_tiny

    # seed 2: a random model whose text depends on the region (so determinism is not trivial)
    return make_tiny(tmp_path_factory.mktemp("tiny") / "tiny_gar", 2)


@pytest.fixture(scope="module")
def model(tiny_dir: Path) -> Any:
    from gar_ros.evaluation.runner import load_model

    return load_model(tiny_dir)


def _replay(model: Any, bag: Path, **kw: Any) -> Any:
    return Replayer(model, ReplayOptions(max_new_tokens=TOKENS, query_max_new_tokens=TOKENS, progress=False, **kw)).run(bag)


def test_bag_eval_cli_end_to_end(tiny_dir: Path, tmp_path: Path) -> None:
    bag = write_clean_bag(tmp_path / "in", frames=3)
    out = tmp_path / "out"
    rc = main(["bag-eval", str(bag), "--out", str(out), "--model", str(tiny_dir), "--max-new-tokens", str(TOKENS),
               "--no-progress"])
    assert rc == 0
    doc = json.loads((out / "outputs.json").read_text())
    s = doc["summary"]
    assert (s["frames"], s["descriptions"], s["answers"], s["errors"]) == (3, 6, 3, 0)
    assert doc["topics"]["image"] == "/cam/image"
    for name in ("report.md", "latency.png", "stages.png", "accuracy.png", "outputs.csv", "predictions.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((out / "outputs.csv").open()))
    assert len(rows) == 9 and all(float(r["latency_ms"]) > 0 for r in rows)
    assert {r["kind"] for r in rows} == {"description", "answer"}
    report = (out / "report.md").read_text()
    assert "![latency distribution](latency.png)" in report and "| describe |" in report
    # the output bag: descriptions and answers stamped like the source frames, inputs copied
    stamps = [T0 + k * STEP for k in range(3)]
    with BagReader(out / "outputs_bag") as r:
        assert {DESCRIPTIONS_TOPIC, ANSWERS_TOPIC, "/cam/image", "/gar/regions"} <= set(r.topics)
        msgs = list(r.messages([DESCRIPTIONS_TOPIC, ANSWERS_TOPIC]))
    descs = [m for m in msgs if m.topic == DESCRIPTIONS_TOPIC]
    answers = [m for m in msgs if m.topic == ANSWERS_TOPIC]
    assert [stamp_to_ns(m.msg.header.stamp) for m in descs] == stamps == [m.timestamp for m in descs]
    assert [stamp_to_ns(m.msg.header.stamp) for m in answers] == stamps
    assert all(m.msg.header.frame_id == "cam" for m in msgs)
    assert [d.id for d in descs[0].msg.descriptions] == ["a", "b"]
    assert descs[0].msg.model == "tiny_gar" and answers[0].msg.query_id == "q0"


def test_same_bag_twice_gives_identical_outputs(model: Any, tmp_path: Path) -> None:
    bag = write_clean_bag(tmp_path / "in", frames=3)
    first = _replay(model, bag)
    model.clear_cache()
    second = _replay(model, bag)
    assert [r.key() for r in first.outputs] == [r.key() for r in second.outputs]
    assert outputs_digest(first) == outputs_digest(second)
    texts = {(r.stamp, r.id): r.text for r in first.outputs if r.kind == "description"}
    assert all(texts.values()) and texts[(T0, "a")] != texts[(T0, "b")]  # real, region-dependent text
    d1 = write_all(first, tmp_path / "o1", plots=False)
    d2 = write_all(second, tmp_path / "o2", plots=False)
    assert d1["digest"] == d2["digest"]


def test_broken_messages_reported_and_run_goes_on(model: Any, tmp_path: Path) -> None:
    bag = tmp_path / "robot_run.bag"  # rosbag2 directory named like a ROS 1 bag
    write_broken_bag(bag)
    result = _replay(model, bag)
    doc = write_all(result, tmp_path / "out", plots=False, copy_inputs=False)
    errors = doc["errors"]
    text = " ".join(e["message"] for e in errors)
    assert "30 bytes" in text  # the 640x480 rgb8 frame holding 30 bytes
    assert "unsupported image encoding" in text
    assert any(e["kind"] == "decode" and e["topic"] == "/gar/regions" for e in errors)
    assert any("/acme/mystery" in n and "no definition" in n for n in doc["topics"]["notes"])
    # the two good frames were described and their questions answered
    assert sorted({r.stamp for r in result.outputs}) == [T0, T0 + 6 * STEP]
    assert sum(1 for r in result.outputs if r.kind == "answer" and r.status == "OK") == 2
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Message errors" in report and "30 bytes" in report
    # a type recorded without /msg/, selected by a topic name without the leading slash
    legacy = _replay(model, bag, image_topic="legacy/image")
    assert legacy.frames == 1 and not [e for e in legacy.errors if e.topic == "/legacy/image"]
    assert any("read as 'sensor_msgs/msg/Image'" in n for n in legacy.topics.notes)


def test_corrupt_jpeg_and_per_message_compression(model: Any, tmp_path: Path) -> None:
    write_broken_compressed_bag(tmp_path / "c")
    res = _replay(model, tmp_path / "c")
    assert len(res.errors) == 1 and "10 bytes" in res.errors[0].message
    assert any(r.kind == "answer" and r.status == "OK" for r in res.outputs)
    write_message_compressed_bag(tmp_path / "z")
    res = _replay(model, tmp_path / "z")
    assert len(res.errors) == 1 and "decompress" in res.errors[0].message
    assert sum(1 for r in res.outputs if r.kind == "answer") == 2


def test_realtime_mode_and_mcap_output(model: Any, tmp_path: Path) -> None:
    bag = write_clean_bag(tmp_path / "in", frames=3, storage="mcap")
    res = _replay(model, bag, realtime=True, speed=5.0)
    assert res.counters.get("frames_received") == 3
    # every frame is accounted for: described, replaced by a newer one, or too old
    done = res.counters.get("frames_described", 0) + res.counters.get("frames_dropped", 0) + res.counters.get(
        "frames_stale", 0)
    assert done == 3 and res.counters.get("frames_described", 0) >= 1
    assert sum(1 for r in res.outputs if r.kind == "answer") == 3
    doc = write_all(res, tmp_path / "out", storage="mcap", plots=False)
    assert doc["summary"]["mode"] == "realtime"
    assert any(p.suffix == ".mcap" for p in (tmp_path / "out" / "outputs_bag").iterdir())
    with BagReader(tmp_path / "out" / "outputs_bag") as r:
        assert r.topics[ANSWERS_TOPIC].count == 3


def test_benchmark_bag_through_pipeline(model: Any, shared_data: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    ann = shared_data / "gar_bench_vqa_subset" / "annotations.json"
    bag = tmp_path / "vqa"
    assert main(["bag-from-benchmark", str(ann), str(bag), "--limit", "3", "--image-format", "jpeg"]) == 0
    res = _replay(model, bag, describe="none")
    doc = write_all(res, tmp_path / "out", plots=True, copy_inputs=False)
    assert doc["summary"]["answers"] == 3 and doc["summary"]["descriptions"] == 0
    g = doc["grade"]
    assert g.by_kind.categories["multiple_choice"].total == 3
    # the predictions file scores the same with `gar-ros score`
    capsys.readouterr()
    assert main(["score", str(tmp_path / "out" / "predictions.json"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["overall"]["correct"] == g.by_type.overall.correct
    assert scored["overall"]["total"] == 3
    # --gt FILE (GAR-Bench-VQA annotations) takes precedence over the bag's records, no double count
    from gar_ros.evaluation.grading import grade
    from gar_ros.evaluation.replay import iter_ground_truth_file

    items = json.loads(ann.read_text())[:3]
    for it in items:
        it["type"] = "from_file"
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(items))
    res.ground_truth[:0] = list(iter_ground_truth_file(gt_file))
    g2 = grade(res)
    assert g2.by_type.overall.total == 3 and list(g2.by_type.categories) == ["from_file"]


def test_grounded_queries_score_region_ids(model: Any, tmp_path: Path) -> None:
    from gar_ros.evaluation.synthetic_bag import bag_from_synthetic

    bag_from_synthetic(tmp_path / "syn", scenes=8, first_seed=100)
    res = _replay(model, tmp_path / "syn", describe="none")
    doc = write_all(res, tmp_path / "out", plots=False, copy_inputs=False)
    g = doc["grade"]
    grounding = g.by_kind.categories["grounding"]
    # "What is the leftmost object?" is grounded by geometry, so even a random model gets the ids
    assert grounding.total >= 2 and grounding.correct == grounding.total
    assert g.by_kind.categories["multiple_choice"].total == 8
    answers = {r.id: r for r in res.outputs if r.kind == "answer"}
    for rec in res.ground_truth:
        if rec["kind"] == "grounding":
            assert answers[rec["query_id"]].region_ids[0] == rec["region_ids"][0]
